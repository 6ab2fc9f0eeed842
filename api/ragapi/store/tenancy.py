"""The tenant of a unit of work, set where Postgres enforces it.

Row-level security on every tenant-owned table compares ``tenant`` with the
per-transaction setting ``ragline.tenant``. Every request-path transaction starts with
``set_tenant``; outside one the setting is empty and the policies return no rows, so a
query that forgets the tenant leaks nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from ragapi.store.sql_tracing import plumbing


async def set_tenant(conn: asyncpg.Connection, tenant: str) -> None:
    """Scope the current transaction to ``tenant`` (is_local: ends with the transaction)."""
    await conn.execute("SELECT set_config('ragline.tenant', $1, true)", tenant)


@asynccontextmanager
async def tenant_tx(
    pool: asyncpg.Pool, tenant: str, *, readonly: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection in a transaction scoped to ``tenant``.

    Only the statements run inside get SQL spans: BEGIN, the tenant setting and COMMIT
    are plumbing (as is the pool's reset, see ``store.db``), and a span each for them
    doubled the spans of a search, and tracing's cost with them. The enclosing span's
    duration still covers them, and their errors still raise.
    """
    async with pool.acquire() as conn:
        tx = conn.transaction(readonly=readonly)
        with plumbing(conn):
            await tx.start()
        try:
            with plumbing(conn):
                await set_tenant(conn, tenant)
            yield conn
        except BaseException:
            with plumbing(conn):
                await tx.rollback()
            raise
        with plumbing(conn):
            await tx.commit()
