"""The data tables load through importlib.resources from inside a zip archive, as in the .pyz."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import medama_core

SCRIPT = """
from medama_core.ingest import geo, ipfilter, language, referrer
assert geo.__file__.endswith(".py") and ".zip" in geo.__file__, geo.__file__
assert geo.country_for("Asia/Calcutta") == "India"
assert geo.country_for("US/Eastern") == "United States"
assert referrer.classify("https://www.google.com/", "a.com").group == "Google"
assert isinstance(referrer.classify("https://0-0.fr/", "a.com"), referrer.Spam)
assert language.parse_accept_language("en-GB").dialect == "British English"
assert ipfilter.IPFilter(abusive=True, tor=True).blocked("1.10.16.1")  # FireHOL 1.10.16.0/20
assert ipfilter.IPFilter(tor=True).blocked("171.25.193.25")  # first Tor exit of the snapshot
print("ok")
"""


def test_ingest_reads_its_tables_from_a_zip(tmp_path: Path) -> None:
    package = Path(medama_core.__file__).parent
    archive = tmp_path / "medama.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in package.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, Path("medama_core") / path.relative_to(package))
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(archive)!r})\n{SCRIPT}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
