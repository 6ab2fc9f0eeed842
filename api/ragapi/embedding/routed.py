"""An embedding pool as one Embedder: providers in priority order, each with retries and
a circuit breaker, falling through to the next.

Unlike chat, there is no model-free last resort, and vectors from different models are
not comparable: every provider of an embedding pool must serve the same model at the
same dimension (replicas, regions, a self-hosted copy). When all fail, the call fails
with 503 and nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from ragapi.breaker import CircuitBreaker
from ragapi.contract import CircuitBreakerSpec
from ragapi.embedding.openai_embedder import OpenAIEmbedder
from ragapi.errors import DependencyUnavailable
from ragapi.metrics import PROVIDER_LATENCY, PROVIDER_REQUESTS
from ragapi.providers.base import ProviderFailure
from ragapi.providers.openai_chat import classify
from ragapi.retry import retrying

log = structlog.get_logger(__name__)


class RoutedEmbedder:
    def __init__(
        self,
        pool: str,
        providers: list[tuple[OpenAIEmbedder, int]],  # (embedder, max_retries), in order
        breaker: CircuitBreakerSpec,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("an embedding pool needs at least one provider")
        self.pool = pool
        self.model = providers[0][0].model
        self.dimensions = providers[0][0].dimensions
        self._providers = providers
        self._breakers = {
            e.name: CircuitBreaker(
                e.name, breaker.failure_threshold, breaker.cooldown_seconds, clock
            )
            for e, _ in providers
        }

    async def _route(
        self, call: Callable[[OpenAIEmbedder], Awaitable[list[list[float]]]]
    ) -> list[list[float]]:
        reasons: list[str] = []
        for embedder, max_retries in self._providers:
            breaker = self._breakers[embedder.name]
            if not breaker.allow():
                PROVIDER_REQUESTS.labels(embedder.name, "circuit_open").inc()
                reasons.append(f"{embedder.name}: circuit_open")
                continue
            started = time.perf_counter()
            try:
                async for attempt in retrying(max_retries + 1):
                    with attempt:
                        try:
                            vectors = await call(embedder)
                        except Exception as exc:
                            attempt_failure = classify(embedder.name, exc)
                            PROVIDER_REQUESTS.labels(embedder.name, attempt_failure.kind).inc()
                            if attempt_failure is exc:
                                raise
                            raise attempt_failure from exc
            except ProviderFailure as failed:
                breaker.failure()
                reasons.append(f"{embedder.name}: {failed.kind}")
                log.warning("embedding_provider_failed", provider=embedder.name, reason=failed.kind)
                continue
            breaker.success()
            PROVIDER_LATENCY.labels(embedder.name).observe(time.perf_counter() - started)
            PROVIDER_REQUESTS.labels(embedder.name, "success").inc()
            return vectors
        raise DependencyUnavailable(
            f"embedding pool {self.pool!r}: every provider failed ({'; '.join(reasons)})"
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return await self._route(lambda e: e.embed(texts))

    async def embed_query(self, text: str) -> list[float]:
        return (await self._route(lambda e: e.embed([text])))[0]

    async def aclose(self) -> None:
        for e, _ in self._providers:
            await e.aclose()
