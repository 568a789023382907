"""The analytics database (me_analytics.db): schema of page views and custom events.

Times are stored as INTEGER Unix milliseconds (UTC). Text dimensions are
NOT NULL with '' meaning "none" (no referrer, no UTM value), as upstream
stores them; 'Unknown' is the sentinel for enrichment that found nothing.
"""

from __future__ import annotations

from medama_core.store.db import Migration

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
)
