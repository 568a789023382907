"""Medama: self-hostable, cookie-free web analytics (version and build stamp)."""

__version__ = "0.1.0"

# Replaced by build_zipapp.py inside the archive; "development" when run from source.
COMMIT = "development"
