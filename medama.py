#!/usr/bin/env python3
"""Entry point, and nothing else: the build stages this file as the archive's __main__.py."""

import sys

# Checked before anything else is imported, in syntax every Python 3 can parse (no f-string): on an
# older interpreter the package itself would fail with an unrelated import or syntax error.
if sys.version_info < (3, 10):  # noqa: UP036 - the point is to run on the versions pyproject.toml excludes
    sys.stderr.write(
        "ERROR: medama needs Python 3.10 or newer; this is Python %d.%d.%d (%s)\n"  # noqa: UP031
        % (sys.version_info[0], sys.version_info[1], sys.version_info[2], sys.executable or "python3")
    )
    sys.exit(2)

from medama_core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
