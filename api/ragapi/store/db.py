"""The asyncpg pool, with pgvector's binary codec on every connection."""

from __future__ import annotations

from typing import Any

import asyncpg
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pgvector.asyncpg import register_vector


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection whose reset on release to the pool makes no SQL span: it is the
    pool's plumbing, one per checkout, and traced it was a span in every request."""

    async def reset(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg signature)
        with suppress_instrumentation():
            await super().reset(timeout=timeout)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await register_vector(conn)


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, **kw: Any
) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=60,
        # Identifiers for the many per-index statements differ only by table; keep the cache
        # bounded instead of unbounded prepared-statement growth.
        statement_cache_size=256,
        connection_class=PooledConnection,
        **kw,
    )
    return pool
