"""The operator's Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

RECONCILE_DURATION = Histogram(
    "ragline_reconcile_duration_seconds",
    "Reconcile latency per kind",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_TOTAL = Counter("ragline_reconcile_total", "Reconciles", ["kind", "outcome"])
RECONCILE_LAST_SUCCESS = Gauge(
    "ragline_reconcile_last_success_timestamp_seconds", "Last successful reconcile", ["kind"]
)
INDEX_BUILD_SECONDS = Histogram(
    "ragline_index_build_seconds",
    "HNSW build time reported by finished index-build Jobs",
    ["index"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
RECONCILE_IN_FLIGHT = Gauge(
    "ragline_reconcile_in_flight", "Reconciles running now (the operator's queue depth)", ["kind"]
)
BUDGET_SPENT_USD = Gauge("ragline_budget_spent_usd", "Budget spend this period", ["budget"])
BUDGET_LIMIT_USD = Gauge("ragline_budget_limit_usd", "Budget USD limit of the period", ["budget"])
BUDGET_USED_RATIO = Gauge(
    "ragline_budget_used_ratio",
    "Share of the tightest budget limit used (1 = exhausted)",
    ["budget"],
)
INDEX_BUILD_FAILED = Gauge(
    "ragline_index_build_failed", "1 while the index's latest HNSW build has failed", ["index"]
)


@contextmanager
def reconciling(kind: str) -> Iterator[None]:
    started = time.perf_counter()
    RECONCILE_IN_FLIGHT.labels(kind).inc()
    try:
        yield
    except BaseException as exc:
        import kopf

        outcome = "retry" if isinstance(exc, kopf.TemporaryError) else "error"
        RECONCILE_TOTAL.labels(kind, outcome).inc()
        raise
    finally:
        RECONCILE_IN_FLIGHT.labels(kind).dec()
        RECONCILE_DURATION.labels(kind).observe(time.perf_counter() - started)
    RECONCILE_TOTAL.labels(kind, "success").inc()
    RECONCILE_LAST_SUCCESS.labels(kind).set(time.time())
