"""Process settings, read once from ``RAGLINE_*`` environment variables.

Outside local mode the process refuses to start on a missing or placeholder value and
names the setting, so a misconfigured pod fails its rollout instead of serving badly.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    LOCAL = "local"
    PRODUCTION = "production"


class EmbedderKind(StrEnum):
    LOCAL = "local"  # MiniLM int8 on CPU, offline
    OPENAI = "openai"  # any OpenAI-compatible /embeddings endpoint


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGLINE_", extra="ignore")

    env: Environment = Environment.LOCAL
    database_url: SecretStr | None = Field(
        default=None, description="Postgres DSN (pgvector required)."
    )
    admin_database_url: SecretStr | None = Field(
        default=None,
        description="Owner DSN for migrations and DDL; the request path uses RAGLINE_DATABASE_URL, "
        "whose role must not bypass row-level security. Defaults to RAGLINE_DATABASE_URL.",
    )
    redis_url: SecretStr | None = Field(default=None, description="Redis URL.")
    routing_file: Path | None = Field(
        default=None, description="YAML stream of RagIndex/InferencePool/ProviderBudget."
    )

    manage_indexes: bool = Field(
        default=True,
        description="Make every RagIndex of the routing file ready (tables, HNSW) at start and "
        "on change; the chart turns it off because the operator does it in a cluster.",
    )
    ingest_workers: int = Field(
        # Two, so one job's database writes overlap the next job's embedding (the model
        # runs one batch at a time per process anyway).
        default=2,
        ge=0,
        le=32,
        description="Ingestion job workers in this process (0: none).",
    )
    ingest_async_bytes: int = Field(
        default=1024 * 1024,
        ge=0,
        description="Uploads larger than this become jobs (202 + GET /v1/jobs/{id}).",
    )
    ingest_max_attempts: int = Field(default=5, ge=1, le=100)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    request_timeout_seconds: float = Field(default=60.0, gt=0)

    # Embeddings used when an index has no embedding pool in the routing file.
    embedder: EmbedderKind = EmbedderKind.LOCAL
    embedder_threads: int | None = Field(default=None, ge=1)
    openai_embedding_base_url: str | None = None
    openai_embedding_model: str = "text-embedding-3-small"
    openai_embedding_dimensions: int | None = None
    openai_api_key: SecretStr | None = None

    namespace: str = Field(
        default="default", description="Namespace of the Ragline resources (budget keys)."
    )
    budget_reservation_grace_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A reservation outlives its call's timeout by this "
        "much; then it expires (its pod died) and the budget gets it back.",
    )
    rate_limit: str = Field(
        default="600/minute", description="Per API key (and per IP for failed auth)."
    )
    rate_limit_fail_open: bool = Field(
        default=True, description="When Redis is down: allow (true) or refuse (false) callers."
    )

    jwt_jwks_url: str | None = Field(default=None, description="JWKS of the identity provider.")
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_tenant_claim: str = "tenant"
    jwt_role_claim: str = "role"
    jwt_indexes_claim: str = "indexes"
    jwt_refresh_floor_seconds: float = Field(default=30.0, gt=0)
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API (CORS)."
    )
    auth_disabled: bool = Field(
        default=False, description="Local experiments only; production refuses to start."
    )

    answer_cache_ttl_seconds: int = Field(
        default=24 * 3600, ge=0, description="How long answers are cached; 0 turns the cache off."
    )
    memory_turns: int = Field(default=20, ge=1, le=500, description="Turns kept per session.")

    log_level: str = "INFO"
    log_json: bool = True

    def admin_dsn(self) -> str:
        url = self.admin_database_url or self.database_url
        assert url is not None
        return url.get_secret_value()

    def problems(self) -> list[str]:
        """Everything that makes this configuration unfit to start, by setting name."""
        found: list[str] = []
        if self.database_url is None:
            found.append("RAGLINE_DATABASE_URL is not set")
        if self.redis_url is None:
            found.append("RAGLINE_REDIS_URL is not set")
        if self.jwt_jwks_url and not (self.jwt_issuer and self.jwt_audience):
            found.append("RAGLINE_JWT_ISSUER and RAGLINE_JWT_AUDIENCE are required with JWT")
        if self.env is Environment.PRODUCTION:
            if self.auth_disabled:
                found.append("RAGLINE_AUTH_DISABLED is set")
            if "*" in self.cors_origins:
                found.append("RAGLINE_CORS_ORIGINS must not be '*'")
            if self.jwt_jwks_url and not self.jwt_jwks_url.startswith("https://"):
                found.append("RAGLINE_JWT_JWKS_URL must use https")
            dsn = self.database_url.get_secret_value() if self.database_url else ""
            if "changeme" in dsn or ":postgres@" in dsn:
                found.append("RAGLINE_DATABASE_URL uses a placeholder password")
            if self.embedder is EmbedderKind.OPENAI and self.openai_api_key is None:
                found.append("RAGLINE_OPENAI_API_KEY is required for RAGLINE_EMBEDDER=openai")
        return found


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
