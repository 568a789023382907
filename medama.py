#!/usr/bin/env python3
"""Entry point, and nothing else: the build stages this file as the archive's __main__.py."""

import sys

from medama_core.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
