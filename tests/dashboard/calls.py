"""Watching the API calls a page makes, and waiting until it has settled."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import Page, Request, expect

from tests.helpers import Client


class Calls:
    """API calls the page made, as (path, query) with single values, and how many are still open."""

    _by_page: dict[int, Calls] = {}

    def __init__(self, page: Page) -> None:
        self.page = page
        self.items: list[tuple[str, dict[str, str]]] = []
        self.open: set[Request] = set()
        page.on("request", self._record)
        page.on("requestfinished", self._done)
        page.on("requestfailed", self._done)
        Calls._by_page[id(page)] = self

    @classmethod
    def of(cls, page: Page) -> Calls:
        return cls._by_page.get(id(page)) or cls(page)

    def _done(self, request: Request) -> None:
        self.open.discard(request)

    def _record(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.path.startswith("/api/"):
            self.open.add(request)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            self.items.append((parts.path, query))

    def settle(self, quiet_ms: int = 300, timeout_ms: int = 15_000) -> None:
        """Wait until no API call has been open for `quiet_ms` (the page renders right after)."""
        quiet = waited = 0
        self.page.wait_for_timeout(100)
        while quiet < quiet_ms:
            assert waited < timeout_ms, f"API calls still open: {[r.url for r in self.open]}"
            self.page.wait_for_timeout(50)
            waited += 50
            quiet = quiet + 50 if not self.open else 0

    def wait_for(self, path_end: str, count: int, timeout_ms: int = 15_000) -> list[dict[str, str]]:
        """Wait until the page has made at least `count` calls to `path_end`; return them."""
        waited = 0
        while len(found := self.to(path_end)) < count:
            assert waited < timeout_ms, (
                f"{len(found)} of {count} calls to {path_end}; calls: {[p for p, _ in self.items]}"
            )
            self.page.wait_for_timeout(50)
            waited += 50
        return found

    def clear(self) -> None:
        self.items.clear()

    def to(self, path_end: str) -> list[dict[str, str]]:
        return [q for p, q in self.items if p.endswith(path_end)]

    def last(self, path_end: str) -> dict[str, str]:
        found = self.to(path_end)
        assert found, f"no call to {path_end}; calls: {[p for p, _ in self.items]}"
        return found[-1]


def api_json(site: object, path: str, query: dict[str, str]) -> object:
    api: Client = site.api  # type: ignore[attr-defined]
    result = api.get(f"/api{path}?{urlencode(query)}")
    assert result.status == 200, (path, query, result.body)
    return result.json()


def metric(page: Page, name: str) -> str:
    return page.locator(f"[data-metric={name}] .metric-value").inner_text()


def wait_idle(page: Page) -> None:
    Calls.of(page).settle()
    expect(page.locator("[aria-busy=true]")).to_have_count(0)


def main_summary(calls: Calls) -> dict[str, str]:
    """The chart's summary call: of the calls with an interval, the latest window (the other is the previous period)."""
    charted = [q for q in calls.to("/summary") if "interval" in q]
    assert charted, calls.items
    return max(charted, key=lambda q: q["start"])
