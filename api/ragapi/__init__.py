"""Ragline's data plane: ingestion, retrieval and answers over Postgres+pgvector and Redis."""

__version__ = "0.1.0"
