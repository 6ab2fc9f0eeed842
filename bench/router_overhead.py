"""Router overhead: a call through the router minus a direct call to the same provider test
server with the same SDK client, interleaved in one run (goal: p50 ≤ 1 ms).

Three paths side by side: direct (the provider object alone), the router without a budget
(breaker, retries wrapper, metrics, span), and the router with a ProviderBudget (plus the
Redis reserve/settle scripts and the RPM/TPM check against a real redis-server).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from ragapi.budgets import BudgetLedger
from ragapi.contract import InferencePoolSpec, ProviderBudgetSpec
from ragapi.embedded import EmbeddedRedis
from ragapi.providers.base import ChatRequest
from ragapi.ratelimit import ProviderRateLimiter, storage_for
from ragapi.retrieval import Hit
from ragapi.router import ChatRouter
from tests.support.provider_server import ProviderServer


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def _measure(n: int, url: str, redis_url: str) -> dict[str, dict[str, float]]:
    pool = InferencePoolSpec.model_validate(
        {
            "purpose": "chat",
            "providers": [
                {"name": "llm", "type": "openai", "baseURL": url, "model": "m", "maxRetries": 0}
            ],
        }
    )
    budget = ProviderBudgetSpec.model_validate(
        {
            "poolRef": {"name": "p-budget"},
            "provider": "llm",
            "period": "daily",
            "limit": {"usd": "1000000"},
            "rateLimits": {"requestsPerMinute": 1_000_000},
            "pricing": [{"model": "m", "inputPer1M": "0.15", "outputPer1M": "0.60"}],
        }
    )
    redis = aioredis.Redis.from_url(redis_url)
    plain = ChatRouter()
    budgeted = ChatRouter(
        ledger=BudgetLedger(redis, "bench"),
        rates=ProviderRateLimiter(storage_for(redis_url)),
        budgets=lambda: {"b": budget},
    )
    direct = plain.factory.get(pool.providers[0])
    hit = Hit(1, "d", "s.md", "", "Disks fill up. Delete old segments.", 8, 1.0)
    request = ChatRequest(
        question="disk?",
        hits=[hit],
        messages=[
            {"role": "user", "content": "[1] (source: s.md)\nDisks fill up.\n\nQuestion: disk?"}
        ],
    )
    paths = {
        "direct": lambda: direct.complete(request),
        "router": lambda: plain.complete("p", pool, request),
        "router+budget": lambda: budgeted.complete("p-budget", pool, request),
    }
    times: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(20):  # warm connections and code paths
        for call in paths.values():
            await call()
    for _ in range(n):
        for name, call in paths.items():  # interleaved: machine noise hits all paths alike
            started = time.perf_counter()
            await call()
            times[name].append(time.perf_counter() - started)
    await redis.aclose()
    out = {
        k: {"p50_ms": statistics.median(v) * 1000, "p99_ms": _pct(v, 99) * 1000}
        for k, v in times.items()
    }
    for k in ("router", "router+budget"):
        out[k]["overhead_p50_ms"] = out[k]["p50_ms"] - out["direct"]["p50_ms"]
    return out


def run(quick: bool = False) -> dict[str, Any]:
    server = ProviderServer().start()
    redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="ragline-bench-redis-")))
    redis.start()
    try:
        return asyncio.run(_measure(200 if quick else 1000, server.url, redis.url))
    finally:
        redis.stop()
        server.stop()


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
