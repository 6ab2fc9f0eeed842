"""The multi-replica budget proof as figures: 4 API processes × 50 concurrent requests
against one ProviderBudget. Prints requests allowed and refused, the counters, and spend
against the limit. Both a requests limit (exact admission) and a USD limit (spend within
the limit plus the in-flight estimate error) are run."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from ragapi.budget_keys import counters_key
from ragapi.contract import Period
from ragapi.embedded import EmbeddedStack
from tests.conftest import ApiProcess, start_api, stop_api
from tests.support.provider_server import ProviderServer

ROUTING = """\
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: proof}}
spec: {{answer: {{poolRef: {{name: proof-chat}}}}}}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: proof-chat}}
spec:
  purpose: chat
  providers:
    - {{name: llm, type: openai, baseURL: "{url}", model: m, priority: 1, maxRetries: 0}}
  circuitBreaker: {{failureThreshold: 1000, cooldownSeconds: 1}}
---
apiVersion: ragline.dev/v1alpha1
kind: ProviderBudget
metadata: {{name: {budget}}}
spec:
  poolRef: {{name: proof-chat}}
  provider: llm
  period: daily
  limit: {limit}
  pricing: [{{model: m, inputPer1M: "100", outputPer1M: "300"}}]
  onExhausted: reject
"""


async def _burst(apis: list[ApiProcess], key: str, per_process: int) -> list[int]:
    # no-cache: every request must reach the router and its budget; without it the answer
    # cache served most of the burst once the first answers were stored.
    headers = {"Authorization": f"Bearer {key}", "Cache-Control": "no-cache"}
    async with httpx.AsyncClient(timeout=120, headers=headers) as client:

        async def one(api: ApiProcess) -> int:
            r = await client.post(
                f"{api.url}/v1/indexes/proof/query", json={"question": "What is budgeted?"}
            )
            return r.status_code

        return list(await asyncio.gather(*(one(a) for a in apis for _ in range(per_process))))


def _scenario(
    stack: EmbeddedStack, server: ProviderServer, work: Path, name: str, limit: str
) -> dict[str, Any]:
    routing = work / f"{name}.yaml"
    routing.write_text(ROUTING.format(url=server.url, budget=name, limit=limit))
    env = {"RAGLINE_RATE_LIMIT": "1000000/minute", "RAGLINE_NAMESPACE": "bench"}
    apis = [start_api(routing, env, stack, work / f"{name}-{n}.log") for n in range(4)]
    try:
        key = apis[0].create_key("admin")
        httpx.post(
            f"{apis[0].url}/v1/indexes/proof/documents",
            headers={"Authorization": f"Bearer {key}"},
            json={"source": "p.txt", "content": "Everything is budgeted."},
            timeout=60,
        )
        server.state.reset()
        server.state.base_latency = 0.02
        statuses = asyncio.run(_burst(apis, key, 50))
    finally:
        for api in apis:
            stop_api(api)
    fields = redis.Redis.from_url(stack.redis.url, decode_responses=True).hgetall(
        counters_key("bench", name, Period.DAILY, datetime.now(UTC))
    )
    return {
        "limit": limit,
        "requests": len(statuses),
        "allowed": statuses.count(200),
        "refused": statuses.count(429),
        "other": len(statuses) - statuses.count(200) - statuses.count(429),
        "provider_calls": sum(1 for c in server.state.calls if c["endpoint"] == "chat"),
        "spent_requests": int(fields.get("spent_requests", 0)),
        "spent_usd": int(fields.get("spent_usd_micros", 0)) / 1e6,
        "reserved_left": int(fields.get("reserved_requests", 0)),
    }


def run(quick: bool = False) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-budget-"))
    stack = EmbeddedStack(work / "stack")
    stack.start()
    server = ProviderServer().start()
    try:
        return {
            "requests_limit": _scenario(stack, server, work, "by-requests", "{requests: 37}"),
            "usd_limit": _scenario(stack, server, work, "by-usd", '{usd: "0.50"}'),
        }
    finally:
        server.stop()
        stack.stop()


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
