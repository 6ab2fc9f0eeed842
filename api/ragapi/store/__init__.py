"""Postgres access: the connection pool, migrations, indexes, documents and search."""
