"""The storage seam: what the API layer may ask of the app store and the analytics store, whatever engine runs.

`MetaStore` (users, sessions, websites, settings, notes) is implemented over
SQLite and PostgreSQL, `AnalyticsStore` (hits in, stats out) over SQLite and
ClickHouse; the adapters are in `medama_core/backends/`, which also chooses
them by URL. Every method is a coroutine that runs the engine's synchronous
store function on that engine's own threads. Modules above store/ import from
here only (tests/test_layers.py), so none of them knows which engine runs.

The value types the methods take and return are re-exported here from where
they are defined, so callers need no engine module for them either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from medama_core.store.door import CACHE_SIZE_KIB as CACHE_SIZE_KIB
from medama_core.store.door import QueryTimeout as QueryTimeout
from medama_core.store.door import is_disk_full as is_disk_full
from medama_core.store.filters import FIELDS as FIELDS
from medama_core.store.filters import OPERATORS as OPERATORS
from medama_core.store.filters import Filter as Filter
from medama_core.store.meta_rows import DEFAULT_ADMIN_PASSWORD as DEFAULT_ADMIN_PASSWORD
from medama_core.store.meta_rows import DEFAULT_ADMIN_USERNAME as DEFAULT_ADMIN_USERNAME
from medama_core.store.meta_rows import SITE_SETTING_FIELDS as SITE_SETTING_FIELDS
from medama_core.store.meta_rows import AlreadyExists as AlreadyExists
from medama_core.store.meta_rows import Annotation as Annotation
from medama_core.store.meta_rows import ApiKey as ApiKey
from medama_core.store.meta_rows import Goal as Goal
from medama_core.store.meta_rows import MissingWebsite as MissingWebsite
from medama_core.store.meta_rows import Share as Share
from medama_core.store.meta_rows import SiteSettings as SiteSettings
from medama_core.store.meta_rows import Totp as Totp
from medama_core.store.meta_rows import User as User
from medama_core.store.meta_rows import new_annotation_id as new_annotation_id
from medama_core.store.meta_rows import new_goal_id as new_goal_id
from medama_core.store.meta_rows import new_key_id as new_key_id
from medama_core.store.query import LISTS as LISTS
from medama_core.store.query import STEPS_US as STEPS_US
from medama_core.store.query import Page as Page
from medama_core.store.query import Query as Query
from medama_core.store.query import bucket_count as bucket_count
from medama_core.store.query import previous_period as previous_period
from medama_core.store.rows import DropCount as DropCount
from medama_core.store.rows import Duration as Duration
from medama_core.store.rows import NewEvents as NewEvents
from medama_core.store.rows import NewView as NewView
from medama_core.store.rows import Op as Op
from medama_core.store.rows import Row as Row

Outcomes = Sequence[Exception | None]  # one per op of a batch: None when stored, else why not
Changes = tuple[int, list[str], dict[str, str]]  # (change token, every hostname, the tenant settings)


class Step(NamedTuple):
    """What one retention purge step did: views deleted, and whether rows before the cutoff wait for their rollups."""

    deleted: int
    waiting: bool = False


class Unsupported(Exception):
    """The running engine cannot do this (yet); the API answers 501 with the message."""


class Unavailable(Exception):
    """The engine's server could not be reached for this call; the API answers 503 with the message."""


class InvalidValue(ValueError):
    """A value the engine cannot store (PostgreSQL: text with a NUL character); the API answers 400."""


class StartupState(Protocol):
    """What the server loads from the app store before it serves (`MetaStore.start`)."""

    created_admin: bool
    default_password_users: list[str]
    settings: dict[str, str]
    hostnames: list[str]
    umami_ids: dict[str, str]
    site_settings: dict[str, SiteSettings]


