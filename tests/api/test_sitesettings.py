"""/websites/{hostname}/settings over real HTTP, and the tracker `/script.js?site=` serves from them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core import assets
from medama_core.access import FORBIDDEN
from medama_core.api import sitesettings
from medama_core.http.errors import HTTPError
from medama_core.store.meta_rows import SITE_SETTING_FIELDS
from tests.api.test_auth import error
from tests.api.test_users import add_user
from tests.helpers import Client, LiveServer, live_server

SITE = "example.com"
DEFAULTS = {
    "clickEvents": None,
    "pageEvents": None,
    "outboundLinks": None,
    "fileDownloads": None,
    "notFoundPages": None,
    "downloadExtensions": None,
    "retentionDays": None,
    "timezone": None,
}
SCRIPTS = Path(__file__).resolve().parents[2] / "medama_core" / "static" / "scripts"


@pytest.fixture
def admin(client: Client) -> Client:
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    return client


def tracker(features: list[str], extensions: list[str] | None = None) -> dict[str, Any]:
    return {
        "features": features,
        "variant": assets.script_variant(features),
        "downloadExtensions": list(assets.DEFAULT_DOWNLOAD_EXTENSIONS) if extensions is None else extensions,
        "script": f"/script.js?site={SITE}",
    }


def test_defaults_then_a_partial_update(admin: Client) -> None:
    assert admin.get(f"/api/websites/{SITE}/settings").json() == {**DEFAULTS, "tracker": tracker([])}
    changed = admin.patch(
        f"/api/websites/{SITE}/settings",
        json_body={
            "outboundLinks": True,
            "fileDownloads": True,
            "downloadExtensions": [" PDF", ".zip", "pdf", "7z"],
            "retentionDays": 400,
            "timezone": "Europe/Paris",
            "tracker": {"ignored": "read-only"},
            "unknown": 1,
        },
    )
    expected = {
        **DEFAULTS,
        "outboundLinks": True,
        "fileDownloads": True,
        "downloadExtensions": ["pdf", "zip", "7z"],  # trimmed, dot dropped, lower-cased, repeats once
        "retentionDays": 400,
        "timezone": "Europe/Paris",
        "tracker": tracker(["file-downloads", "outbound-links"], ["pdf", "zip", "7z"]),
    }
    assert changed.status == 200 and changed.json() == expected
    assert admin.get(f"/api/websites/{SITE}/settings").json() == expected
    # Only what is sent changes; null resets a field.
    again = admin.patch(f"/api/websites/{SITE}/settings", json_body={"fileDownloads": None, "retentionDays": None})
    assert again.json() == {
        **expected,
        "fileDownloads": None,
        "retentionDays": None,
        "tracker": tracker(["outbound-links"], ["pdf", "zip", "7z"]),
    }


def test_site_features_override_the_tenant_script_type(admin: Client) -> None:
    assert (
        admin.patch("/api/tenant/settings", json_body={"script_type": ["click-events", "outbound-links"]}).status == 200
    )
    site = admin.get(f"/api/websites/{SITE}/settings").json()
    assert site["tracker"] == tracker(["click-events", "outbound-links"])  # all null: the tenant's
    site = admin.patch(f"/api/websites/{SITE}/settings", json_body={"clickEvents": False, "notFoundPages": True}).json()
    assert site["tracker"] == tracker(["not-found-pages", "outbound-links"])
    assert admin.patch("/api/tenant/settings", json_body={"script_type": ["page-events"]}).status == 200
    site = admin.get(f"/api/websites/{SITE}/settings").json()
    assert site["tracker"] == tracker(["not-found-pages", "page-events"])  # follows the tenant where null


def test_script_js_serves_each_site_its_own_build(admin: Client, server: LiveServer) -> None:
    assert admin.post("/api/websites", json_body={"hostname": "other.example"}).status == 201
    admin.patch(f"/api/websites/{SITE}/settings", json_body={"outboundLinks": True, "notFoundPages": True})
    own = admin.get(f"/script.js?site={SITE}")
    assert own.status == 200
    assert own.body == (SCRIPTS / "not-found-pages.outbound-links.js").read_bytes()
    assert own.headers["cache-control"] == assets.TRACKER_CACHE
    assert own.headers["content-type"] == "application/javascript; charset=utf-8"
    # Revalidation works per build.
    assert admin.get(f"/script.js?site={SITE}", headers={"If-None-Match": own.headers["etag"]}).status == 304
    # Another site, an unknown one, an upper-case name and no name: the server-wide build or this one.
    default = (SCRIPTS / "default.js").read_bytes()
    assert admin.get("/script.js?site=other.example").body == default
    assert admin.get("/script.js?site=nowhere.example").body == default
    assert admin.get(f"/script.js?site={SITE.upper()}").body == own.body
    assert admin.get("/script.js").body == default
    assert admin.get("/script.js?x=1").body == default


def test_a_site_download_list_is_written_into_its_build(admin: Client) -> None:
    admin.patch(
        f"/api/websites/{SITE}/settings", json_body={"fileDownloads": True, "downloadExtensions": ["pdf", "key"]}
    )
    body = admin.get(f"/script.js?site={SITE}").body
    base = (SCRIPTS / "file-downloads.js").read_bytes()
    default_list = "|".join(assets.DEFAULT_DOWNLOAD_EXTENSIONS).encode()
    assert body == base.replace(default_list, b"pdf|key")
    assert default_list not in body
    gzipped = admin.get(f"/script.js?site={SITE}", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers.get("content-encoding") == "gzip"
    # Back to the default list: the packaged file as it is.
    admin.patch(f"/api/websites/{SITE}/settings", json_body={"downloadExtensions": None})
    assert admin.get(f"/script.js?site={SITE}").body == base


def test_settings_follow_a_rename_and_go_with_a_delete(admin: Client) -> None:
    admin.patch(f"/api/websites/{SITE}/settings", json_body={"outboundLinks": True})
    assert admin.patch(f"/api/websites/{SITE}", json_body={"hostname": "renamed.example"}).status == 200
    assert admin.get("/api/websites/renamed.example/settings").json()["outboundLinks"] is True
    outbound = (SCRIPTS / "outbound-links.js").read_bytes()
    assert admin.get("/script.js?site=renamed.example").body == outbound
    assert admin.get(f"/script.js?site={SITE}").body != outbound
    assert admin.delete("/api/websites/renamed.example").status == 204
    assert admin.post("/api/websites", json_body={"hostname": "renamed.example"}).status == 201
    assert admin.get("/api/websites/renamed.example/settings").json()["outboundLinks"] is None
    assert admin.get("/script.js?site=renamed.example").body != outbound


def test_a_change_written_by_another_process_is_followed(admin: Client, server: LiveServer) -> None:
    with sqlite3.connect(server.config.appdb) as conn:
        conn.execute(
            "INSERT INTO website_settings (hostname, outbound_links, date_updated) VALUES (:h, 1, 0)", {"h": SITE}
        )
    outbound = (SCRIPTS / "outbound-links.js").read_bytes()
    deadline = time.monotonic() + 5
    while admin.get(f"/script.js?site={SITE}").body != outbound:
        assert time.monotonic() < deadline, "the server did not follow the change"
        time.sleep(0.1)


def test_site_and_role_checks(admin: Client, server: LiveServer) -> None:
    """A viewer reads the settings of the sites granted to them and changes none; any other site is unknown to
    them (404), as a site that does not exist is to anyone (docs/auth.md)."""
    assert admin.post("/api/websites", json_body={"hostname": "bob.example"}).status == 201
    add_user(server, "bob", "bob-password", role="viewer", websites=("bob.example",))
    for method, body in (("GET", None), ("PATCH", {"outboundLinks": True})):
        assert error(admin.request(method, "/api/websites/nowhere.example/settings", json_body=body)) == (
            404,
            "website not found",
        )
    bob = server.client()
    bob.login("bob", "bob-password")
    assert bob.get("/api/websites/bob.example/settings").status == 200
    assert error(bob.patch("/api/websites/bob.example/settings", json_body={"outboundLinks": True})) == (
        403,
        FORBIDDEN,
    )
    assert error(bob.get(f"/api/websites/{SITE}/settings")) == (404, "website not found")
    bob.close()
    anonymous = server.client()
    assert anonymous.get(f"/api/websites/{SITE}/settings").status == 401
    anonymous.close()
    assert error(admin.get("/api/websites/not_a_host/settings"))[0] == 400


def test_demo_mode_refuses_changes(tmp_path: Path) -> None:
    with live_server(tmp_path, demo=True) as running:
        client = running.client()
        client.login()
        with sqlite3.connect(running.config.appdb) as conn:
            user = conn.execute("SELECT id FROM users").fetchone()[0]
            conn.execute("INSERT INTO websites VALUES ('example.com', :u, 1, 1, '{}')", {"u": user})
        time.sleep(1.5)  # the server follows the new site within a second
        assert client.get(f"/api/websites/{SITE}/settings").status == 200
        assert error(client.patch(f"/api/websites/{SITE}/settings", json_body={"pageEvents": True})) == (
            403,
            "user in demo mode",
        )
        client.close()


@pytest.mark.parametrize(
    "body, message",
    [
        ({"outboundLinks": "true"}, "outboundLinks: must be true, false or null"),
        ({"clickEvents": 1}, "clickEvents: must be true, false or null"),
        ({"downloadExtensions": "pdf"}, "downloadExtensions: must be a list of file extensions or null"),
        ({"downloadExtensions": [1]}, "downloadExtensions: must be a list of file extensions or null"),
        ({"downloadExtensions": []}, "downloadExtensions: 1 to 100 extensions (null for the default list)"),
        ({"downloadExtensions": ["x"] * 101}, "downloadExtensions: 1 to 100 extensions (null for the default list)"),
        (
            {"downloadExtensions": ["tar.gz"]},
            "downloadExtensions: 'tar.gz' is not an extension (1 to 10 letters or digits)",
        ),
        ({"downloadExtensions": ["a|b"]}, "downloadExtensions: 'a|b' is not an extension (1 to 10 letters or digits)"),
        ({"downloadExtensions": ["."]}, "downloadExtensions: '.' is not an extension (1 to 10 letters or digits)"),
        ({"downloadExtensions": ["ⅷ"]}, "downloadExtensions: 'ⅷ' is not an extension (1 to 10 letters or digits)"),
        (
            {"downloadExtensions": ["abcdefghijk"]},
            "downloadExtensions: 'abcdefghijk' is not an extension (1 to 10 letters or digits)",
        ),
        ({"retentionDays": 29}, "retentionDays: must be from 30 to 36525, or null"),
        ({"retentionDays": 36526}, "retentionDays: must be from 30 to 36525, or null"),
        ({"retentionDays": 90.0}, "retentionDays: must be a whole number of days or null"),
        ({"retentionDays": True}, "retentionDays: must be a whole number of days or null"),
        ({"timezone": "Mars/Olympus"}, "timezone: 'Mars/Olympus' is not an IANA time zone name (such as Europe/Paris)"),
        ({"timezone": ""}, "timezone: must be an IANA time zone name such as Europe/Paris, or null"),
        ({"timezone": 1}, "timezone: must be an IANA time zone name such as Europe/Paris, or null"),
        ({"timezone": "europe/paris"}, "timezone: 'europe/paris' is not an IANA time zone name (such as Europe/Paris)"),
    ],
)
def test_bad_values_are_400_and_change_nothing(admin: Client, body: dict[str, Any], message: str) -> None:
    before = admin.get(f"/api/websites/{SITE}/settings").json()
    assert error(admin.patch(f"/api/websites/{SITE}/settings", json_body={"pageEvents": True, **body})) == (
        400,
        message,
    )
    assert admin.get(f"/api/websites/{SITE}/settings").json() == before


def test_body_must_be_a_json_object(admin: Client) -> None:
    assert error(admin.patch(f"/api/websites/{SITE}/settings", json_body=[])) == (
        400,
        "request body must be a JSON object",
    )
    result = admin.patch(f"/api/websites/{SITE}/settings", body=b"{}", headers={"Content-Type": "text/plain"})
    assert result.status == 415


def test_time_zones_the_tracker_reports_are_accepted(admin: Client) -> None:
    for zone in ("UTC", "America/Argentina/ComodRivadavia", "Asia/Kolkata", "Pacific/Chatham"):
        assert admin.patch(f"/api/websites/{SITE}/settings", json_body={"timezone": zone}).json()["timezone"] == zone


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
FIELD_NAMES = st.sampled_from([*DEFAULTS, "tracker", "other"])
VALUES = st.one_of(
    JSON,
    st.lists(st.text(alphabet="abcXYZ019. |é", max_size=12), max_size=8),
    st.integers(min_value=-10, max_value=40_000),
    st.sampled_from(["Europe/Paris", "UTC", "Etc/GMT+5", "Nowhere/Else"]),
)


@given(body=st.dictionaries(FIELD_NAMES, VALUES, max_size=8))
def test_any_body_gives_store_changes_or_a_400(body: dict[str, Any]) -> None:
    """The parser's invariant: store fields of the right types, or a 400 naming a field; nothing else."""
    try:
        changes = sitesettings.parse_settings_body(body)
    except HTTPError as exc:
        assert exc.status == 400 and exc.message.split(":")[0] in DEFAULTS
        return
    assert set(changes) <= set(SITE_SETTING_FIELDS)
    for field, value in changes.items():
        if value is None:
            continue
        if field == "download_extensions":
            assert isinstance(value, tuple) and 1 <= len(value) <= sitesettings.MAX_EXTENSIONS
            assert all(ext.isascii() and ext.isalnum() and ext == ext.lower() for ext in value)
            assert len(set(value)) == len(value)
        elif field == "retention_days":
            assert (
                isinstance(value, int) and sitesettings.MIN_RETENTION_DAYS <= value <= sitesettings.MAX_RETENTION_DAYS
            )
        elif field == "timezone":
            assert value in sitesettings.known_timezones()
        else:
            assert isinstance(value, bool)
