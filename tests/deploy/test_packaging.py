"""Deployment files: systemd units verified by systemd-analyze, Dockerfile/compose/fly.toml linted, docs in step.

No Docker engine or booted systemd runs here, so the container is imitated
instead: the archive is started with exactly the environment the Dockerfile
sets, with /app/data pointed at a temporary directory.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from medama_core.app import API_PREFIX, ROUTES
from medama_core.config import OPTIONS
from tests.deploy.conftest import ROOT, Proc, free_port
from tests.helpers import Client

yaml = pytest.importorskip("yaml")

DEPLOY = ROOT / "deploy"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 is a sandbox, 10 is root with everything; <= 2 reads "OK"
HARDENING = ("DynamicUser=yes", "StateDirectory=medama", "ProtectSystem=strict", "NoNewPrivileges=yes")
HARDENING += ("Restart=on-failure", "CapabilityBoundingSet=", "PrivateTmp=yes", "UMask=0077")


# systemd


def unit_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("name", ["medama.service", "medama@.service"])
def test_units_are_hardened_and_grant_no_capability(name: str) -> None:
    lines = unit_lines(DEPLOY / name)
    for directive in HARDENING:
        assert directive in lines, directive
    assert "AmbientCapabilities=" in lines and not any("CAP_NET_BIND_SERVICE" in line for line in lines)


def test_the_template_differs_from_the_plain_unit_only_in_its_command_and_name() -> None:
    plain = unit_lines(DEPLOY / "medama.service")
    template = unit_lines(DEPLOY / "medama@.service")
    differing = set(plain) ^ set(template)
    assert all(line.startswith(("ExecStart=", "Description=")) for line in differing), differing
    assert "ExecStart=/usr/bin/python3 /opt/medama/medama-%i.pyz start -env -reuseport" in template


def test_the_autossl_drop_in_adds_only_the_port_capability() -> None:
    lines = unit_lines(DEPLOY / "autossl.conf")
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in lines
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in lines
    assert {line.split("=", 1)[0] for line in lines if "=" in line} == {
        "Environment",
        "CapabilityBoundingSet",
        "AmbientCapabilities",
        "PrivateUsers",
    }


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60)


def exposure(unit: Path) -> float:
    result = analyze("security", "--offline=true", str(unit))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None or not Path("/usr/bin/python3").exists(),
    reason="systemd-analyze (Debian package systemd) and /usr/bin/python3 are needed to verify the units",
)


@needs_systemd_analyze
@pytest.mark.parametrize("drop_in", [False, True], ids=["plain", "with-autossl-drop-in"])
@pytest.mark.parametrize(
    "name, instance", [("medama.service", "medama.service"), ("medama@.service", "medama@1.0.service")]
)
def test_systemd_analyze_verifies_the_units(tmp_path: Path, name: str, instance: str, drop_in: bool) -> None:
    unit = tmp_path / instance
    shutil.copy(DEPLOY / name, unit)
    if drop_in:
        (tmp_path / f"{name}.d").mkdir()
        shutil.copy(DEPLOY / "autossl.conf", tmp_path / f"{name}.d" / "autossl.conf")
    result = analyze("verify", str(unit))
    assert result.returncode == 0, result.stderr
    assert instance not in result.stderr and "Unknown" not in result.stderr, result.stderr
    assert exposure(unit) <= MAX_EXPOSURE


# Docker


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def dockerignored(path: str) -> bool:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip()]
    patterns = [p for p in patterns if not p.startswith("#")]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_dockerfile_builds_from_files_that_exist_and_runs_as_a_user_with_a_data_volume() -> None:
    steps = dockerfile()
    assert [args for op, args in steps if op == "FROM"] == ["python:3.12-slim AS build", "python:3.12-slim"]
    for op, args in steps:
        if op == "COPY" and not args.startswith("--from"):
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not dockerignored(source), f"{source} is copied but .dockerignore drops it"
    final = steps[[i for i, (op, _) in enumerate(steps) if op == "FROM"][-1] :]
    users = [args for op, args in final if op == "USER"]
    assert users == ["$RUN_AS"] and ("ARG", "RUN_AS=medama") in final  # root only when a platform asks
    assert ("VOLUME", "/app/data") in final
    assert ("ENTRYPOINT", '["python3", "/app/medama.pyz"]') in final
    assert ("CMD", '["start", "-env"]') in final
    assert any(op == "COPY" and args.endswith("/app/medama.pyz") for op, args in final)
    health = next(args for op, args in final if op == "HEALTHCHECK")
    assert f"{API_PREFIX}/health" in health


def dockerfile_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, args in dockerfile():
        if op == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_the_container_environment_starts_the_server_with_its_data_in_the_volume(
    pyz: Path, tmp_path: Path, procs: list[Proc]
) -> None:
    env = dockerfile_environment()
    assert env["APP_DATABASE_HOST"] == "/app/data/me_meta.db"
    assert env["ANALYTICS_DATABASE_HOST"] == "/app/data/me_analytics.db"
    volume = tmp_path / "volume"
    port = free_port()
    env = {key: value.replace("/app/data", str(volume)) for key, value in env.items()}
    env |= {"PORT": str(port), "PATH": "/usr/bin:/bin"}
    server = Proc(pyz, ["start", "-env"], tmp_path / "container.log", env=env, cwd=tmp_path)
    procs.append(server)
    server.wait_for('"medama is running"')
    client = Client(port)
    assert client.get("/api/health").json()["status"] == "ok"
    client.close()
    assert server.terminate() == 0
    assert (volume / "me_meta.db").exists() and (volume / "me_analytics.db").exists()
    assert json.loads(server.log().splitlines()[-1])["message"] == "stopped"


def test_compose_file_runs_the_image_with_the_volume_of_the_docs() -> None:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = document["services"]["medama"]
    assert service["build"] == "." and (ROOT / "Dockerfile").exists()
    assert "8080:8080" in service["ports"]
    assert "medama-data:/app/data" in service["volumes"]
    assert "medama-data" in document["volumes"]
    documented = {option.env for option in OPTIONS if option.env}
    assert set(service.get("environment", {})) <= documented


def test_fly_toml_mounts_the_data_directory_and_checks_health() -> None:
    config = tomllib.loads((ROOT / "fly.toml").read_text())
    assert config["mounts"][0]["destination"] == "/app/data"
    assert config["http_service"]["internal_port"] == int(config["env"]["PORT"])
    paths = {check["path"] for check in config["http_service"]["checks"]}
    served = {API_PREFIX + route.path for route in ROUTES if route.method == "GET"}
    assert paths and paths <= served
    assert config["build"]["dockerfile"] == "Dockerfile"


# docs/deploy.md


def test_deploy_docs_cover_every_deployment_option_and_name_files_that_exist() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    for name in ("autossl", "autosslemail", "acmedirectory", "acmeca", "httpport", "httpsport", "tlscert", "tlskey"):
        option = next(o for o in OPTIONS if o.name == name)
        assert f"-{name}" in text and str(option.env) in text, name
    for name in ("datadir", "reuseport", "profiler"):
        assert f"-{name}" in text, name
    for path in re.findall(r"\b((?:deploy|docs)/[\w@.-]+\.\w+)", text):
        assert (ROOT / path).exists(), path
    for heading in ("Docker", "Fly.io", "Railway", "systemd", "HTTPS", "Backups", "Upgrades"):
        assert re.search(rf"^#+ .*{re.escape(heading)}", text, re.M), heading
