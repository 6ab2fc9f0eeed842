"""ProviderBudget enforcement and rate limits against real Redis, through real API processes.

The multi-process proof: 4 API processes × 50 concurrent requests against one budget that
allows N requests: exactly N are admitted, the rest refused with `budget_exceeded`, the
money spent stays within the limit, and a process killed mid-run leaves no reservation
behind once they expire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from ragapi.budget_keys import counters_key
from ragapi.contract import Period
from ragapi.embedded import EmbeddedStack
from tests.conftest import ApiProcess, start_api, stop_api
from tests.support.provider_server import Fault, ProviderServer

pytestmark = pytest.mark.integration
# Every call here must reach the provider: the same question repeats on purpose.
NO_CACHE = {"RAGLINE_ANSWER_CACHE_TTL_SECONDS": "0"}

ROUTING = """\
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: {index}}}
spec:
  answer: {{poolRef: {{name: {index}-chat}}}}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: {index}-chat}}
spec:
  purpose: chat
  providers:
    - {{name: llm, type: openai, baseURL: "{url}", model: m, priority: 1, timeoutSeconds: 3,
       maxRetries: 0}}
    - {{name: extractive, type: extractive, priority: 9}}
  circuitBreaker: {{failureThreshold: 1000, cooldownSeconds: 1}}
---
apiVersion: ragline.dev/v1alpha1
kind: ProviderBudget
metadata: {{name: {index}-budget}}
spec:
  poolRef: {{name: {index}-chat}}
  provider: llm
  period: daily
  limit: {limit}
  rateLimits: {rates}
  pricing: [{{model: m, inputPer1M: "1000", outputPer1M: "2000"}}]
  onExhausted: {on_exhausted}
