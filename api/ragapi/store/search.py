"""Vector (HNSW) and full-text candidate queries for hybrid retrieval.

Filtered vector search must still return ``k`` rows when ``k`` rows match. pgvector
>= 0.8 has ``hnsw.iterative_scan`` for that; pgserver ships 0.6.2, which stops after
``ef_search`` candidates and filters afterwards. On such servers the strategy is:
a bounded count of matching rows (GIN on tags/metadata) decides — a selective filter
goes straight to an exact scan of the few matches; otherwise HNSW runs with ``ef_search``
raised step by step, and an exact scan is the last resort. Either way k rows come back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np

from ragapi.contract import Distance
from ragapi.store.indexes import OPERATOR, IndexRecord, quote_ident
from ragapi.store.sql_tracing import plumbing

# Below this many matching rows an exact scan of them beats escalating HNSW (they come
# from the GIN index; measured about 3 ms for 1k matches at 100k rows).
EXACT_SCAN_MAX_ROWS = 2000
EF_SEARCH_CEILING = 1000


@dataclass(frozen=True)
class SearchFilters:
    tags: list[str] = field(default_factory=list)  # every tag must be present
    metadata: dict[str, Any] = field(default_factory=dict)  # containment (@>)

    @property
    def empty(self) -> bool:
        return not self.tags and not self.metadata


@dataclass(frozen=True)
class Candidate:
    chunk_id: int
    document_id: Any
    source: str
    heading: str
    text: str
    token_count: int
    score: float  # similarity for vector hits (higher is better), rank for text hits


@dataclass(frozen=True)
class VectorResult:
    candidates: list[Candidate]
    strategy: str  # "hnsw", "hnsw-iterative", "hnsw-escalated", "exact"
    ef_search: int


def _where(filters: SearchFilters, first_param: int) -> tuple[str, list[Any]]:
    clauses = ["active", f"tenant = ${first_param}"]
    args: list[Any] = []
    n = first_param + 1
    if filters.tags:
        clauses.append(f"tags @> ${n}::text[]")
        args.append(list(filters.tags))
        n += 1
    if filters.metadata:
        clauses.append(f"metadata @> ${n}::jsonb")
        args.append(json.dumps(filters.metadata))
    return " AND ".join(clauses), args


def _similarity(distance: Distance, raw: float) -> float:
    if distance is Distance.COSINE:
        return 1.0 - raw
    if distance is Distance.INNER_PRODUCT:
        return -raw  # pgvector's <#> is the negative inner product
    return -raw


async def has_iterative_scan(conn: asyncpg.Connection) -> bool:
    version: str | None = await conn.fetchval(
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
    )
    if not version:
        return False
    major, minor = (int(p) for p in version.split(".")[:2])
    return (major, minor) >= (0, 8)


def _candidates(rows: Sequence[asyncpg.Record], score: Callable[[float], float]) -> list[Candidate]:
    return [
        Candidate(
            chunk_id=r["id"],
            document_id=r["document_id"],
            source=r["source"],
            heading=r["heading"],
            text=r["text"],
            token_count=r["token_count"],
            score=score(float(r["score"])),
        )
        for r in rows
    ]


def _rows(rows: Sequence[asyncpg.Record], distance: Distance) -> list[Candidate]:
    return _candidates(rows, lambda raw: _similarity(distance, raw))


def _nearest(record: IndexRecord, where: str) -> str:
    """The HNSW-ordered query: $1 the query vector, $2 the limit."""
    op = OPERATOR[record.spec.distance]
    return (
        f"SELECT id, document_id, source, heading, text, token_count, embedding {op} $1 AS score "
        f"FROM {quote_ident(record.table)} WHERE {where} ORDER BY embedding {op} $1 LIMIT $2"
    )


async def _set_ef_search(conn: asyncpg.Connection, ef_search: int) -> None:
    with plumbing(conn):  # the value is on the retrieve span
        await conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")


async def vector_search(
    conn: asyncpg.Connection,
    record: IndexRecord,
    tenant: str,
    embedding: Sequence[float],
    *,
    k: int,
    ef_search: int,
    filters: SearchFilters,
    iterative: bool,
) -> VectorResult:
    """Top-k nearest chunks. Runs in the caller's transaction (SET LOCAL needs one)."""
    distance = record.spec.distance
    op = OPERATOR[distance]
    table = quote_ident(record.table)
    where, fargs = _where(filters, 3)
    query = np.asarray(embedding, dtype=np.float32)
    select = _nearest(record, where)
    ef = max(ef_search, k)

    async def hnsw(ef_value: int) -> list[asyncpg.Record]:
        await _set_ef_search(conn, ef_value)
        rows: list[asyncpg.Record] = await conn.fetch(select, query, k, tenant, *fargs)
        return rows

    async def exact() -> list[asyncpg.Record]:
        # Through the owner's function: under row-level security the GIN indexes on tags
        # and metadata cannot serve the filter (see migration 0004).
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM ragline_exact_candidates($1::regclass, $2, $3, $4, $5, $6::jsonb)",
            table,
            query,
            op,
            k,
            *_filter_args(filters),
        )
        return rows

    if filters.empty:
        return VectorResult(_rows(await hnsw(ef), distance), "hnsw", ef)
    if iterative:
        await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows = await hnsw(ef)
        if len(rows) >= k:
            # relaxed order may return rows slightly out of order: sort by exact distance
            ranked = sorted(_rows(rows, distance), key=lambda c: -c.score)
            return VectorResult(ranked, "hnsw-iterative", ef)
        return VectorResult(_rows(await exact(), distance), "exact", ef)
    matching = await conn.fetchval(
        "SELECT ragline_count_matching($1::regclass, $2, $3::jsonb, $4)",
        table,
        *_filter_args(filters),
        EXACT_SCAN_MAX_ROWS + 1,
    )
    if matching <= EXACT_SCAN_MAX_ROWS:
        return VectorResult(_rows(await exact(), distance), "exact", ef)
    while True:
        rows = await hnsw(ef)
        if len(rows) >= k:
            return VectorResult(
                _rows(rows, distance), "hnsw" if ef == max(ef_search, k) else "hnsw-escalated", ef
            )
        if ef >= EF_SEARCH_CEILING:
            return VectorResult(_rows(await exact(), distance), "exact", ef)
        ef = min(ef * 4, EF_SEARCH_CEILING)


