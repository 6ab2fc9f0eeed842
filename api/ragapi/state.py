"""Everything the app's lifespan owns: clients, services and the routing watcher."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as aioredis

from ragapi.answering import Answerer
from ragapi.auth import KeyVerifier
from ragapi.cache import AnswerCache
from ragapi.contract import InferencePoolSpec
from ragapi.embedders import EmbedderRegistry
from ragapi.embedding.base import Embedder
from ragapi.errors import DependencyUnavailable, NotFound
from ragapi.ingest import Ingestor
from ragapi.memory import ConversationMemory
from ragapi.ratelimit import CallerLimiter
from ragapi.retriever import Retriever
from ragapi.routing import RoutingError, RoutingWatcher
from ragapi.settings import Settings
from ragapi.store.indexes import IndexRecord, get_index

INDEX_CACHE_SECONDS = 2.0


@dataclass
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    routing: RoutingWatcher
    embedders: EmbedderRegistry
    ingestor: Ingestor
    retriever: Retriever
    answerer: Answerer
    keys: KeyVerifier
    callers: CallerLimiter
    cache: AnswerCache
    memory: ConversationMemory
    _indexes: dict[str, tuple[float, IndexRecord]] = field(default_factory=dict)

    async def index(self, name: str) -> IndexRecord:
        """The index's record, cached briefly: it is read on every request."""
        now = time.monotonic()
        cached = self._indexes.get(name)
        if cached and cached[0] > now:
            return cached[1]
        record = await get_index(self.pool, name)
        self._indexes[name] = (now + INDEX_CACHE_SECONDS, record)
        return record

    def forget_index(self, name: str) -> None:
        self._indexes.pop(name, None)

    def embedder(self, record: IndexRecord) -> Embedder:
        pool = None
        if record.spec.embedding.pool_ref is not None:
            pool = self.routing.current.pools.get(record.spec.embedding.pool_ref.name)
            if pool is None:
                raise DependencyUnavailable(
                    f"index {record.name!r} names embedding pool "
                    f"{record.spec.embedding.pool_ref.name!r}, which is not loaded"
                )
        return self.embedders.for_index(record.spec, pool)

    def chat_pool(self, record: IndexRecord) -> tuple[str, InferencePoolSpec]:
        try:
            return record.spec.answer.pool_name, self.routing.current.chat_pool(record.spec)
        except RoutingError as exc:
            raise NotFound(str(exc)) from exc
