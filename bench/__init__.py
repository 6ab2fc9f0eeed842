"""Ragline's data-plane benchmarks: retrieval SQL, ``/search`` over HTTP, ingestion.

``make bench`` runs ``python -m bench``: every figure it prints is measured in that run,
against the embedded Postgres 16 + pgvector and redis-server of :mod:`ragapi.embedded`,
and every ratio compares numbers taken side by side in the same process. Results are
also written as JSON to ``bench/results/<part>.json``.
"""
