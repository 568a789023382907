"""The ClickHouse analytics engine: page views, custom events and drop counts in MergeTree tables (docs/scale.md)."""
