"""The one place that imports psycopg (the driver), lazily, with a one-line error naming the package."""

from __future__ import annotations

import importlib
from types import ModuleType

from medama_core.store.postgres.errors import DriverMissing

PACKAGE = "psycopg[binary]"  # psycopg 3 and its compiled build, which bundles libpq (requirements.txt pins both)
INSTALL_HINT = f"pip install '{PACKAGE}'"


def load() -> ModuleType:
    """psycopg, imported; DriverMissing if it (or a libpq for it) is missing."""
    try:
        return importlib.import_module("psycopg")
    except ImportError as exc:
        # Without the binary build psycopg falls back to the system libpq and says so in `exc`.
        reason = " ".join(str(exc).split())
        raise DriverMissing(
            f"a postgres:// -appdb needs the psycopg driver, which cannot be imported ({reason}); "
            f"install it beside medama with: {INSTALL_HINT}"
        ) from None
