"""Fresh databases on the shared test Postgres, for tests that need a schema to themselves."""

from __future__ import annotations

import uuid

import asyncpg

from ragapi.embedded import EmbeddedStack


def on_database(url: str, db: str) -> str:
    """``url`` pointed at database ``db`` (same server, role and password)."""
    return url.rsplit("/", 1)[0] + f"/{db}"


async def fresh_database(stack: EmbeddedStack, prefix: str) -> str:
    """A new, empty database owned by ``ragline_owner`` with ``vector`` installed (as a DBA
    provisions it); returns its name."""
    db = f"{prefix}_{uuid.uuid4().hex[:8]}"
    su = await asyncpg.connect(stack.postgres.superuser_url)
    await su.execute(f'CREATE DATABASE "{db}" OWNER ragline_owner')
    await su.close()
    su = await asyncpg.connect(on_database(stack.postgres.superuser_url, db))
    await su.execute("CREATE EXTENSION vector")
    await su.close()
    return db
