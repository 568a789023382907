"""The app store adapter shared by SQLite and PostgreSQL: MetaStore's methods over an engine's meta functions.

Both engines' meta modules (store/sqlite/meta.py, store/postgres/meta.py) have the
same functions with the same signatures, each taking its own connection; a
door (store/sqlite/db.Database or store/postgres/db.Database) runs them on its
threads. So one class serves both, given the module and the door.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol, TypeVar

from medama_core import accounts
from medama_core.store.protocol import Annotation, ApiKey, Changes, Goal, Share, SiteSettings, Totp, User

T = TypeVar("T")


class Door(Protocol):
    """What both engines' Database classes offer: functions of a connection run on their threads."""

    readers: int

    async def read(self, fn: Callable[..., T], /, *args: object) -> T: ...
    async def write(self, fn: Callable[..., T], /, *args: object) -> T: ...
    def close(self) -> None: ...


@dataclass
class Startup:
    """What `start` loads (store.protocol.StartupState)."""

    created_admin: bool
    default_password_users: list[str]
    settings: dict[str, str]
    hostnames: list[str]
    umami_ids: dict[str, str]
    site_settings: dict[str, SiteSettings] = field(default_factory=dict)


class MetaAdapter:
    """MetaStore over `module`'s functions, run through `door`; `call` runs one synchronously (start-up)."""

    def __init__(self, engine: str, door: Door, module: ModuleType, call: Callable[..., Any]) -> None:
        self.engine = engine
        self.door = door
        self.m = module
        self._call = call

    @property
    def readers(self) -> int:
        return self.door.readers

    def start(self) -> Startup:
        def load(conn: Any) -> Startup:
            created = accounts.ensure_default_admin(conn, self.m)
            accounts.check_unknown_defaults(conn, self.m)
            return Startup(
                created,
                self.m.usernames_with_default_password(conn),
                self.m.get_settings(conn),
                self.m.list_hostnames(conn),
                self.m.umami_ids(conn),
                self.m.list_site_settings(conn),
            )

        result: Startup = self._call(load)
        return result

    async def changes_since(self, token: int | None) -> Changes | None:
        # On the writer: SQLite's data_version is per connection, and only the writer's is kept.
        result: Changes | None = await self.door.write(self.m.changes_since, token)
        return result

    async def get_user(self, user_id: str) -> User | None:
        return await self.door.read(self.m.get_user, user_id)

    async def get_user_by_username(self, username: str) -> User | None:
        return await self.door.read(self.m.get_user_by_username, username)

    async def update_user(
        self,
        user_id: str,
        now: int,
        *,
        username: str | None = None,
        password_hash: str | None = None,
        settings: str | None = None,
        keep_session: bytes | None = None,
    ) -> User | None:
        fn = functools.partial(
            self.m.update_user,
            username=username,
            password_hash=password_hash,
            settings=settings,
            keep_session=keep_session,
        )
        return await self.door.write(fn, user_id, now)

    async def set_password_is_default(self, user_id: str, is_default: bool) -> None:
        await self.door.write(self.m.set_password_is_default, user_id, is_default)

    async def delete_user(self, user_id: str) -> list[str] | None:
        return await self.door.write(self.m.delete_user, user_id)

    async def insert_session(self, token_hash: bytes, user_id: str, now: int, expires: int) -> None:
        await self.door.write(self.m.insert_session, token_hash, user_id, now, expires)

    async def session_user(self, token_hash: bytes) -> tuple[User, int] | None:
        return await self.door.read(self.m.session_user, token_hash)

    async def delete_session(self, token_hash: bytes) -> bool:
        return await self.door.write(self.m.delete_session, token_hash)

    async def purge_expired_sessions(self, now: int) -> int:
        return await self.door.write(self.m.purge_expired_sessions, now)

    async def website_owner(self, hostname: str) -> str | None:
        return await self.door.read(self.m.website_owner, hostname)

    async def list_user_hostnames(self, user_id: str) -> list[str]:
        return await self.door.read(self.m.list_user_hostnames, user_id)

    async def insert_website(self, hostname: str, user_id: str, now: int) -> None:
        await self.door.write(self.m.insert_website, hostname, user_id, now)

    async def rename_website(self, old: str, new: str, now: int) -> bool:
        return await self.door.write(self.m.rename_website, old, new, now)

    async def delete_website(self, hostname: str) -> bool:
        return await self.door.write(self.m.delete_website, hostname)

    async def umami_ids(self) -> dict[str, str]:
        return await self.door.read(self.m.umami_ids)

    async def umami_id(self, hostname: str) -> str | None:
        return await self.door.read(self.m.umami_id, hostname)

    async def set_umami_id(self, hostname: str, website_id: str | None) -> None:
        await self.door.write(self.m.set_umami_id, hostname, website_id)

    async def get_site_settings(self, hostname: str) -> SiteSettings:
        return await self.door.read(self.m.get_site_settings, hostname)

    async def list_site_settings(self) -> dict[str, SiteSettings]:
        return await self.door.read(self.m.list_site_settings)

    async def update_site_settings(self, hostname: str, changes: dict[str, object], now: int) -> SiteSettings | None:
        return await self.door.write(self.m.update_site_settings, hostname, changes, now)

    async def insert_annotation(self, annotation: Annotation, max_per_site: int) -> bool:
        return await self.door.write(self.m.insert_annotation, annotation, max_per_site)

    async def list_annotations(self, hostname: str, first: str | None, last: str | None) -> list[Annotation]:
        return await self.door.read(self.m.list_annotations, hostname, first, last)

    async def delete_annotation(self, hostname: str, annotation_id: str) -> bool:
        return await self.door.write(self.m.delete_annotation, hostname, annotation_id)

    async def get_settings(self) -> dict[str, str]:
        return await self.door.read(self.m.get_settings)

    async def set_settings(self, values: dict[str, str], now: int) -> dict[str, str]:
        return await self.door.write(self.m.set_settings, values, now)

    async def list_hostnames(self) -> list[str]:
        return await self.door.read(self.m.list_hostnames)

    async def users_with_grants(self) -> list[tuple[User, list[str]]]:
        def read(conn: Any) -> list[tuple[User, list[str]]]:
            grants = self.m.grants_by_user(conn)
            return [(user, grants.get(user.id, [])) for user in self.m.list_users(conn)]

        return await self.door.read(read)

    async def add_account(
        self, username: str, password_hash: str, role: str, now: int, websites: list[str] | None = None
    ) -> User:
        add = functools.partial(accounts.add, store=self.m)
        return await self.door.write(add, username, password_hash, role, now, websites)

    async def change_role(self, user: User, role: str, now: int) -> None:
        await self.door.write(functools.partial(accounts.set_role, store=self.m), user, role, now)

    async def remove_account(self, user: User, heir_id: str | None) -> list[str]:
        return await self.door.write(functools.partial(accounts.remove, store=self.m), user, heir_id)

    async def list_grants(self, user_id: str) -> list[str]:
        return await self.door.read(self.m.list_grants, user_id)

    async def set_grants(self, user_id: str, hostnames: list[str]) -> None:
        await self.door.write(self.m.set_grants, user_id, hostnames)

    async def api_key_user(self, key_hash: bytes) -> tuple[ApiKey, User] | None:
        return await self.door.read(self.m.api_key_user, key_hash)

    async def touch_api_key(self, key_id: str, now: int) -> None:
        await self.door.write(self.m.touch_api_key, key_id, now)

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        return await self.door.read(self.m.list_api_keys, user_id)

    async def insert_api_key(self, key: ApiKey, key_hash: bytes) -> None:
        await self.door.write(self.m.insert_api_key, key, key_hash)

    async def delete_api_key(self, user_id: str, key_id: str) -> bool:
        return await self.door.write(self.m.delete_api_key, user_id, key_id)

    async def get_share(self, share_id: str) -> Share | None:
        return await self.door.read(self.m.get_share, share_id)

    async def list_shares(self, hostname: str) -> list[Share]:
        return await self.door.read(self.m.list_shares, hostname)

    async def insert_share(self, share: Share) -> None:
        await self.door.write(self.m.insert_share, share)

    async def delete_share(self, hostname: str, share_id: str) -> bool:
        return await self.door.write(self.m.delete_share, hostname, share_id)

    async def get_totp(self, user_id: str) -> Totp | None:
        return await self.door.read(self.m.get_totp, user_id)

    async def set_totp_secret(self, user_id: str, secret: str, now: int) -> bool:
        return await self.door.write(self.m.set_totp_secret, user_id, secret, now)

    async def enable_totp(self, user_id: str, step: int, code_hashes: list[bytes]) -> bool:
        return await self.door.write(self.m.enable_totp, user_id, step, code_hashes)

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        return await self.door.write(self.m.use_totp_step, user_id, step)

    async def use_recovery_code(self, user_id: str, code_hash: bytes) -> bool:
        return await self.door.write(self.m.use_recovery_code, user_id, code_hash)

    async def delete_totp(self, user_id: str) -> bool:
        return await self.door.write(self.m.delete_totp, user_id)

    async def list_goals(self, hostname: str) -> list[Goal]:
        return await self.door.read(self.m.list_goals, hostname)

    async def insert_goal(self, goal: Goal, max_per_site: int) -> bool:
        return await self.door.write(self.m.insert_goal, goal, max_per_site)

    async def delete_goal(self, hostname: str, goal_id: str) -> bool:
        return await self.door.write(self.m.delete_goal, hostname, goal_id)
