"""Pure enrichment of tracker hits: no I/O, no HTTP types, no database."""