class MetaStore(Protocol):
    """App data: accounts, sessions, websites and their settings and notes, tenant settings."""

    engine: str  # "sqlite" or "postgres", for the start-up line and /health only
    location: str  # where it is, for log lines: a file's absolute path, or a URL without its password

    @property
    def readers(self) -> int:
        """Reader threads (connections) this node uses."""
        ...

    def start(self) -> StartupState:
        """Start-up, before serving (synchronous): create the default admin on an empty store, settle
        which old accounts still have the default password, and load what the server keeps in memory."""
        ...

    async def changes_since(self, token: int | None) -> Changes | None:
        """The hostnames and tenant settings if anything changed since `token` (None: always), with the new
        token; None when nothing did. Changes by other processes and nodes count."""
        ...

    # Accounts and sessions.
    async def get_user(self, user_id: str) -> User | None: ...
    async def get_user_by_username(self, username: str) -> User | None: ...
    async def update_user(
        self,
        user_id: str,
        now: int,
        *,
        username: str | None = None,
        password_hash: str | None = None,
        settings: str | None = None,
        keep_session: bytes | None = None,
    ) -> User | None: ...
    async def set_password_is_default(self, user_id: str, is_default: bool) -> None: ...
    async def delete_user(self, user_id: str) -> list[str] | None: ...
    async def insert_session(self, token_hash: bytes, user_id: str, now: int, expires: int) -> None: ...
    async def session_user(self, token_hash: bytes) -> tuple[User, int] | None: ...
    async def delete_session(self, token_hash: bytes) -> bool: ...
    async def purge_expired_sessions(self, now: int) -> int: ...

    async def users_with_grants(self) -> list[tuple[User, list[str]]]:
        """Every account, by username, with the sites granted to it."""
        ...

    # Account changes under accounts.py's rules (the last admin stays), each one call on the store's writer.
    async def add_account(
        self, username: str, password_hash: str, role: str, now: int, websites: list[str] | None = None
    ) -> User: ...
    async def change_role(self, user: User, role: str, now: int) -> None: ...
    async def remove_account(self, user: User, heir_id: str | None) -> list[str]: ...
    async def list_grants(self, user_id: str) -> list[str]: ...
    async def set_grants(self, user_id: str, hostnames: list[str]) -> None: ...

    # API keys, share links, two-factor login.
    async def api_key_user(self, key_hash: bytes) -> tuple[ApiKey, User] | None: ...
    async def touch_api_key(self, key_id: str, now: int) -> None: ...
    async def list_api_keys(self, user_id: str) -> list[ApiKey]: ...
    async def insert_api_key(self, key: ApiKey, key_hash: bytes) -> None: ...
    async def delete_api_key(self, user_id: str, key_id: str) -> bool: ...
    async def get_share(self, share_id: str) -> Share | None: ...
    async def list_shares(self, hostname: str) -> list[Share]: ...
    async def insert_share(self, share: Share) -> None: ...
    async def delete_share(self, hostname: str, share_id: str) -> bool: ...
    async def get_totp(self, user_id: str) -> Totp | None: ...
    async def set_totp_secret(self, user_id: str, secret: str, now: int) -> bool: ...
    async def enable_totp(self, user_id: str, step: int, code_hashes: list[bytes]) -> bool: ...
    async def use_totp_step(self, user_id: str, step: int) -> bool: ...
    async def use_recovery_code(self, user_id: str, code_hash: bytes) -> bool: ...
    async def delete_totp(self, user_id: str) -> bool: ...

    # Websites.
    async def list_hostnames(self) -> list[str]: ...
    async def website_owner(self, hostname: str) -> str | None: ...
    async def list_user_hostnames(self, user_id: str) -> list[str]: ...
    async def insert_website(self, hostname: str, user_id: str, now: int) -> None: ...
    async def rename_website(self, old: str, new: str, now: int) -> bool: ...
    async def delete_website(self, hostname: str) -> bool: ...
    async def umami_ids(self) -> dict[str, str]: ...
    async def umami_id(self, hostname: str) -> str | None: ...
    async def set_umami_id(self, hostname: str, website_id: str | None) -> None: ...
    async def get_site_settings(self, hostname: str) -> SiteSettings: ...
    async def list_site_settings(self) -> dict[str, SiteSettings]: ...
    async def update_site_settings(
        self, hostname: str, changes: dict[str, object], now: int
    ) -> SiteSettings | None: ...
    async def insert_annotation(self, annotation: Annotation, max_per_site: int) -> bool: ...
    async def list_annotations(self, hostname: str, first: str | None, last: str | None) -> list[Annotation]: ...
    async def delete_annotation(self, hostname: str, annotation_id: str) -> bool: ...
    async def list_goals(self, hostname: str) -> list[Goal]: ...
    async def insert_goal(self, goal: Goal, max_per_site: int) -> bool: ...
    async def delete_goal(self, hostname: str, goal_id: str) -> bool: ...

    # Tenant settings and the engine.
    async def get_settings(self) -> dict[str, str]: ...
    async def set_settings(self, values: dict[str, str], now: int) -> dict[str, str]: ...
    async def health(self) -> None:
        """Return once the store answered a trivial read; raise if it cannot."""
        ...

    def tune(self, *, cache_kib: int, heap_limit: int | None = None) -> None:
        """Apply memory settings where the engine has them (SQLite's page cache and heap); others ignore them."""
        ...

    async def size(self) -> int | None:
        """Bytes the store takes where it lives (a file's size; a database server's own count); None when the
        engine would not say."""
        ...

    def close(self) -> None: ...