"""


def routing_for(
    tmp: Path, url: str, index: str, *, limit: str, on_exhausted: str, rates: str = "{}"
) -> Path:
    path = tmp / f"{index}.yaml"
    path.write_text(
        ROUTING.format(index=index, url=url, limit=limit, on_exhausted=on_exhausted, rates=rates)
    )
    return path


def counters(stack: EmbeddedStack, budget: str) -> dict[str, int]:
    r = redis.Redis.from_url(stack.redis.url, decode_responses=True)
    key = counters_key("default", budget, Period.DAILY, datetime.now(UTC))
    return {k: int(v) for k, v in r.hgetall(key).items()}


@pytest.fixture()
def fresh_provider(provider: ProviderServer) -> Iterator[ProviderServer]:
    provider.state.reset()
    yield provider
    provider.state.reset()


def _ask(api: ApiProcess, key: str, index: str) -> httpx.Response:
    return httpx.post(
        f"{api.url}/v1/indexes/{index}/query",
        headers={"Authorization": f"Bearer {key}"},
        json={"question": "What is in the budget document?"},
        timeout=30,
    )


def _seed(api: ApiProcess, key: str, index: str) -> None:
    resp = httpx.post(
        f"{api.url}/v1/indexes/{index}/documents",
        headers={"Authorization": f"Bearer {key}"},
        json={"source": "b.txt", "content": "The budget document says spend wisely."},
        timeout=30,
    )
    assert resp.status_code in (200, 201), resp.text


def test_fallback_reject_degrade_and_rate_limits(
    stack: EmbeddedStack, fresh_provider: ProviderServer, tmp_path: Path
) -> None:
    files = [
        routing_for(
            tmp_path, fresh_provider.url, "fb", limit="{requests: 2}", on_exhausted="fallback"
        ),
        routing_for(
            tmp_path, fresh_provider.url, "rj", limit="{requests: 1}", on_exhausted="reject"
        ),
        routing_for(
            tmp_path, fresh_provider.url, "dg", limit="{requests: 1}", on_exhausted="degrade"
        ),
        routing_for(
            tmp_path,
            fresh_provider.url,
            "rl",
            limit="{requests: 1000}",
            on_exhausted="reject",
            rates="{requestsPerMinute: 2}",
        ),
    ]
    routing = tmp_path / "routing.yaml"
    routing.write_text("\n---\n".join(f.read_text() for f in files))
    api = start_api(routing, NO_CACHE, stack, tmp_path / "api.log")
    try:
        key = api.create_key("admin")
        for index in ("fb", "rj", "dg", "rl"):
            _seed(api, key, index)
        # fallback: two answers from the model, then the next provider
        providers = [_ask(api, key, "fb").json()["provider"] for _ in range(3)]
        assert providers == ["llm", "llm", "extractive"]
        third = _ask(api, key, "fb").json()
        assert third["skipped"] == [{"provider": "llm", "reason": "budget_exhausted"}]
        assert third["degraded"] is False
        c = counters(stack, "fb-budget")
        assert c["spent_requests"] == 2 and c["reserved_requests"] == 0
        # Cost from the provider's reported usage at the configured prices (micro-dollars).
        usage = [call["body"] for call in fresh_provider.state.calls if call["endpoint"] == "chat"]
        assert len(usage) == 2 and c["spent_usd_micros"] > 0
        # reject: 429 with the error code and Retry-After until the period ends
        assert _ask(api, key, "rj").status_code == 200
        refused = _ask(api, key, "rj")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "budget_exceeded"
        assert 0 < int(refused.headers["retry-after"]) <= 86400
        # degrade: an extractive answer, flagged
        assert _ask(api, key, "dg").json()["provider"] == "llm"
        degraded = _ask(api, key, "dg").json()
        assert degraded["provider"] == "extractive" and degraded["degraded"] is True
        # provider RPM: the third call in a minute goes to the next provider
        got = [_ask(api, key, "rl").json() for _ in range(3)]
        assert [g["provider"] for g in got] == ["llm", "llm", "extractive"]
        assert got[2]["skipped"] == [{"provider": "llm", "reason": "rate_limited"}]
    finally:
        stop_api(api)


def test_failed_call_releases_its_reservation(
    stack: EmbeddedStack, fresh_provider: ProviderServer, tmp_path: Path
) -> None:
    routing = routing_for(
        tmp_path, fresh_provider.url, "rel", limit="{requests: 5}", on_exhausted="reject"
    )
    api = start_api(routing, NO_CACHE, stack, tmp_path / "api.log")
    try:
        key = api.create_key("admin")
        _seed(api, key, "rel")
        fresh_provider.state.inject("chat", Fault("500"))
        body = _ask(api, key, "rel").json()
        assert body["provider"] == "extractive"
        c = counters(stack, "rel-budget")
        assert (
            c["spent_requests"] == 0 and c["reserved_requests"] == 0 and c["spent_usd_micros"] == 0
        )
    finally:
        stop_api(api)


def test_budget_holds_across_four_processes_and_a_killed_one(
    stack: EmbeddedStack, fresh_provider: ProviderServer, tmp_path: Path
) -> None:
    allowed = 37
    routing = routing_for(
        tmp_path,
        fresh_provider.url,
        "multi",
        limit=f'{{requests: {allowed}, usd: "1000"}}',
        on_exhausted="reject",
    )
    env = {
        "RAGLINE_BUDGET_RESERVATION_GRACE_SECONDS": "1",
        "RAGLINE_RATE_LIMIT": "100000/minute",
        **NO_CACHE,
    }
    apis = [start_api(routing, env, stack, tmp_path / f"api{n}.log") for n in range(4)]
    try:
        key = apis[0].create_key("admin")
        _seed(apis[0], key, "multi")
        fresh_provider.state.base_latency = 0.05

        async def burst() -> list[int]:
            async with httpx.AsyncClient(
                timeout=60, headers={"Authorization": f"Bearer {key}"}
            ) as client:

                async def one(api: ApiProcess) -> int:
                    r = await client.post(
                        f"{api.url}/v1/indexes/multi/query",
                        json={"question": "What is in the budget document?"},
                    )
                    assert r.status_code in (200, 429), r.text
                    if r.status_code == 429:
                        assert r.json()["error"]["code"] == "budget_exceeded"
                    return r.status_code

                return list(await asyncio.gather(*(one(api) for api in apis for _ in range(50))))

        statuses = asyncio.run(burst())
        assert statuses.count(200) == allowed
        assert statuses.count(429) == 200 - allowed
        c = counters(stack, "multi-budget")
        assert c["spent_requests"] == allowed and c["reserved_requests"] == 0
        assert c["reserved_usd_micros"] == 0
        assert c["spent_usd_micros"] <= 1000 * 1_000_000

        # A process dies with calls in flight: its reservations expire and the counters heal.
        r = redis.Redis.from_url(stack.redis.url)
        r.delete(counters_key("default", "multi-budget", Period.DAILY, datetime.now(UTC)))
        fresh_provider.state.base_latency = 2.0
        victim = apis[3]

        async def in_flight() -> None:
            async with httpx.AsyncClient(
                timeout=10, headers={"Authorization": f"Bearer {key}"}
            ) as client:
                tasks = [
                    asyncio.create_task(
                        client.post(
                            f"{victim.url}/v1/indexes/multi/query", json={"question": "budget?"}
                        )
                    )
                    for _ in range(5)
                ]
                await asyncio.sleep(1.0)
                victim.proc.kill()
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(in_flight())
        held = counters(stack, "multi-budget")
        assert held["reserved_requests"] == 5  # still held: nobody settled them
        time.sleep(3 + 1 + 0.5)  # timeoutSeconds 3 + grace 1
        fresh_provider.state.base_latency = 0.0
        # The next reserve sweeps the expired reservations before admitting anything.
        assert _ask(apis[0], key, "multi").status_code == 200
        healed = counters(stack, "multi-budget")
        assert healed["reserved_requests"] == 0 and healed["reserved_usd_micros"] == 0
        assert healed["spent_requests"] == 1
    finally:
        for api in apis:
            stop_api(api)


def test_redis_down_budgets_fail_closed_and_recover(
    fresh_provider: ProviderServer, tmp_path: Path, stack: EmbeddedStack
) -> None:
    from ragapi.embedded import EmbeddedRedis

    own = EmbeddedRedis(tmp_path / "redis")
    own.start()
    routing = routing_for(
        tmp_path, fresh_provider.url, "down", limit="{requests: 100}", on_exhausted="reject"
    )
    api = start_api(
        routing, {"RAGLINE_REDIS_URL": own.url, **NO_CACHE}, stack, tmp_path / "api.log"
    )
    try:
        key = api.create_key("admin")
        _seed(api, key, "down")
        assert _ask(api, key, "down").json()["provider"] == "llm"
        own.kill()
        body = _ask(api, key, "down")
        assert body.status_code == 200  # rate limits fail open by default
        assert body.json()["provider"] == "extractive" and body.json()["degraded"] is True
        assert body.json()["skipped"] == [{"provider": "llm", "reason": "budget_unavailable"}]
        ready = httpx.get(f"{api.url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("error")
        own.start()  # same port and password: the API reconnects by itself
        deadline = time.monotonic() + 20
        while _ask(api, key, "down").json()["provider"] != "llm":
            assert time.monotonic() < deadline, "did not recover after Redis came back"
            time.sleep(0.5)
        assert httpx.get(f"{api.url}/readyz").status_code == 200
    finally:
        stop_api(api)
        own.stop()


def test_caller_rate_limit_headers_and_status(
    stack: EmbeddedStack, fresh_provider: ProviderServer, tmp_path: Path
) -> None:
    routing = tmp_path / "r.yaml"
    routing.write_text(
        "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: limited}\n"
    )
    api = start_api(routing, {"RAGLINE_RATE_LIMIT": "5/minute"}, stack, tmp_path / "api.log")
    try:
        key = api.create_key("reader")
        h = {"Authorization": f"Bearer {key}"}
        first = httpx.get(f"{api.url}/v1/indexes", headers=h)
        assert (
            first.headers["ratelimit-limit"] == "5" and first.headers["ratelimit-remaining"] == "4"
        )
        status = httpx.get(f"{api.url}/v1/rate-limit/status", headers=h).json()
        assert (
            status["limit"] == 5
            and status["remaining"] == 3
            and status["window"] == "5 per 1 minute"
        )
        for _ in range(3):
            assert httpx.get(f"{api.url}/v1/indexes", headers=h).status_code == 200
        over = httpx.get(f"{api.url}/v1/indexes", headers=h)
        assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limited"
        assert over.headers["ratelimit-remaining"] == "0"
        assert 1 <= int(over.headers["retry-after"]) <= 60
        # another key has its own window
        other = api.create_key("reader")
        assert (
            httpx.get(
                f"{api.url}/v1/indexes", headers={"Authorization": f"Bearer {other}"}
            ).status_code
            == 200
        )
        # failed authentications are limited per address
        codes = [
            httpx.get(f"{api.url}/v1/indexes", headers={"Authorization": "Bearer rl_x"}).status_code
            for _ in range(7)
        ]
        assert codes[:5] == [401] * 5 and codes[-1] == 429
    finally:
        stop_api(api)
