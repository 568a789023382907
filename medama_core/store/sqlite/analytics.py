"""The analytics database (me_analytics.db): schema of page views and custom events.

Times are stored as INTEGER Unix milliseconds (UTC). Text dimensions are
NOT NULL with '' meaning "none" (no referrer, no UTM value), as upstream
stores them; 'Unknown' is the sentinel for enrichment that found nothing.
"""

from __future__ import annotations

from medama_core.store.sqlite.db import Migration


def _mark_event_and_views(row: str) -> str:
    """Trigger SQL (migration 9): mark the hour of event `row` (NEW or OLD) and the hours of its bid's views."""
    return f"""INSERT OR IGNORE INTO rollup_dirty
        SELECT hostname, {row}.date_created / 3600000 FROM views WHERE bid = {row}.bid
        UNION ALL SELECT hostname, date_created / 3600000 FROM views WHERE bid = {row}.bid;"""


# A table only this database has: a file holding other tables but not this one is refused (store/db.open_file).
MARKER_TABLE = "views"

# The key and counts of a rollup row (migration 12): counts of one group (store/aggregate.py Group), and
# its sorted durations when few (8-byte little-endian unsigned; NULL when none or kept in rollup_durations).
_ROLLUP_KEY = (
    "hostname TEXT NOT NULL, span INTEGER NOT NULL, kind INTEGER NOT NULL, period INTEGER NOT NULL, value TEXT NOT NULL"
)
_COUNT_NAMES = "visitors, page_visitors, pageviews, bounces, timed, duration_sum, measured, zeros, ones, twos"
_ROLLUP_COUNTS = (
    ", ".join(
        f"{name} INTEGER NOT NULL"
        for name in ("visitors page_visitors pageviews bounces timed duration_sum measured zeros ones twos".split())
    )
    + ", durations BLOB"
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        (
            """CREATE TABLE views (
                bid TEXT NOT NULL,
                hostname TEXT NOT NULL,
                pathname TEXT NOT NULL,
                is_unique_user INTEGER NOT NULL,
                is_unique_page INTEGER NOT NULL,
                referrer_host TEXT NOT NULL DEFAULT '',
                referrer_group TEXT NOT NULL DEFAULT '',
                country TEXT NOT NULL DEFAULT 'Unknown',
                language_base TEXT NOT NULL DEFAULT 'Unknown',
                language_dialect TEXT NOT NULL DEFAULT 'Unknown',
                ua_browser TEXT NOT NULL,
                ua_os TEXT NOT NULL,
                ua_device_type TEXT NOT NULL,
                utm_source TEXT NOT NULL DEFAULT '',
                utm_medium TEXT NOT NULL DEFAULT '',
                utm_campaign TEXT NOT NULL DEFAULT '',
                duration_ms INTEGER,
                date_created INTEGER NOT NULL
            )""",
            # A view is identified by (bid, hostname): repeated beacons are ignored, and `unload`,
            # which carries only the bid, finds its views through the leading column.
            "CREATE UNIQUE INDEX views_bid_hostname ON views(bid, hostname)",
            # Every stats query filters on one site and a time range.
            "CREATE INDEX views_hostname_date ON views(hostname, date_created)",
            """CREATE TABLE events (
                bid TEXT NOT NULL DEFAULT '',
                batch_id TEXT NOT NULL,
                group_name TEXT NOT NULL,
                name TEXT NOT NULL,
                value TEXT NOT NULL,
                date_created INTEGER NOT NULL
            )""",
            # Stats join events to views by bid; /properties reads one site's events by time.
            "CREATE INDEX events_bid ON events(bid)",
            "CREATE INDEX events_group_date ON events(group_name, date_created)",
        ),
    ),
    Migration(
        2,
        (
            # Hits the ingest pipeline dropped, per UTC day (Unix ms of 00:00), site and reason
            # (bot, spam_referrer, blocked_ip, rate_limited, unknown_site, too_many_unknowns), for
            # a data-quality panel. hostname is '' when the hit was dropped before its site was known.
            """CREATE TABLE drops (
                day INTEGER NOT NULL,
                hostname TEXT NOT NULL,
                reason TEXT NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (day, hostname, reason)
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        3,
        (
            # Stats rollups (docs/storage.md). Triggers only mark an hour of a site dirty; the stats
            # code rebuilds closed dirty hours in bulk (store/sqlite/rollups.py) and reads dirty hours raw,
            # so a rollup row never holds a stale number and ingestion pays one small upsert per row.
            """CREATE TABLE rollup_dirty (
                hostname TEXT NOT NULL,
                hour INTEGER NOT NULL,
                PRIMARY KEY (hostname, hour)
            ) WITHOUT ROWID""",
            # Additive counts per site, span (0 = hour, 1 = UTC day), dimension kind, period and value.
            """CREATE TABLE rollup (
                hostname TEXT NOT NULL,
                span INTEGER NOT NULL,
                kind INTEGER NOT NULL,
                period INTEGER NOT NULL,
                value TEXT NOT NULL,
                visitors INTEGER NOT NULL,
                page_visitors INTEGER NOT NULL,
                pageviews INTEGER NOT NULL,
                bounces INTEGER NOT NULL,
                timed INTEGER NOT NULL,
                duration_sum INTEGER NOT NULL,
                PRIMARY KEY (hostname, span, kind, period, value)
            ) WITHOUT ROWID""",
            # Sorted durations (packed unsigned integers) for exact medians of the site and of each page.
            """CREATE TABLE rollup_durations (
                hostname TEXT NOT NULL,
                span INTEGER NOT NULL,
                kind INTEGER NOT NULL,
                period INTEGER NOT NULL,
                value TEXT NOT NULL,
                width INTEGER NOT NULL,
                durations BLOB NOT NULL
            )""",
            "CREATE UNIQUE INDEX rollup_durations_key ON rollup_durations(hostname, span, kind, period, value)",
            # Custom event counts per site (of the view they belong to), span, period, name and value.
            """CREATE TABLE rollup_props (
                hostname TEXT NOT NULL,
                span INTEGER NOT NULL,
                period INTEGER NOT NULL,
                name TEXT NOT NULL,
                value TEXT NOT NULL,
                events INTEGER NOT NULL,
                PRIMARY KEY (hostname, span, period, name, value)
            ) WITHOUT ROWID""",
            # Days whose day rows exist; a day is used only while none of its hours is dirty.
            """CREATE TABLE rollup_days (
                hostname TEXT NOT NULL,
                day INTEGER NOT NULL,
                PRIMARY KEY (hostname, day)
            ) WITHOUT ROWID""",
            # Rebuilding an hour of /properties reads that hour's events.
            "CREATE INDEX events_date ON events(date_created)",
            """CREATE TRIGGER views_rollup_insert AFTER INSERT ON views BEGIN
                INSERT OR IGNORE INTO rollup_dirty VALUES (NEW.hostname, NEW.date_created / 3600000);
                INSERT OR IGNORE INTO rollup_dirty
                    SELECT NEW.hostname, date_created / 3600000 FROM events WHERE bid = NEW.bid;
            END""",
            """CREATE TRIGGER views_rollup_update AFTER UPDATE ON views BEGIN
                INSERT OR IGNORE INTO rollup_dirty VALUES (NEW.hostname, NEW.date_created / 3600000);
                INSERT OR IGNORE INTO rollup_dirty VALUES (OLD.hostname, OLD.date_created / 3600000);
                INSERT OR IGNORE INTO rollup_dirty
                    SELECT NEW.hostname, date_created / 3600000 FROM events
                    WHERE bid = NEW.bid AND (NEW.hostname IS NOT OLD.hostname OR NEW.bid IS NOT OLD.bid);
                INSERT OR IGNORE INTO rollup_dirty
                    SELECT OLD.hostname, date_created / 3600000 FROM events
                    WHERE bid = OLD.bid AND (NEW.hostname IS NOT OLD.hostname OR NEW.bid IS NOT OLD.bid);
            END""",
            """CREATE TRIGGER views_rollup_delete AFTER DELETE ON views BEGIN
                INSERT OR IGNORE INTO rollup_dirty VALUES (OLD.hostname, OLD.date_created / 3600000);
                INSERT OR IGNORE INTO rollup_dirty
                    SELECT OLD.hostname, date_created / 3600000 FROM events WHERE bid = OLD.bid;
            END""",
            """CREATE TRIGGER events_rollup_insert AFTER INSERT ON events BEGIN
                INSERT OR IGNORE INTO rollup_dirty
                    SELECT hostname, NEW.date_created / 3600000 FROM views WHERE bid = NEW.bid;
            END""",
            """CREATE TRIGGER events_rollup_update AFTER UPDATE ON events BEGIN
                INSERT OR IGNORE INTO rollup_dirty
                    SELECT hostname, NEW.date_created / 3600000 FROM views WHERE bid = NEW.bid;
                INSERT OR IGNORE INTO rollup_dirty
                    SELECT hostname, OLD.date_created / 3600000 FROM views WHERE bid = OLD.bid;
            END""",
            """CREATE TRIGGER events_rollup_delete AFTER DELETE ON events BEGIN
                INSERT OR IGNORE INTO rollup_dirty
                    SELECT hostname, OLD.date_created / 3600000 FROM views WHERE bid = OLD.bid;
            END""",
            # Rows stored before this migration: every hour they touch starts dirty.
            """INSERT OR IGNORE INTO rollup_dirty
                SELECT DISTINCT hostname, date_created / 3600000 FROM views""",
            """INSERT OR IGNORE INTO rollup_dirty
                SELECT DISTINCT v.hostname, e.date_created / 3600000 FROM events e JOIN views v ON v.bid = e.bid""",
        ),
    ),
    Migration(
        4,
        (
            # Rollups, second layout (docs/storage.md). `span` is now a length in hours (1, 6, 24, 192,
            # 1536): larger blocks make long ranges a few rows per value. Each group also counts its
            # durations, and those equal to 0 and at most 1, so /time tells a zero median from counts.
            # Each duration run keeps every 256th value apart (`samples`), so a quantile reads small
            # windows of the runs. Rollups hold derived data only: recreated, every hour rebuilt.
            "DROP TABLE rollup",
            "DROP TABLE rollup_durations",
            "DROP TABLE rollup_days",
            # Blocks (span > 1) whose rows exist; one is used only while none of its hours is dirty.
            """CREATE TABLE rollup_built (
                hostname TEXT NOT NULL,
                span INTEGER NOT NULL,
                period INTEGER NOT NULL,
                PRIMARY KEY (hostname, span, period)
            ) WITHOUT ROWID""",
            """CREATE TABLE rollup (
                hostname TEXT NOT NULL,
                span INTEGER NOT NULL,
                kind INTEGER NOT NULL,
                period INTEGER NOT NULL,
                value TEXT NOT NULL,
                visitors INTEGER NOT NULL,
                page_visitors INTEGER NOT NULL,
                pageviews INTEGER NOT NULL,
                bounces INTEGER NOT NULL,
                timed INTEGER NOT NULL,
                duration_sum INTEGER NOT NULL,
                measured INTEGER NOT NULL,
                zeros INTEGER NOT NULL,
                ones INTEGER NOT NULL,
                PRIMARY KEY (hostname, span, kind, period, value)
            ) WITHOUT ROWID""",
            # A rowid table: quantiles read windows of `durations` through incremental blob I/O.
            """CREATE TABLE rollup_durations (
                hostname TEXT NOT NULL,
                span INTEGER NOT NULL,
                kind INTEGER NOT NULL,
                period INTEGER NOT NULL,
                value TEXT NOT NULL,
                count INTEGER NOT NULL,
                width INTEGER NOT NULL,
                samples BLOB NOT NULL,
                durations BLOB NOT NULL
            )""",
            "CREATE UNIQUE INDEX rollup_durations_key ON rollup_durations(hostname, span, kind, period, value)",
            "DELETE FROM rollup_props",
            "INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT hostname, date_created / 3600000 FROM views",
            """INSERT OR IGNORE INTO rollup_dirty
                SELECT DISTINCT v.hostname, e.date_created / 3600000 FROM events e JOIN views v ON v.bid = e.bid""",
            # Filtered stats: a filter on the page (eq/in, compared COLLATE NOCASE as store/filters.py
            # writes it) seeks here, and every column a stats query reads is in the index, so the
            # matching rows are read without touching the table.
            """CREATE INDEX views_hostname_path ON views(
                hostname, pathname COLLATE NOCASE, date_created, is_unique_user, is_unique_page, duration_ms,
                referrer_host, referrer_group, utm_source, utm_medium, utm_campaign, ua_browser, ua_os,
                ua_device_type, country, language_base, language_dialect, bid
            )""",
        ),
    ),
    Migration(
        5,
        (
            # 6-hour and 8-day blocks now keep duration runs too (store/sqlite/rollups.py RUN_SPANS); blocks
            # built by the first layout of migration 4 have none. Forget every block and rebuild
            # every hour: the reader uses hour rows until the blocks are built again.
            "DELETE FROM rollup_built",
            "INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT hostname, date_created / 3600000 FROM views",
            """INSERT OR IGNORE INTO rollup_dirty
                SELECT DISTINCT v.hostname, e.date_created / 3600000 FROM events e JOIN views v ON v.bid = e.bid""",
        ),
    ),
    Migration(
        6,
        (
            # Day rows now also keep the durations of every other kind (referrers, UTM, browsers, ...:
            # store/sqlite/rollups.py DAY_RUN_KINDS), for the medians of full list rows. Rebuild as in 5.
            "DELETE FROM rollup_built",
            "INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT hostname, date_created / 3600000 FROM views",
            """INSERT OR IGNORE INTO rollup_dirty
                SELECT DISTINCT v.hostname, e.date_created / 3600000 FROM events e JOIN views v ON v.bid = e.bid""",
        ),
    ),
    Migration(
        7,
        (
            # Column copies of closed, clean UTC days for filtered stats (store/sqlite/columns.py): one row per
            # site, day and column, a dictionary of the column's values and one byte per view and plane.
            # Built with the day's rollup block; days built before this are filled in by the refresher.
            """CREATE TABLE column_days (
                hostname TEXT NOT NULL,
                day INTEGER NOT NULL,
                name TEXT NOT NULL,
                dictionary TEXT NOT NULL,
                data BLOB NOT NULL
            )""",
            "CREATE UNIQUE INDEX column_days_key ON column_days(hostname, day, name)",
        ),
    ),
    Migration(
        8,
        (
            # Filtered stats read the column copies now (migration 7); the page-led covering index of
            # migration 4 served only the hours they cannot (today's, dirty ones), and cost half of
            # SQLite's rate of storing views and a quarter of the database. Page filters on raw hours
            # read them by time like any other filter.
            "DROP INDEX IF EXISTS views_hostname_path",
        ),
    ),
    Migration(
        9,
        (
            # Column copies now hold each view's event pairs (store/sqlite/columns.py PROPS), so prop filters on
            # views read the copies too. A view's pairs change when an event with its bid comes, goes or
            # changes: the event triggers now also mark the view's own hour dirty, which drops the copy.
            "DROP TRIGGER events_rollup_insert",
            "DROP TRIGGER events_rollup_update",
            "DROP TRIGGER events_rollup_delete",
            f"CREATE TRIGGER events_rollup_insert AFTER INSERT ON events BEGIN {_mark_event_and_views('NEW')} END",
            f"""CREATE TRIGGER events_rollup_update AFTER UPDATE ON events BEGIN
                {_mark_event_and_views("NEW")} {_mark_event_and_views("OLD")} END""",
            f"CREATE TRIGGER events_rollup_delete AFTER DELETE ON events BEGIN {_mark_event_and_views('OLD')} END",
            # Copies made before have no pairs: the refresher copies every built day again (store/sqlite/columns.py
            # backfill), and filtered stats read raw rows meanwhile.
            "DELETE FROM column_days",
        ),
    ),
    Migration(
        10,
        (
            # Hits stored per UTC day (Unix ms of 00:00) and site: page views and custom events, added
            # with each batch of hits. The per-site daily quota (medama_core/quota.py) starts a day from
            # here after a restart, so restarting does not reset it.
            """CREATE TABLE site_hits (
                day INTEGER NOT NULL,
                hostname TEXT NOT NULL,
                hits INTEGER NOT NULL,
                PRIMARY KEY (day, hostname)
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        11,
        (
            # Daily totals imported from a tool that exports aggregates only (Plausible's CSV export,
            # importers/plausible.py): per site, UTC day (Unix ms of 00:00), dimension ('' for the site,
            # else a stats kind: path, referrer, browser, ...) and value. The stats add them for the
            # days they cover (api/imported.py); views and their rollups never hold them.
            """CREATE TABLE imported_days (
                hostname TEXT NOT NULL,
                day INTEGER NOT NULL,
                dimension TEXT NOT NULL,
                value TEXT NOT NULL,
                tool TEXT NOT NULL,
                visitors INTEGER NOT NULL,
                pageviews INTEGER NOT NULL,
                visits INTEGER NOT NULL,
                bounces INTEGER NOT NULL,
                duration_s INTEGER NOT NULL,
                PRIMARY KEY (hostname, dimension, day, value)
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        12,
        (
            # Long tails and many sites (docs/storage.md, store/sqlite/rollups.py). Rollups hold derived data
            # only: recreated empty, and every hour rebuilt by the refresher.
            #
            # * A value seen at most RARE_VIEWS times in all of a site's rolled-up hours ("rare": most of a
            #   long tail) has hour rows only, in `rollup_rare`; the blocks and `rollup` hold the others
            #   (`rollup_common` lists them; a value stays common once it is). A rare value can add at most
            #   RARE_VIEWS to any count, so top lists and /time (3 page visitors at least) read `rollup`.
            # * A group's durations, up to INLINE_DURATIONS of them, are stored in its row; larger runs
            #   stay in `rollup_durations`. Groups also count durations of at most 2 ms (`twos`), so /time
            #   tells a zero lower quartile from the counts.
            # * Sites with fewer than SMALL_SITE_VIEWS views keep only the site rows (kind 0) and their
            #   custom events; their lists read the raw rows (`rollup_sites`).
            # * Property names get rows of their own (`rollup_prop_names`), so the names list does not add
            #   up every value.
            # * `rollup_todo` lists the blocks that rebuilt hours touched, to be built once closed.
            # Column copies gain a flag bit (durations of at most 2 ms): copied again with the days.
            "DROP TABLE rollup",
            "DROP TABLE rollup_durations",
            "DROP TABLE rollup_props",
            "DELETE FROM rollup_built",
            "DELETE FROM column_days",
            f"CREATE TABLE rollup ({_ROLLUP_KEY}, {_ROLLUP_COUNTS}, PRIMARY KEY (hostname, span, kind, period, value))"
            " WITHOUT ROWID",
            f"""CREATE TABLE rollup_rare (
                hostname TEXT NOT NULL, kind INTEGER NOT NULL, hour INTEGER NOT NULL, value TEXT NOT NULL,
                {_ROLLUP_COUNTS}, PRIMARY KEY (hostname, kind, hour, value)) WITHOUT ROWID""",
            # A value's rare rows, found when it becomes common.
            "CREATE INDEX rollup_rare_value ON rollup_rare(hostname, kind, value)",
            """CREATE TABLE rollup_common (
                hostname TEXT NOT NULL, kind INTEGER NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (hostname, kind, value)) WITHOUT ROWID""",
            # A rowid table: quantiles read windows of `durations` through incremental blob I/O.
            """CREATE TABLE rollup_durations (
                hostname TEXT NOT NULL,
                span INTEGER NOT NULL,
                kind INTEGER NOT NULL,
                period INTEGER NOT NULL,
                value TEXT NOT NULL,
                count INTEGER NOT NULL,
                width INTEGER NOT NULL,
                samples BLOB NOT NULL,
                durations BLOB NOT NULL
            )""",
            "CREATE UNIQUE INDEX rollup_durations_key ON rollup_durations(hostname, span, kind, period, value)",
            """CREATE TABLE rollup_props (
                hostname TEXT NOT NULL, span INTEGER NOT NULL, period INTEGER NOT NULL, name TEXT NOT NULL,
                value TEXT NOT NULL, events INTEGER NOT NULL,
                PRIMARY KEY (hostname, span, period, name, value)) WITHOUT ROWID""",
            """CREATE TABLE rollup_prop_names (
                hostname TEXT NOT NULL, span INTEGER NOT NULL, period INTEGER NOT NULL, name TEXT NOT NULL,
                events INTEGER NOT NULL, PRIMARY KEY (hostname, span, period, name)) WITHOUT ROWID""",
            """CREATE TABLE rollup_sites (
                hostname TEXT NOT NULL PRIMARY KEY, views INTEGER NOT NULL, full INTEGER NOT NULL) WITHOUT ROWID""",
            """CREATE TABLE rollup_todo (
                hostname TEXT NOT NULL, span INTEGER NOT NULL, period INTEGER NOT NULL,
                PRIMARY KEY (hostname, span, period)) WITHOUT ROWID""",
            "CREATE INDEX rollup_todo_order ON rollup_todo(span, period)",
            # The refresher takes dirty hours oldest first across sites: an hour's events are read once.
            "CREATE INDEX rollup_dirty_hour ON rollup_dirty(hour, hostname)",
            "INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT hostname, date_created / 3600000 FROM views",
            """INSERT OR IGNORE INTO rollup_dirty
                SELECT DISTINCT v.hostname, e.date_created / 3600000 FROM events e JOIN views v ON v.bid = e.bid""",
        ),
    ),
    Migration(
        13,
        (
            # Entry and exit pages (docs/insights.md): the path of a view's internal referrer (a page of
            # the same site), '' when it had none (an entry). Views stored before have '' (the referrer
            # was dropped when internal): each counts as an entry, and none as a departure.
            "ALTER TABLE views ADD COLUMN referrer_path TEXT NOT NULL DEFAULT ''",
            # Rollups gain kinds 13 (entry pages: each view with no internal referrer, by its path behind
            # rollups.ENTRY_MARK) and 14 (every view by its internal referrer's path). For the views stored
            # so far both are known without reading them: every one is an entry, so kind 13 is kind 1 with
            # the mark, and kind 14 holds one value, '', whose rows are the site rows (kind 0) of the sites
            # that keep every kind. Copied, they stay right however old the hours are (retention may have
            # deleted their raw rows); nothing is rebuilt. Column copies gain the two columns: copied again
            # by the refresher (filtered stats read raw rows meanwhile).
            f"""INSERT OR IGNORE INTO rollup SELECT hostname, span, 13, period, '+' || value, {_COUNT_NAMES}, NULL
                FROM rollup WHERE kind = 1""",
            f"""INSERT OR IGNORE INTO rollup SELECT hostname, span, 14, period, '', {_COUNT_NAMES}, NULL
                FROM rollup WHERE kind = 0 AND hostname IN (SELECT hostname FROM rollup_sites WHERE full)""",
            f"""INSERT OR IGNORE INTO rollup_rare SELECT hostname, 13, hour, '+' || value, {_COUNT_NAMES}, NULL
                FROM rollup_rare WHERE kind = 1""",
            "INSERT OR IGNORE INTO rollup_common SELECT hostname, 13, '+' || value FROM rollup_common WHERE kind = 1",
            "INSERT OR IGNORE INTO rollup_common SELECT hostname, 14, '' FROM rollup_sites WHERE full",
            "DELETE FROM column_days",
        ),
    ),
    Migration(
        14,
        (
            # Retention (store/sqlite/retention.py): per site, the Unix ms before which its raw views and events
            # were deleted, their hours kept as rollups only. A filtered answer reaching before it is partial.
            """CREATE TABLE raw_floor (
                hostname TEXT NOT NULL PRIMARY KEY,
                floor INTEGER NOT NULL
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        15,
        (
            # An unload sets a view's duration: its own hour is all it changes. The update trigger ran four
            # statements for it (both hours of the row, and the hours of its bid's events twice, filtered out
            # by a condition checked per event row); it now runs one when the row keeps its site, time and bid,
            # and the full set only when one of them moves (rename, import fixes). The same hours get marked.
            "DROP TRIGGER views_rollup_update",
            """CREATE TRIGGER views_rollup_update AFTER UPDATE ON views
                WHEN NEW.hostname IS OLD.hostname AND NEW.date_created IS OLD.date_created AND NEW.bid IS OLD.bid
                BEGIN
                    INSERT OR IGNORE INTO rollup_dirty VALUES (NEW.hostname, NEW.date_created / 3600000);
                END""",
            """CREATE TRIGGER views_rollup_move AFTER UPDATE ON views
                WHEN NOT (NEW.hostname IS OLD.hostname AND NEW.date_created IS OLD.date_created AND NEW.bid IS OLD.bid)
                BEGIN
                    INSERT OR IGNORE INTO rollup_dirty VALUES (NEW.hostname, NEW.date_created / 3600000);
                    INSERT OR IGNORE INTO rollup_dirty VALUES (OLD.hostname, OLD.date_created / 3600000);
                    INSERT OR IGNORE INTO rollup_dirty
                        SELECT NEW.hostname, date_created / 3600000 FROM events WHERE bid = NEW.bid;
                    INSERT OR IGNORE INTO rollup_dirty
                        SELECT OLD.hostname, date_created / 3600000 FROM events WHERE bid = OLD.bid;
                END""",
        ),
    ),
    Migration(
        16,
        (
            # The tracker's writer marks the hours a batch touched once per batch (store/sqlite/hits.py), set-based
            # as store/sqlite/bulk.py does after a bulk load, instead of two statements per inserted row. While it
            # writes a batch, inside that batch's transaction, `rollup_marking.marking` is 1 and the insert
            # triggers stand aside; it is 0 again before the COMMIT, so every other writer of rows (imports,
            # transfers, the op-by-op replay, other processes) sees 0 and keeps being marked by the triggers.
            "CREATE TABLE rollup_marking (marking INTEGER NOT NULL)",
            "INSERT INTO rollup_marking VALUES (0)",
            "DROP TRIGGER views_rollup_insert",
            """CREATE TRIGGER views_rollup_insert AFTER INSERT ON views
                WHEN (SELECT marking FROM rollup_marking) = 0
                BEGIN
                    INSERT OR IGNORE INTO rollup_dirty VALUES (NEW.hostname, NEW.date_created / 3600000);
                    INSERT OR IGNORE INTO rollup_dirty
                        SELECT NEW.hostname, date_created / 3600000 FROM events WHERE bid = NEW.bid;
                END""",
            "DROP TRIGGER events_rollup_insert",
            f"""CREATE TRIGGER events_rollup_insert AFTER INSERT ON events
                WHEN (SELECT marking FROM rollup_marking) = 0
                BEGIN {_mark_event_and_views("NEW")} END""",
        ),
    ),
    Migration(
        17,
        (
            # No insert triggers: every writer of rows marks the hours its inserts touched itself, once per
            # transaction (store/sqlite/marking.py), which the trigger's WHEN still cost the tracker's writer
            # on every row (~5,400 instructions a stored view). The update and delete triggers stay.
            "DROP TRIGGER views_rollup_insert",
            "DROP TRIGGER events_rollup_insert",
            "DROP TABLE rollup_marking",
            # A view moves only when an UPDATE sets its site, time or bid: the move trigger names those columns, so
            # SQLite leaves it out of every other UPDATE (an unload's) instead of running its program per row to
            # find its WHEN false. It marks the same hours as before (tests/store/test_migrations.py).
            "DROP TRIGGER views_rollup_move",
            """CREATE TRIGGER views_rollup_move AFTER UPDATE OF hostname, date_created, bid ON views
                WHEN NOT (NEW.hostname IS OLD.hostname AND NEW.date_created IS OLD.date_created AND NEW.bid IS OLD.bid)
                BEGIN
                    INSERT OR IGNORE INTO rollup_dirty VALUES (NEW.hostname, NEW.date_created / 3600000);
                    INSERT OR IGNORE INTO rollup_dirty VALUES (OLD.hostname, OLD.date_created / 3600000);
                    INSERT OR IGNORE INTO rollup_dirty
                        SELECT NEW.hostname, date_created / 3600000 FROM events WHERE bid = NEW.bid;
                    INSERT OR IGNORE INTO rollup_dirty
                        SELECT OLD.hostname, date_created / 3600000 FROM events WHERE bid = OLD.bid;
                END""",
        ),
    ),
)