async def text_search(
    conn: asyncpg.Connection,
    record: IndexRecord,
    tenant: str,
    text: str,
    *,
    k: int,
    filters: SearchFilters,
) -> list[Candidate]:
    """Full-text candidates (question words OR-ed, ranked by ts_rank_cd), through the
    owner's function so the GIN index serves them under row-level security. The tenant is
    the transaction's (``set_tenant``); ``tenant`` is accepted for symmetry only."""
    del tenant
    rows = await conn.fetch(
        "SELECT * FROM ragline_text_candidates($1::regclass, $2, $3, $4, $5::jsonb)",
        quote_ident(record.table),
        text,
        k,
        *_filter_args(filters),
    )
    return _candidates(rows, float)


def _filter_args(filters: SearchFilters) -> tuple[list[str] | None, str | None]:
    return (
        list(filters.tags) if filters.tags else None,
        json.dumps(filters.metadata) if filters.metadata else None,
    )


async def hybrid_search(
    conn: asyncpg.Connection,
    record: IndexRecord,
    tenant: str,
    embedding: Sequence[float],
    text: str,
    *,
    k: int,
    ef_search: int,
) -> tuple[VectorResult, list[Candidate]]:
    """Unfiltered hybrid candidates in one statement: the HNSW list and the full-text list
    (``text_search``'s function) as one UNION ALL, told apart by its first column. The
    unfiltered search is the common one and needs no strategy; one round trip (and, when
    traced, one SQL span) instead of two. Runs in the caller's transaction, like
    ``vector_search``; filtered searches take that path."""
    ef = max(ef_search, k)
    await _set_ef_search(conn, ef)
    # Each list keeps its own order (nearest first; the text function's tiers as it
    # returns them): a subquery's ORDER BY alone does not bind the outer query.
    rows = await conn.fetch(
        "SELECT 0 AS list, row_number() OVER (ORDER BY v.score) AS pos, v.* "
        f"FROM ({_nearest(record, 'active AND tenant = $3')}) v "
        "UNION ALL SELECT 1, t.pos, t.id, t.document_id, t.source, t.heading, t.text, "
        "t.token_count, t.score "
        "FROM ragline_text_candidates($4::regclass, $5, $2::integer, NULL, NULL) "
        "WITH ORDINALITY AS t(id, document_id, source, heading, text, token_count, score, pos) "
        "ORDER BY list, pos",
        np.asarray(embedding, dtype=np.float32),
        k,
        tenant,
        quote_ident(record.table),
        text,
    )
    nearest = _rows([r for r in rows if r["list"] == 0], record.spec.distance)
    return VectorResult(nearest, "hnsw", ef), _candidates(
        [r for r in rows if r["list"] == 1], float
    )
