"""The SQLite engine: me_meta.db and me_analytics.db, synchronous store functions over a connection."""
