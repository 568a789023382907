"""Storage: the protocols and value types every engine shares; the engines in sqlite/, postgres/ and clickhouse/."""
