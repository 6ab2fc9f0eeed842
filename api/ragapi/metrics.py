"""Prometheus metrics, names from DESIGN.md's observability contract.

Labels are bounded: route templates (never raw paths), index names (bounded by the
RagIndex resources), provider names (bounded by the pools), fixed outcome words.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

from ragapi import __version__

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

BUILD_INFO = Info("ragline_build", "Ragline build information")
BUILD_INFO.info({"version": __version__})

HTTP_REQUESTS = Counter(
    "ragline_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "ragline_http_request_duration_seconds",
    "HTTP request latency (to the last body byte)",
    ["method", "route"],
    buckets=_LATENCY,
)
RETRIEVAL_DURATION = Histogram(
    "ragline_retrieval_duration_seconds",
    "Retrieval latency (SQL, vector + full text)",
    ["index", "strategy"],
    buckets=_LATENCY,
)
RETRIEVAL_RESULTS = Histogram(
    "ragline_retrieval_results",
    "Results returned per search",
    ["index"],
    buckets=(0, 1, 2, 5, 10, 20, 50, 100),
)
RETRIEVAL_EF_SEARCH = Histogram(
    "ragline_retrieval_ef_search",
    "hnsw.ef_search used per search",
    ["index"],
    buckets=(10, 20, 40, 64, 100, 200, 400, 1000),
)
EMBEDDING_DURATION = Histogram(
    "ragline_embedding_duration_seconds",
    "Embedding latency per call",
    ["model", "kind"],
    buckets=_LATENCY,
)
EMBEDDED_TEXTS = Counter("ragline_embedded_texts_total", "Texts embedded", ["model", "kind"])
PROVIDER_REQUESTS = Counter(
    "ragline_provider_requests_total", "Provider calls", ["provider", "outcome"]
)
PROVIDER_LATENCY = Histogram(
    "ragline_provider_latency_seconds", "Provider call latency", ["provider"], buckets=_LATENCY
)
PROVIDER_TOKENS = Counter(
    "ragline_provider_tokens_total", "Tokens reported by providers", ["provider", "direction"]
)
CIRCUIT_STATE = Gauge(
    "ragline_circuit_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)", ["provider"]
)
CACHE_REQUESTS = Counter("ragline_cache_requests_total", "Answer cache lookups", ["result"])
RATELIMIT_REJECTIONS = Counter(
    "ragline_ratelimit_rejections_total", "Requests refused by rate limits", ["scope"]
)
INGEST_CHUNKS = Counter(
    "ragline_ingest_chunks_total", "Chunks seen by ingestion", ["index", "result"]
)
INGEST_DOCUMENTS = Counter(
    "ragline_ingest_documents_total", "Documents ingested", ["index", "result"]
)
DEPENDENCY_UP = Gauge(
    "ragline_dependency_up", "Dependency reachable (1) or not (0)", ["dependency"]
)
INGEST_JOBS = Counter("ragline_ingest_jobs_total", "Ingestion job outcomes", ["result"])
INGEST_JOBS_BACKLOG = Gauge("ragline_ingest_backlog_jobs", "Ingestion jobs by state", ["state"])