class AnalyticsStore(Protocol):
    """Hits in (group-committed batches), stats out, and a site's rows renamed, deleted, exported or imported."""

    engine: str  # "sqlite" or "clickhouse"
    location: str  # as MetaStore.location
    # Whether a short batch of hits waits (-clickhouselinger) before it is written (writer.Batcher's linger):
    # a store whose every write has a high fixed cost.
    write_lingers: bool
    write_batch_ops: int | None  # the most ops (weighed by write_weight) in a batch of hits; None: writer's default
    write_weight: Callable[[Op], int] | None  # how much of write_batch_ops an op takes; None: 1 each

    @property
    def readers(self) -> int: ...
    @property
    def closed(self) -> bool:
        """After close(): background work stops asking."""
        ...

    def site_hits_on(self, day_ms: int) -> dict[str, int]:
        """Start-up (synchronous): hits stored per site on the UTC day starting at `day_ms`, for the quota."""
        ...

    async def site_hits(self, day_ms: int) -> dict[str, int]:
        """`site_hits_on` while serving: what every node stored, for the quota to catch up with."""
        ...

    async def write_hits(self, ops: Sequence[Op]) -> Outcomes:
        """Store one batch of hit ops; return when they are durable, one outcome per op."""
        ...

    async def summary(self, query: Query, previous: bool, interval: str | None) -> dict[str, Any]: ...
    async def list_stats(
        self, query: Query, endpoint: str, summary: bool, page: Page, variant: bool = False
    ) -> list[dict[str, Any]]: ...
    async def time_stats(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]: ...
    async def entries(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
        """/entries: the pages views entered the site at (store/sqlite/entries.py)."""
        ...

    async def exits(self, query: Query, summary: bool, page: Page) -> list[dict[str, Any]]:
        """/exits: the pages visitors left the site from (store/sqlite/entries.py)."""
        ...

    async def properties(self, query: Query, page: Page) -> list[dict[str, Any]]: ...
    async def goal_counts(self, query: Query, goals: Sequence[tuple[Filter, ...]]) -> tuple[int, list[tuple[int, int]]]:
        """The query's visitors as /summary counts them, and per goal (its own filters: goals.goal_filters
        of no request filters) the query's views that pass them: (how many, how many with is_unique_page).
        Imported daily totals add to the visitors only (store/sqlite/goal_counts.py)."""
        ...

    async def visitors_since(self, hostnames: list[str], since_ms: int) -> dict[str, int]: ...
    async def live(self, hostname: str, now_ms: int) -> dict[str, Any]:
        """The site's pages open at `now_ms`: a count and the top pages, referrers and countries among them."""
        ...

    async def site_intervals(
        self, hostnames: list[str], start_us: int, end_us: int, interval: str
    ) -> list[list[dict[str, Any]]]: ...
    async def imported_periods(self, hostname: str) -> list[tuple[str, int, int]]:
        """(tool, first day, last day) in Unix ms of each run of imported daily totals."""
        ...

    async def drop_counts(self, start_day: int, end_day: int) -> list[tuple[int, str, str, int]]: ...
    async def rename_site(self, old: str, new: str) -> None: ...
    async def delete_sites(self, hostnames: list[str]) -> None: ...
    async def export_page(
        self, hostname: str, *, kind: str, fmt: str, after: tuple[int, int] | None, limit: int, spreadsheet: bool
    ) -> Any:
        """One page of a site's raw rows as text (transfer.ExportPage)."""
        ...

    async def import_upload(
        self, tool: str, data: bytes, hostname: str, umami_ids: dict[str, str], *, name: str, dry_run: bool
    ) -> list[Any]:
        """Another tool's export, for one site (transfer.import_upload); results per kind of row."""
        ...

    async def progress(self, hostname: str, now_ms: int) -> dict[str, int]:
        """The site's background work still waiting ({"hours": closed dirty hours, "blocks": blocks to
        build} on SQLite; none on engines that have no such work)."""
        ...

    # Answers that read raw rows even without filters on this engine ("lists": full list rows, "time": /time
    # without summary, "entries": /entries and /exits): after retention deleted raw rows they are partial
    # too (api/retention.py).
    raw_unfiltered: frozenset[str]

    async def purge_step(self, hostname: str, before_ms: int) -> Step:
        """Retention: delete one small batch (SQLite) or all (ClickHouse) of the site's raw rows older than
        `before_ms` (a UTC midnight), keeping their rollups/pre-aggregates; `deleted` 0 when none may go now,
        `waiting` when some wait for their hours to be rolled up first (run `maintain`, then again)."""
        ...

    async def raw_floor(self, hostname: str) -> int | None:
        """Unix ms before which retention deleted the site's raw rows; None when it deleted none."""
        ...

    async def maintain(self) -> int:
        """Background upkeep after stats reads (SQLite: rebuild dirty rollup hours and column copies);
        return how much was done. Engines that need none return 0."""
        ...

    async def health(self) -> None: ...
    async def size(self) -> int | None:
        """As MetaStore.size."""
        ...

    def tune(self, *, readers: int | None = None, cache_kib: int | None = None, heap_limit: int | None = None) -> None:
        """Reader threads; SQLite's page cache and process-wide heap limit (others ignore what they lack)."""
        ...

    def close(self) -> None: ...
