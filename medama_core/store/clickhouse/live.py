"""Live visitors on ClickHouse: the pages of a site open now, from its last half hour of views (store/live.py's rule).

A view's rows are its versions with signs (schema.py): it is stored when
sum(sign) > 0, and still open when the sum of sign over its versions without a
duration is above 0 (the load's row is +1; an unload cancels it with -1 and adds
a version with its duration).
"""

from __future__ import annotations

from typing import Any, Final

from medama_core.store.clickhouse.client import Client
from medama_core.store.clickhouse.schema import SITE_KEY
from medama_core.store.live import OPEN_MS, answer

__all__ = ["live"]

# The site's key first, as in every sort key of schema.py: the hostname alone is the key's second column,
# which the primary index cannot range on across sites.
_SITE: Final = f"site_key = {SITE_KEY.format(column='{hostname:String}')} AND hostname = {{hostname:String}}"
_OPEN_GROUPS: Final = f"""
    SELECT pathname, referrer, country, count()
    FROM (
        SELECT any(pathname) AS pathname,
               any(if(referrer_group = '', referrer_host, referrer_group)) AS referrer,
               any(country) AS country
        FROM views
        WHERE {_SITE} AND date_created >= {{since:Int64}}
        GROUP BY bid
        HAVING sum(sign) > 0 AND sum(sign * isNull(duration_ms)) > 0
    )
    GROUP BY pathname, referrer, country
"""


def live(client: Client, hostname: str, now_ms: int) -> dict[str, Any]:
    """The pages of `hostname` open at `now_ms` (Unix ms), from the views of the last OPEN_MS only."""
    rows = client.rows(_OPEN_GROUPS, {"hostname": hostname, "since": now_ms - OPEN_MS})
    return answer((str(page), str(referrer), str(country), int(count)) for page, referrer, country, count in rows)
