"""Answer cache: /query latency for cache hits vs misses, interleaved in one run (goal: a
hit answers in ≤ 5 ms at the server).

Measured at the client over loopback, so the figures are an upper bound of the server's
time. A miss embeds the question, searches and answers (extractive); a hit is auth, rate
limit, the index's content version (one Postgres read) and one Redis GET.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ragapi.embedded import EmbeddedStack
from tests.conftest import start_api, stop_api

ROUTING = "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: cached}\n"


def run(quick: bool = False) -> dict[str, Any]:
    n = 100 if quick else 500
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-cache-"))
    stack = EmbeddedStack(work / "stack")
    stack.start()
    try:
        routing = work / "routing.yaml"
        routing.write_text(ROUTING)
        api = start_api(routing, {"RAGLINE_RATE_LIMIT": "1000000/minute"}, stack, work / "api.log")
        try:
            key = api.create_key("admin")
            with httpx.Client(
                base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as c:
                for i in range(20):
                    c.post(
                        "/v1/indexes/cached/documents",
                        json={
                            "source": f"d{i}.md",
                            "content": f"# Doc {i}\n\nService {i} keeps logs for {i} days.",
                        },
                    )
                hit_t: list[float] = []
                miss_t: list[float] = []
                c.post(
                    "/v1/indexes/cached/query", json={"question": "How long are logs kept?"}
                )  # warm
                for i in range(n):
                    started = time.perf_counter()
                    r = c.post(
                        "/v1/indexes/cached/query",
                        json={"question": f"How long does service {i} keep logs?"},
                    )
                    miss_t.append(time.perf_counter() - started)
                    assert r.headers["x-ragline-cache"] == "miss"
                    started = time.perf_counter()
                    r = c.post(
                        "/v1/indexes/cached/query",
                        json={"question": f"how long does service {i} keep logs"},
                    )
                    hit_t.append(time.perf_counter() - started)
                    assert r.headers["x-ragline-cache"] == "hit"
        finally:
            stop_api(api)
    finally:
        stack.stop()

    def pct(v: list[float]) -> dict[str, float]:
        return {
            "p50_ms": statistics.median(v) * 1000,
            "p99_ms": statistics.quantiles(v, n=100)[98] * 1000,
        }

    hit, miss = pct(hit_t), pct(miss_t)
    return {"hit": hit, "miss": miss, "miss_over_hit_p50": miss["p50_ms"] / hit["p50_ms"], "n": n}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
