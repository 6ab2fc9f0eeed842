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


async def set_tenant(conn: asyncpg.Connection, tenant: str) -> None:
    """Scope the current transaction to ``tenant`` (is_local: ends with the transaction)."""
    await conn.execute("SELECT set_config('ragline.tenant', $1, true)", tenant)


@asynccontextmanager
async def tenant_tx(
    pool: asyncpg.Pool, tenant: str, *, readonly: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn, conn.transaction(readonly=readonly):
        await set_tenant(conn, tenant)
        yield conn
