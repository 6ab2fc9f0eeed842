"""The asyncpg pool, with pgvector's binary codec on every connection."""

from __future__ import annotations

from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector

from ragapi.store.sql_tracing import TracedConnection


async def _init_connection(conn: asyncpg.Connection) -> None:
    await register_vector(conn)


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, traced: bool = False, **kw: Any
) -> asyncpg.Pool:
    """``traced``: a CLIENT span per statement (``store.sql_tracing``); off, the plain
    asyncpg connection, with nothing in its way."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=60,
        # Identifiers for the many per-index statements differ only by table; keep the cache
        # bounded instead of unbounded prepared-statement growth.
        statement_cache_size=256,
        connection_class=TracedConnection if traced else asyncpg.Connection,
        **kw,
    )
    return pool
