"""The public contract of Ragline's custom resources (group ``ragline.dev``, ``v1alpha1``).

One source of truth: the API validates the routing file with these models, and the
operator imports them (it may import this module, never the reverse) to reconcile and to
generate the CRDs' OpenAPI schemas. Field names are the camelCase names users write in
YAML; Python attributes are snake_case.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

GROUP = "ragline.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# A DNS-1123 label: also what makes an index name safe inside a table name.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)
DEFAULT_POOL = "default"

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=NAME_PATTERN)]


def is_valid_name(name: str) -> bool:
    return len(name) <= 63 and bool(_NAME_RE.match(name))


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class LocalObjectRef(_Model):
    name: Name


class SecretKeyRef(_Model):
    name: Name
    key: str = Field(min_length=1, max_length=253)


# ---------------------------------------------------------------- RagIndex


class Distance(StrEnum):
    COSINE = "cosine"
    L2 = "l2"
    INNER_PRODUCT = "innerProduct"


class ChunkingStrategyName(StrEnum):
    STRUCTURED = "structured"
    FIXED = "fixed"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class DatabaseRef(_Model):
    secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the Postgres DSN; the API's own when absent."
    )


class EmbeddingSpec(_Model):
    pool_ref: LocalObjectRef | None = Field(
        default=None,
        description="Embedding InferencePool; the built-in local MiniLM model when absent.",
    )
    model: str = Field(default="all-MiniLM-L6-v2-int8", min_length=1, max_length=200)
    dimensions: int = Field(default=384, ge=1, le=16000)


class ChunkingSpec(_Model):
    max_tokens: int = Field(default=200, ge=16, le=8192)
    overlap_tokens: int = Field(default=30, ge=0, le=4096)
    strategy: ChunkingStrategyName = ChunkingStrategyName.STRUCTURED

    @model_validator(mode="after")
    def _overlap_below_half(self) -> ChunkingSpec:
        if self.overlap_tokens * 2 >= self.max_tokens:
            raise ValueError("chunking.overlapTokens must be less than half of maxTokens")
        return self


class HnswSpec(_Model):
    # efConstruction 256 by default: at 100k clustered 384-d vectors, 64 left about 5% of
    # queries stranded in the wrong topic (recall@10 0.945 at efSearch 40); 256 gave 0.997
    # at efSearch 40 within 2 ms, for a 3x longer build (bench/retrieval.py).
    m: int = Field(default=16, ge=2, le=100)
    ef_construction: int = Field(default=256, ge=4, le=1000)
    ef_search: int = Field(default=40, ge=1, le=1000)

    @model_validator(mode="after")
    def _ef_construction_covers_m(self) -> HnswSpec:
        if self.ef_construction < 2 * self.m:
            raise ValueError("hnsw.efConstruction must be at least 2 * m")
        return self


class SearchSpec(_Model):
    hybrid: bool = True
    rrf_k: int = Field(default=60, ge=1, le=1000)
    top_k: int = Field(default=5, ge=1, le=100)


class AnswerSpec(_Model):
    pool_ref: LocalObjectRef | None = None
    max_context_tokens: int = Field(default=3000, ge=100, le=200000)

    @property
    def pool_name(self) -> str:
        return self.pool_ref.name if self.pool_ref else DEFAULT_POOL


class RagIndexSpec(_Model):
    database: DatabaseRef = DatabaseRef()
    embedding: EmbeddingSpec = EmbeddingSpec()
    chunking: ChunkingSpec = ChunkingSpec()
    hnsw: HnswSpec = HnswSpec()
    distance: Distance = Distance.COSINE
    search: SearchSpec = SearchSpec()
    answer: AnswerSpec = AnswerSpec()
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN


# ---------------------------------------------------------------- InferencePool


class Purpose(StrEnum):
    CHAT = "chat"
    EMBEDDING = "embedding"


class ProviderType(StrEnum):
    OPENAI = "openai"
    EXTRACTIVE = "extractive"
    LOCAL = "local"


class ProviderSpec(_Model):
    name: Name
    type: ProviderType
    base_url: str | None = Field(default=None, alias="baseURL", max_length=2048)
    model: str | None = Field(default=None, max_length=200)
    api_key_secret_ref: SecretKeyRef | None = None
    priority: int = Field(default=100, ge=0, le=1000)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_retries: int = Field(default=2, ge=0, le=10)

    @model_validator(mode="after")
    def _openai_needs_endpoint(self) -> ProviderSpec:
        if self.type is ProviderType.OPENAI and not (self.base_url and self.model):
            raise ValueError(f"provider {self.name!r}: type openai needs baseURL and model")
        return self


class CircuitBreakerSpec(_Model):
    failure_threshold: int = Field(default=5, ge=1, le=1000)
    cooldown_seconds: float = Field(default=60.0, gt=0, le=86400)


class AutoscalingSpec(_Model):
    min_replicas: int = Field(default=1, ge=0, le=1000)
    max_replicas: int = Field(default=3, ge=1, le=1000)
    target_cpu_utilization_percentage: int | None = Field(
        default=80, ge=1, le=100, alias="targetCPUUtilizationPercentage"
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.minReplicas must not exceed maxReplicas")
        return self


class DeploymentSpec(_Model):
    image: str = Field(min_length=1, max_length=1024)
    args: list[str] = Field(default_factory=list)
    port: int = Field(default=8000, ge=1, le=65535)
    resources: dict[str, Any] = Field(default_factory=dict)
    replicas: int = Field(default=1, ge=0, le=1000)
    autoscaling: AutoscalingSpec | None = None


class InferencePoolSpec(_Model):
    purpose: Purpose
    providers: list[ProviderSpec] = Field(min_length=1, max_length=32)
    circuit_breaker: CircuitBreakerSpec = CircuitBreakerSpec()
    deployment: DeploymentSpec | None = None

    @model_validator(mode="after")
    def _unique_provider_names(self) -> InferencePoolSpec:
        names = [p.name for p in self.providers]
        if len(names) != len(set(names)):
            raise ValueError("providers[].name must be unique within a pool")
        return self

    def ordered(self) -> list[ProviderSpec]:
        """Providers in the order the router tries them (stable for equal priorities)."""
        return sorted(self.providers, key=lambda p: p.priority)


# ---------------------------------------------------------------- ProviderBudget


class Period(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    MONTHLY = "monthly"


class OnExhausted(StrEnum):
    FALLBACK = "fallback"
    REJECT = "reject"
    DEGRADE = "degrade"


class BudgetLimit(_Model):
    usd: Decimal | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)
    requests: int | None = Field(default=None, ge=0)


class RateLimits(_Model):
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


class ModelPrice(_Model):
    model: str = Field(min_length=1, max_length=200)
    input_per1_m: Decimal = Field(alias="inputPer1M", ge=0)
    output_per1_m: Decimal = Field(alias="outputPer1M", ge=0)


class ProviderBudgetSpec(_Model):
    pool_ref: LocalObjectRef
    provider: Name
    period: Period = Period.MONTHLY
    limit: BudgetLimit = BudgetLimit()
    rate_limits: RateLimits = RateLimits()
    pricing: list[ModelPrice] = Field(default_factory=list)
    on_exhausted: OnExhausted = OnExhausted.FALLBACK
    alert_thresholds: list[Annotated[int, Field(ge=1, le=100)]] = Field(
        default_factory=lambda: [50, 80, 100]
    )


# ---------------------------------------------------------------- resources

Kind = Literal["RagIndex", "InferencePool", "ProviderBudget"]
SPEC_MODELS: dict[str, type[_Model]] = {
    "RagIndex": RagIndexSpec,
    "InferencePool": InferencePoolSpec,
    "ProviderBudget": ProviderBudgetSpec,
}
