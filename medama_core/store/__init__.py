"""SQLite storage: synchronous store functions over a connection."""
