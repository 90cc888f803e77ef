"""Where data lives: files (privacy.io), PostgreSQL (postgres.py)."""

from privacy.sources.postgres import PostgresSource, PostgresTable

__all__ = ["PostgresSource", "PostgresTable"]
