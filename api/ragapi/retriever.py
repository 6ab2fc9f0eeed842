"""Hybrid retrieval: embed the query, HNSW + full-text candidates, fuse with RRF."""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

from ragapi.embedding.base import Embedder
from ragapi.metrics import (
    EMBEDDING_DURATION,
    RETRIEVAL_DURATION,
    RETRIEVAL_EF_SEARCH,
    RETRIEVAL_RESULTS,
)
from ragapi.retrieval import Hit, rrf_fuse, vector_only
from ragapi.store.indexes import IndexRecord
from ragapi.store.search import (
    SearchFilters,
    has_iterative_scan,
    hybrid_search,
    text_search,
    vector_search,
)
from ragapi.store.tenancy import tenant_tx
from ragapi.tracing import child_span, exemplar

# Each list contributes this many candidates per requested result to the fusion.
CANDIDATES_PER_RESULT = 4
MAX_CANDIDATES = 200


@dataclass(frozen=True)
class SearchOutcome:
    hits: list[Hit]
    strategy: str
    ef_search: int


class Retriever:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._iterative: bool | None = None

    async def _supports_iterative(self, conn: asyncpg.Connection) -> bool:
        if self._iterative is None:
            self._iterative = await has_iterative_scan(conn)
        return self._iterative

    async def embed_query(self, embedder: Embedder, query: str) -> list[float]:
        with child_span("embed", {"ragline.embedding.model": embedder.model}):
            started = time.perf_counter()
            vector = await embedder.embed_query(query)
            EMBEDDING_DURATION.labels(embedder.model, "query").observe(
                time.perf_counter() - started
            )
            return vector

    async def search(
        self,
        record: IndexRecord,
        tenant: str,
        query: str,
        embedder: Embedder,
        *,
        top_k: int | None = None,
        ef_search: int | None = None,
        filters: SearchFilters | None = None,
    ) -> SearchOutcome:
        spec = record.spec
        k = top_k or spec.search.top_k
        ef = ef_search or spec.hnsw.ef_search
        filters = filters or SearchFilters()
        vector = await self.embed_query(embedder, query)
        n = min(max(k * CANDIDATES_PER_RESULT, k), MAX_CANDIDATES)
        with child_span("retrieve", {"ragline.index": record.name, "ragline.top_k": k}) as span:
            started = time.perf_counter()
            async with tenant_tx(self._pool, tenant, readonly=True) as conn:
                if spec.search.hybrid and filters.empty:
                    vres, texts = await hybrid_search(
                        conn, record, tenant, vector, query, k=n, ef_search=max(ef, n)
                    )
                else:
                    vres = await vector_search(
                        conn,
                        record,
                        tenant,
                        vector,
                        k=n if spec.search.hybrid else k,
                        ef_search=max(ef, n),
                        filters=filters,
                        iterative=await self._supports_iterative(conn),
                    )
                    texts = (
                        await text_search(conn, record, tenant, query, k=n, filters=filters)
                        if spec.search.hybrid
                        else []
                    )
            elapsed = time.perf_counter() - started
            span.set_attributes(
                {"ragline.strategy": vres.strategy, "ragline.ef_search": vres.ef_search}
            )
            RETRIEVAL_EF_SEARCH.labels(record.name).observe(vres.ef_search)
            RETRIEVAL_DURATION.labels(record.name, vres.strategy).observe(
                elapsed, exemplar=exemplar()
            )
        with child_span("fuse"):
            if spec.search.hybrid:
                hits = rrf_fuse(vres.candidates, texts, rrf_k=spec.search.rrf_k, top_k=k)
            else:
                hits = vector_only(vres.candidates, top_k=k)
        RETRIEVAL_RESULTS.labels(record.name).observe(len(hits))
        return SearchOutcome(hits, vres.strategy, vres.ef_search)
