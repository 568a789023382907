"""/tenant/settings and /settings/usage over real HTTP, demo mode, and the /proc parsers."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from medama_core import usage
from medama_core.api import BlockSettings, settings
from medama_core.app import open_context
from medama_core.config import Config
from medama_core.log import Logger
from medama_core.store.sqlite import db, meta
from tests.api.test_auth import error
from tests.helpers import Client, LiveServer, live_server

DEFAULTS = {
    "script_type": ["default"],
    "blockAbusiveIPs": True,
    "blockTorExitNodes": True,
    "blockedIPs": [],
    "site_daily_hit_quota": 500_000,
    "public_url": "",
}


@pytest.fixture
def admin(client: Client) -> Client:
    client.login()
    return client


def stored(server: LiveServer) -> dict[str, str]:
    with sqlite3.connect(server.config.appdb) as conn:
        return dict(conn.execute("SELECT key, value FROM tenant_settings").fetchall())


def test_defaults_then_partial_patches_return_everything(admin: Client, server: LiveServer) -> None:
    assert admin.get("/api/tenant/settings").json() == DEFAULTS
    result = admin.patch("/api/tenant/settings", json_body={"blockTorExitNodes": False})
    assert result.json() == DEFAULTS | {"blockTorExitNodes": False}
    result = admin.patch(
        "/api/tenant/settings",
        json_body={"script_type": ["click-events", "page-events"], "blockedIPs": ["192.0.2.1", "2001:DB8::/32"]},
    )
    expected = {
        "script_type": ["click-events", "page-events"],
        "blockAbusiveIPs": True,
        "blockTorExitNodes": False,
        "blockedIPs": ["192.0.2.1", "2001:db8::/32"],
        "site_daily_hit_quota": 500_000,
        "public_url": "",
    }
    assert result.json() == expected
    assert admin.get("/api/tenant/settings").json() == expected
    # Upstream's keys and formats (spec §9.1).
    assert stored(server) == {
        "block_tor_exit_nodes": "false",
        "script_type": "click-events,page-events",
        "blocked_ips": "192.0.2.1,2001:db8::/32",
    }


def test_script_type_picks_the_tracker_and_empty_means_default(admin: Client) -> None:
    default = admin.get("/script.js").body
    click = admin.get("/scripts/click-events.js").body
    assert default != click
    admin.patch("/api/tenant/settings", json_body={"script_type": ["click-events"]})
    assert admin.get("/script.js").body == click
    result = admin.patch("/api/tenant/settings", json_body={"script_type": []})
    assert result.json()["script_type"] == ["default"]
    assert admin.get("/script.js").body == default


def test_blocked_ips_are_normalised_and_deduplicated(admin: Client) -> None:
    result = admin.patch("/api/tenant/settings", json_body={"blockedIPs": ["10.1.2.3/8", "10.0.0.0/8", "1.2.3.4/32"]})
    assert result.json()["blockedIPs"] == ["10.0.0.0/8", "1.2.3.4"]
    assert admin.patch("/api/tenant/settings", json_body={"blockedIPs": []}).json()["blockedIPs"] == []


@pytest.mark.parametrize(
    "body, message",
    [
        (
            {"script_type": ["fancy"]},
            "script_type: unknown value 'fancy'; use default, click-events, page-events, outbound-links,"
            " file-downloads, not-found-pages",
        ),
        ({"script_type": ["default", "default"]}, "script_type: items must be unique"),
        ({"script_type": "default"}, "script_type: must be a list of strings"),
        ({"script_type": [1]}, "script_type: must be a list of strings"),
        ({"blockAbusiveIPs": "true"}, "blockAbusiveIPs: must be true or false"),
        ({"blockTorExitNodes": 1}, "blockTorExitNodes: must be true or false"),
        ({"blockTorExitNodes": None}, "blockTorExitNodes: must be true or false"),
        ({"blockedIPs": ["1.2.3.4", "not-an-ip"]}, "blockedIPs: invalid IP address or CIDR: 'not-an-ip'"),
        ({"blockedIPs": ["1.2.3.4/33"]}, "blockedIPs: invalid IP address or CIDR: '1.2.3.4/33'"),
        ({"blockedIPs": ["fe80::1%eth0"]}, "blockedIPs: invalid IP address or CIDR: 'fe80::1%eth0'"),
        ({"blockedIPs": ["1.2.3.4", "1.2.3.4"]}, "blockedIPs: items must be unique"),
        ({"blockedIPs": "1.2.3.4"}, "blockedIPs: must be a list of strings"),
        ([], "request body must be a JSON object"),
    ],
)
def test_tenant_validation(admin: Client, server: LiveServer, body: Any, message: str) -> None:
    assert error(admin.patch("/api/tenant/settings", json_body=body)) == (400, message)
    assert stored(server) == {}  # nothing half-applied


def test_too_many_blocked_ips(admin: Client) -> None:
    entries = [f"10.{i // 256 % 256}.{i % 256}.1" for i in range(settings.MAX_BLOCKED_IPS + 1)]
    status, message = error(admin.patch("/api/tenant/settings", json_body={"blockedIPs": entries}))
    assert (status, message) == (400, f"blockedIPs: at most {settings.MAX_BLOCKED_IPS} items")


def test_settings_persist_and_apply_at_startup(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        client = server.client()
        client.login()
        client.patch(
            "/api/tenant/settings",
            json_body={
                "script_type": ["page-events"],
                "blockAbusiveIPs": False,
                "blockedIPs": ["198.51.100.0/24"],
                "site_daily_hit_quota": 7,
            },
        )
        client.close()
    with live_server(tmp_path) as server:
        client = server.client()
        client.login()
        assert client.get("/api/tenant/settings").json() == {
            "script_type": ["page-events"],
            "blockAbusiveIPs": False,
            "blockTorExitNodes": True,
            "blockedIPs": ["198.51.100.0/24"],
            "site_daily_hit_quota": 7,
            "public_url": "",
        }
        assert client.get("/script.js").body == client.get("/scripts/page-events.js").body
        client.close()


def test_startup_builds_block_settings_from_the_database(tmp_path: Path) -> None:
    config = Config(appdb=str(tmp_path / "meta.db"), analyticsdb=str(tmp_path / "analytics.db"))

    async def load(values: dict[str, str]) -> BlockSettings:
        with sqlite3.connect(config.appdb) as conn:
            db.migrate(conn, meta.MIGRATIONS)
            for key, value in values.items():
                conn.execute("INSERT OR REPLACE INTO tenant_settings VALUES (:k, :v, 0)", {"k": key, "v": value})
        ctx = open_context(config, Logger("json", "error"))
        for hook in ctx.on_shutdown:
            await hook()
        ctx.meta.close()
        ctx.analytics.close()
        return ctx.block_settings

    assert asyncio.run(load({})) == BlockSettings(abusive=True, tor=True, ips=())
    values = {"block_abusive_ips": "false", "block_tor_exit_nodes": "true", "blocked_ips": "1.2.3.4,bogus,10.0.0.0/8"}
    assert asyncio.run(load(values)) == BlockSettings(abusive=False, tor=True, ips=("1.2.3.4", "10.0.0.0/8"))


# Resource usage.


def test_user_usage_and_settings_usage(admin: Client) -> None:
    body = admin.get("/api/user/usage").json()
    assert set(body) == {"cpu", "memory", "disk", "databases"}
    assert 0 <= body["cpu"]["usage"] <= 100
    assert 1 <= body["cpu"]["cores"] <= body["cpu"]["threads"]
    assert 0 < body["memory"]["used"] < body["memory"]["total"]
    assert 0 < body["disk"]["used"] <= body["disk"]["total"]
    full = admin.get("/api/settings/usage").json()
    assert full["metadata"] == {"threads": 2, "memory_limit": ""}


def test_patch_settings_usage_applies_and_persists(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        client = server.client()
        client.login()
        result = client.patch("/api/settings/usage", json_body={"threads": 3, "memory_limit": "64 MiB"})
        assert (result.status, result.body) == (201, b"")
        assert client.get("/api/settings/usage").json()["metadata"] == {"threads": 3, "memory_limit": "64MiB"}
        client.close()
    with live_server(tmp_path) as server:
        client = server.client()
        client.login()
        assert client.get("/api/settings/usage").json()["metadata"] == {"threads": 3, "memory_limit": "64MiB"}
        client.patch("/api/settings/usage", json_body={"memory_limit": ""})
        assert client.get("/api/settings/usage").json()["metadata"] == {"threads": 3, "memory_limit": ""}
        client.close()


@pytest.mark.parametrize(
    "body, message",
    [
        ({"threads": 0}, "threads: must be from 1 to 64"),
        ({"threads": 65}, "threads: must be from 1 to 64"),
        ({"threads": 2.5}, "threads: must be a whole number"),
        ({"threads": True}, "threads: must be a whole number"),
        ({"threads": "4"}, "threads: must be a whole number"),
        ({"memory_limit": "lots"}, "memory_limit: 'lots' is not a size such as '256MiB' or '1GB'"),
        ({"memory_limit": "12XB"}, "memory_limit: '12XB' is not a size such as '256MiB' or '1GB'"),
        ({"memory_limit": "1MB"}, "memory_limit: must be from 16MiB to 1TiB"),
        ({"memory_limit": "2TiB"}, "memory_limit: must be from 16MiB to 1TiB"),
        ({"memory_limit": 1024}, "memory_limit: must be a string"),
        ({"memory_limit": "9" * 33}, "memory_limit: must be 0 to 32 characters long"),
    ],
)
def test_settings_usage_validation(admin: Client, body: Any, message: str) -> None:
    assert error(admin.patch("/api/settings/usage", json_body=body)) == (400, message)


@pytest.mark.parametrize(
    "text, size",
    [("16MiB", 16 * 1024**2), ("1GB", 10**9), ("1.5 gib", 3 * 1024**3 // 2), ("512kb", 512_000), ("100B", 100)],
)
def test_parse_size(text: str, size: int) -> None:
    assert settings.parse_size(text) == size


def test_cache_size_follows_the_memory_limit() -> None:
    assert settings.cache_kib(0, 6) == db.CACHE_SIZE_KIB  # no limit: the default
    assert settings.cache_kib(64 * 1024**2, 60) == 64 * 1024 // 2 // 60
    assert settings.cache_kib(16 * 1024**2, 200) == settings.MIN_CACHE_KIB
    assert settings.cache_kib(1024**4, 6) == db.CACHE_SIZE_KIB


# Demo mode: every write but login is refused; reads work.

DEMO_WRITES = [
    ("PATCH", "/api/user", {"username": "someone"}),
    ("DELETE", "/api/user", None),
    ("POST", "/api/websites", {"hostname": "new.example"}),
    ("PATCH", "/api/websites/example.com", {"hostname": "renamed.example"}),
    ("DELETE", "/api/websites/example.com", None),
    ("PATCH", "/api/tenant/settings", {"blockTorExitNodes": False}),
    ("PATCH", "/api/settings/usage", {"threads": 4}),
]


def test_demo_mode_refuses_writes_and_allows_reads(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:  # a site to read, made before demo mode
        client = server.client()
        client.login()
        client.post("/api/websites", json_body={"hostname": "example.com"})
        client.close()
    with live_server(tmp_path, demo=True) as server:
        client = server.client()
        client.login()
        for method, path, body in DEMO_WRITES:
            assert error(client.request(method, path, json_body=body)) == (403, "user in demo mode"), path
        for path in ("/api/user", "/api/websites", "/api/websites/example.com", "/api/tenant/settings"):
            assert client.get(path).status == 200, path
        assert client.get("/api/user/usage").status == 200
        assert client.post("/api/auth/logout").status == 204
        client.close()


# The /proc parsers, on fixed text.

PROC_STAT = """cpu  100 5 50 800 40 0 5 0 0 0
cpu0 50 2 25 400 20 0 3 0 0 0
intr 12345
"""

CPUINFO_TWO_CORES_FOUR_THREADS = "\n\n".join(
    f"processor\t: {i}\nmodel name\t: Test CPU\nphysical id\t: 0\ncore id\t\t: {i // 2}" for i in range(4)
)
CPUINFO_NO_TOPOLOGY = "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n"

MEMINFO = """MemTotal:        2000000 kB
MemFree:          500000 kB
MemAvailable:    1500000 kB
Buffers:          100000 kB
Cached:           400000 kB
"""


def test_parse_proc_stat() -> None:
    times = usage.parse_proc_stat(PROC_STAT)
    assert times == usage.CPUTimes(busy=160, total=1000)
    assert usage.parse_proc_stat("intr 1\n") is None
    assert usage.parse_proc_stat("cpu  a b c\n") is None


def test_cpu_percent_is_over_the_interval() -> None:
    first = usage.CPUTimes(busy=160, total=1000)
    assert usage.cpu_percent(None, first) == 16.0
    assert usage.cpu_percent(first, usage.CPUTimes(busy=210, total=1100)) == 50.0
    assert usage.cpu_percent(first, first) == 0.0


def test_parse_cpuinfo() -> None:
    assert usage.parse_cpuinfo(CPUINFO_TWO_CORES_FOUR_THREADS) == (2, 4)
    assert usage.parse_cpuinfo(CPUINFO_NO_TOPOLOGY) == (2, 2)
    assert usage.parse_cpuinfo("") == (0, 0)


def test_parse_meminfo() -> None:
    assert usage.parse_meminfo(MEMINFO) == (500_000 * 1024, 2_000_000 * 1024)
    old_kernel = MEMINFO.replace("MemAvailable:    1500000 kB\n", "")
    assert usage.parse_meminfo(old_kernel) == (1_000_000 * 1024, 2_000_000 * 1024)


def test_read_usage_from_a_fake_proc(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text(PROC_STAT)
    (proc / "cpuinfo").write_text(CPUINFO_TWO_CORES_FOUR_THREADS)
    (proc / "meminfo").write_text(MEMINFO)
    sampled, times = usage.read_usage(str(tmp_path / "me_meta.db"), None, proc)
    assert (sampled.cpu_usage, sampled.cores, sampled.threads) == (16.0, 2, 4)
    assert sampled.memory_total == 2_000_000 * 1024
    assert sampled.disk_total > 0
    assert times == usage.CPUTimes(160, 1000)
    empty = tmp_path / "empty"
    empty.mkdir()
    fallback, times = usage.read_usage(str(tmp_path / "x.db"), None, empty)
    assert times is None and fallback.cpu_usage == 0.0 and fallback.threads >= 1 and fallback.memory_total > 0


# The public URL (for the tracker snippet): a setting, else -publicurl; checked and normalised.


@pytest.mark.parametrize(
    ("given", "stored_as"),
    [
        ("https://Stats.Example.com/", "https://stats.example.com"),
        ("http://192.0.2.10:8080", "http://192.0.2.10:8080"),
        ("  https://[2001:DB8::1]:8443/ ", "https://[2001:db8::1]:8443"),
        ("", ""),
    ],
)
def test_public_url_is_normalised(admin: Client, server: LiveServer, given: str, stored_as: str) -> None:
    assert admin.patch("/api/tenant/settings", json_body={"public_url": given}).json()["public_url"] == stored_as
    assert admin.get("/api/tenant/settings").json()["public_url"] == stored_as
    assert stored(server) == {"public_url": stored_as}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("stats.example.com", "must start with http:// or https://"),
        ("ftp://stats.example.com", "must start with http:// or https://"),
        ("https://stats.example.com/medama", "must not have a path"),
        ("https://stats.example.com/?a=1", "must not have a query"),
        ("https://stats.example.com#top", "must not have a query"),
        ("https://user:pw@stats.example.com", "must not hold a user name or password"),
        ("https://stats.example.com:99999", "its port must be a number from 1 to 65535"),
        ("https://stats.example.com:0", "its port must be a number from 1 to 65535"),
        ("https://", "needs a host name"),
        ("https://exa mple.com", "must not hold spaces"),
        ("https://bad_name.example", "is not a host name"),
        ("https://[::1", "broken IPv6 address"),
    ],
)
def test_a_bad_public_url_is_400(admin: Client, server: LiveServer, given: str, message: str) -> None:
    status, text = error(admin.patch("/api/tenant/settings", json_body={"public_url": given}))
    assert status == 400 and text.startswith("public_url: ") and message in text, text
    assert stored(server) == {}


def test_the_flag_is_the_public_url_until_the_setting_is_given(tmp_path: Path) -> None:
    with live_server(tmp_path, publicurl="https://flag.example") as server:
        client = server.client()
        client.login()
        assert client.get("/api/tenant/settings").json()["public_url"] == "https://flag.example"
        patched = client.patch("/api/tenant/settings", json_body={"public_url": "https://setting.example"})
        assert patched.json()["public_url"] == "https://setting.example"
        unset = client.patch("/api/tenant/settings", json_body={"public_url": ""})
        assert unset.json()["public_url"] == "https://flag.example"
        client.close()
