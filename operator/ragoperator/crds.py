"""The CustomResourceDefinitions of Ragline, generated from :mod:`ragapi.contract`.

The pydantic models in ``api/ragapi/contract.py`` are the one source of truth for the
spec of RagIndex, InferencePool and ProviderBudget. This module turns their JSON schemas
into Kubernetes *structural* OpenAPI v3 schemas (``$ref`` inlined, ``Optional`` as the
plain type, ``Decimal`` as a decimal string, no ``additionalProperties: false``) and adds
what only the API server needs: CEL rules mirroring the models' cross-field validators,
the status schemas, printer columns and names.

    python -m ragoperator.crds --write crds    # regenerate the committed files
    python -m ragoperator.crds --check crds    # exit 1 and list stale files
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from ragapi import contract as c

__all__ = [
    "CEL_RULES",
    "CRD_API_VERSION",
    "HEADER",
    "KINDS",
    "CelRule",
    "CrdError",
    "KindInfo",
    "check",
    "crd",
    "crds",
    "main",
    "render",
    "rendered",
    "spec_schema",
    "write",
]

CRD_API_VERSION = "apiextensions.k8s.io/v1"
HEADER = (
    "# generated from api/ragapi/contract.py by `python -m ragoperator.crds --write crds`;"
    " do not edit\n"
)
WRITE_COMMAND = "python -m ragoperator.crds --write crds"

# Decimal amounts (money) travel as strings, as Kubernetes quantities do: a float would
# round "0.15" and the API server has no decimal type.
DECIMAL_PATTERN = r"^\d+(\.\d+)?$"
SIGNED_DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"

Schema = dict[str, Any]


class CrdError(ValueError):
    """The contract has a shape this generator cannot express as a structural schema."""


# ---------------------------------------------------------------- what the models lack


@dataclass(frozen=True)
class CelRule:
    """An ``x-kubernetes-validations`` rule placed on a model's schema.

    ``field`` is a property (by its camelCase name) of that model, or None for the
    model's object itself; ``items`` puts the rule on each item of that array field.
    """

    rule: str
    message: str
    field: str | None = None
    items: bool = False

    def as_schema(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message}


# Cross-field rules. Each mirrors a pydantic validator in the contract where there is one;
# the API server only evaluates them after defaulting, so every field they read is there.
CEL_RULES: dict[type[BaseModel], tuple[CelRule, ...]] = {
    c.ChunkingSpec: (
        CelRule(
            "self.overlapTokens * 2 < self.maxTokens",
            "chunking.overlapTokens must be less than half of maxTokens",
        ),
    ),
    c.HnswSpec: (
        CelRule(
            "self.efConstruction >= 2 * self.m",
            "hnsw.efConstruction must be at least 2 * m",
        ),
    ),
    c.EmbeddingSpec: (
        CelRule(
            "self == oldSelf",
            "embedding.dimensions is immutable: the vector column has a fixed size;"
            " create a new RagIndex to change it",
            field="dimensions",
        ),
    ),
    c.ProviderSpec: (
        CelRule(
            "self.type != 'openai' || (has(self.baseURL) && size(self.baseURL) > 0"
            " && has(self.model) && size(self.model) > 0)",
            "a provider of type openai needs baseURL and model",
        ),
    ),
    c.InferencePoolSpec: (
        CelRule(
            "self.providers.all(p, self.providers.exists_one(q, q.name == p.name))",
            "providers[].name must be unique within a pool",
        ),
    ),
    c.AutoscalingSpec: (
        CelRule(
            "self.minReplicas <= self.maxReplicas",
            "autoscaling.minReplicas must not exceed maxReplicas",
        ),
    ),
    c.ProviderBudgetSpec: (
        CelRule(
            "self >= 1 && self <= 100",
            "alertThresholds are percentages of the limit: each must be between 1 and 100",
            field="alertThresholds",
            items=True,
        ),
    ),
}

# Descriptions for fields whose model gives none (a model's own description wins).
FIELD_DESCRIPTIONS: dict[type[BaseModel], dict[str, str]] = {
    c.RagIndexSpec: {
        "database": "Where the index's tables live.",
        "embedding": "How chunks and queries are embedded; dimensions cannot change later.",
        "chunking": "How documents are split into chunks.",
        "hnsw": "pgvector HNSW parameters; a change builds a new index beside the old"
        " one and swaps atomically.",
        "distance": "Vector distance of the HNSW index and of search.",
        "search": "Retrieval defaults: hybrid (vector + full text, RRF) and result count.",
        "answer": "Answer generation: the chat InferencePool and the context budget.",
        "deletionPolicy": "Retain keeps the index's Postgres tables when the RagIndex is"
        " deleted; Delete drops them.",
    },
    c.EmbeddingSpec: {
        "model": "Embedding model name as the pool's providers know it.",
        "dimensions": "Vector dimension of the model; fixed for the life of the index.",
    },
    c.ChunkingSpec: {
        "maxTokens": "Largest chunk, in tokens.",
        "overlapTokens": "Tokens shared by consecutive chunks; less than half of maxTokens.",
        "strategy": "structured follows headings and paragraphs; fixed cuts every maxTokens.",
    },
    c.HnswSpec: {
        "m": "Links per node of the HNSW graph.",
        "efConstruction": "Candidate list size while building; at least 2 * m.",
        "efSearch": "Candidate list size while searching (recall against latency).",
    },
    c.SearchSpec: {
        "hybrid": "Fuse vector and full-text results with reciprocal rank fusion.",
        "rrfK": "The k constant of reciprocal rank fusion.",
        "topK": "Chunks returned by default.",
    },
    c.AnswerSpec: {
        "poolRef": "Chat InferencePool; the pool named default when absent.",
        "maxContextTokens": "Tokens of retrieved context given to the model at most.",
    },
    c.InferencePoolSpec: {
        "purpose": "What the pool serves: chat completions or embeddings.",
        "providers": "Backends tried in priority order (lowest first), falling back on failure.",
        "circuitBreaker": "When a failing provider is skipped, and for how long.",
        "deployment": "Optional self-hosted OpenAI-compatible server (vLLM, llama.cpp,"
        " Ollama, TEI) the operator runs as Deployment + Service + HPA + PDB.",
    },
    c.ProviderSpec: {
        "name": "Provider name, unique within the pool.",
        "type": "openai (any OpenAI-compatible API), extractive (answers by quoting the"
        " sources, no model) or local (in-process embeddings).",
        "baseURL": "API base URL, e.g. https://api.openai.com/v1; required for openai.",
        "model": "Model name sent to the provider; required for openai.",
        "apiKeySecretRef": "Secret key holding the API key.",
        "priority": "Lower is tried first.",
        "timeoutSeconds": "Timeout of one call.",
        "maxRetries": "Retries on the same provider before falling back.",
    },
    c.LocalObjectRef: {"name": "Name of an object in the same namespace."},
    c.SecretKeyRef: {
        "name": "Name of a Secret in the same namespace.",
        "key": "Key within the Secret.",
    },
    c.CircuitBreakerSpec: {
        "failureThreshold": "Consecutive failures that open the circuit.",
        "cooldownSeconds": "Seconds the circuit stays open before a trial call.",
    },
    c.DeploymentSpec: {
        "image": "Container image of the model server.",
        "args": "Container arguments.",
        "port": "Port the server listens on.",
        "resources": "Container resources (requests and limits), as in a Pod spec.",
        "replicas": "Replicas when autoscaling is absent.",
        "autoscaling": "HorizontalPodAutoscaler (autoscaling/v2) bounds and target.",
    },
    c.AutoscalingSpec: {
        "minReplicas": "Fewest replicas; at most maxReplicas.",
        "maxReplicas": "Most replicas.",
        "targetCPUUtilizationPercentage": "Average CPU utilization the autoscaler aims for.",
    },
    c.ProviderBudgetSpec: {
        "poolRef": "The InferencePool whose provider this budget limits.",
        "provider": "Provider name within that pool.",
        "period": "Budget period; the counters reset at its end.",
        "limit": "Spending limits per period; an absent limit is unlimited.",
        "rateLimits": "Per-minute rate limits.",
        "pricing": "Prices per million tokens, used to convert tokens to USD.",
        "onExhausted": "When the budget is spent: fall back to the next provider, reject"
        " the request, or degrade to an extractive answer.",
        "alertThresholds": "Percentages of the limit at which a Kubernetes Event is emitted.",
    },
    c.BudgetLimit: {
        "usd": 'US dollars per period, as a decimal string such as "200.00".',
        "tokens": "Tokens (input + output) per period.",
        "requests": "Requests per period.",
    },
    c.RateLimits: {
        "requestsPerMinute": "Requests per minute across all API replicas.",
        "tokensPerMinute": "Tokens per minute across all API replicas.",
    },
    c.ModelPrice: {
        "model": "Model name as sent to the provider.",
        "inputPer1M": "USD per million input tokens, as a decimal string.",
        "outputPer1M": "USD per million output tokens, as a decimal string.",
    },
}


# ---------------------------------------------------------------- kinds


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short_name: str
    description: str
    spec_model: type[BaseModel]
    status: Schema
    columns: tuple[dict[str, str], ...]

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{c.GROUP}"

    @property
    def filename(self) -> str:
        return f"{self.crd_name}.yaml"


def _int(description: str, fmt: str = "int64", minimum: int | None = 0) -> Schema:
    s: Schema = {"type": "integer", "format": fmt, "description": description}
    if minimum is not None:
        s["minimum"] = minimum
    return s


def _str(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _time(description: str) -> Schema:
    return {"type": "string", "format": "date-time", "description": description}


def _obj(description: str, properties: Schema, required: Sequence[str] = ()) -> Schema:
    s: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        s["required"] = list(required)
    return s


def _free(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "x-kubernetes-preserve-unknown-fields": True,
    }


# metav1.Condition, as Kubernetes' own types declare it.
CONDITION = _obj(
    "One aspect of the resource's state (metav1.Condition).",
    {
        "type": _str(
            "Condition type in CamelCase, e.g. Ready.",
            maxLength=316,
            pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
            r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        ),
        "status": _str("True, False or Unknown.", enum=["True", "False", "Unknown"]),
        "observedGeneration": _int("metadata.generation the condition was set from."),
        "lastTransitionTime": _time("When the status last changed."),
        "reason": _str(
            "Machine-readable CamelCase reason for the last transition.",
            maxLength=1024,
            minLength=1,
            pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        ),
        "message": _str("Human-readable details.", maxLength=32768),
    },
    required=["type", "status", "lastTransitionTime", "reason", "message"],
)


def _status(description: str, phase: Schema, properties: Schema) -> Schema:
    return _obj(
        description,
        {
            "observedGeneration": _int("metadata.generation the status reflects."),
            "conditions": {
                "type": "array",
                "description": "Ready, plus conditions particular to the kind.",
                "items": CONDITION,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "phase": phase,
            **properties,
            # kopf keeps handler progress here; pruning it would make kopf warn.
            "kopf": _free("The operator framework's own bookkeeping."),
        },
    )


def _usage(description: str, pattern: str) -> Schema:
    return _obj(
        description,
        {
            "usd": _str("US dollars, as a decimal string.", pattern=pattern),
            "tokens": _int("Tokens.", minimum=None),
            "requests": _int("Requests.", minimum=None),
        },
    )


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        kind="RagIndex",
        plural="ragindexes",
        short_name="ri",
        description="A searchable collection of documents: a pgvector table with its"
        " full-text and HNSW indexes, and how documents are chunked, embedded and"
        " answered from.",
        spec_model=c.RagIndexSpec,
        status=_status(
            "Observed state of the index.",
            _str(
                "Pending, Building (an HNSW build is running), Ready or Failed.",
                enum=["Pending", "Building", "Ready", "Failed"],
            ),
            {
                "documents": _int("Documents in the index."),
                "chunks": _int("Chunks in the index."),
                "index": _obj(
                    "The HNSW index serving queries.",
                    {
                        "name": _str("Postgres name of the index."),
                        "params": _free("Parameters it was built with."),
                        "builtAt": _time("When its build finished."),
                        "buildSeconds": {
                            "type": "number",
                            "description": "How long the build took, in seconds.",
                            "minimum": 0,
                        },
                    },
                ),
            },
        ),
        columns=(
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Chunks", "type": "integer", "jsonPath": ".status.chunks"},
            {"name": "Documents", "type": "integer", "jsonPath": ".status.documents"},
            _AGE,
        ),
    ),
    KindInfo(
        kind="InferencePool",
        plural="inferencepools",
        short_name="ipool",
        description="The ordered backends for one purpose (chat or embedding), with"
        " fallback, a circuit breaker and optionally a self-hosted model server.",
        spec_model=c.InferencePoolSpec,
        status=_status(
            "Observed state of the pool.",
            _str("Summary of the pool's state."),
            {
                "readyReplicas": _int("Ready replicas of the self-hosted server.", "int32"),
                "providers": {
                    "type": "array",
                    "description": "Providers' health as reported by the API pods.",
                    "items": _obj(
                        "One provider's health.",
                        {
                            "name": _str("Provider name."),
                            "healthy": {"type": "boolean", "description": "Whether it answers."},
                            "reason": _str("Why it is unhealthy, when it is."),
                        },
                        required=["name"],
                    ),
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                },
            },
        ),
        columns=(
            {"name": "Purpose", "type": "string", "jsonPath": ".spec.purpose"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
            _AGE,
        ),
    ),
    KindInfo(
        kind="ProviderBudget",
        plural="providerbudgets",
        short_name="pb",
        description="Money and rate limits for one provider of an InferencePool,"
        " enforced atomically across all API replicas.",
        spec_model=c.ProviderBudgetSpec,
        status=_status(
            "Spending in the current period.",
            _str("Summary of the budget's state."),
            {
                "spent": _usage("Used so far in this period.", DECIMAL_PATTERN),
                "remaining": _usage(
                    "Left in this period (negative when in-flight calls overran it).",
                    SIGNED_DECIMAL_PATTERN,
                ),
                "state": _str(
                    "Ok, Warning (an alert threshold was crossed) or Exhausted.",
                    enum=["Ok", "Warning", "Exhausted"],
                ),
                "periodEnd": _time("When the current period ends."),
                "lastAlertThreshold": {
                    **_int("The highest alert threshold crossed in this period.", "int32"),
                    "maximum": 100,
                },
            },
        ),
        columns=(
            {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
            {"name": "Period", "type": "string", "jsonPath": ".spec.period"},
            {"name": "State", "type": "string", "jsonPath": ".status.state"},
            {"name": "Spent", "type": "string", "jsonPath": ".status.spent.usd"},
            _AGE,
        ),
    ),
)


# ---------------------------------------------------------------- schema conversion


class _CrdJsonSchema(GenerateJsonSchema):
    """Pydantic's JSON schema with ``default_factory`` values and decimals as strings."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return super().get_default_value(schema)

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        ge, gt = schema.get("ge"), schema.get("gt")
        non_negative = (ge is not None and ge >= 0) or (gt is not None and gt >= 0)
        return {
            "type": "string",
            "pattern": DECIMAL_PATTERN if non_negative else SIGNED_DECIMAL_PATTERN,
        }


# Keywords passed through unchanged; anything else pydantic emits is an error, so a
# new construct in the contract fails here instead of producing a wrong CRD.
_PLAIN_KEYS = frozenset(
    {
        "type",
        "format",
        "description",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "multipleOf",
    }
)
_KEY_ORDER = (
    "type",
    "format",
    "description",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "items",
    "properties",
    "additionalProperties",
    "required",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
)


def _ordered(node: Schema) -> Schema:
    rank = {k: i for i, k in enumerate(_KEY_ORDER)}
    return {k: node[k] for k in sorted(node, key=lambda k: (rank.get(k, len(rank)), k))}


def _ordered_deep(node: Schema) -> Schema:
    """``_ordered`` all the way down, leaving the order of property names alone."""
    out: Schema = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _ordered_deep(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _ordered_deep(value)
        else:
            out[key] = value
    return _ordered(out)


def _prune_default(value: Any) -> Any:
    """A default as the API server may hold it: no nulls, no empty objects or lists."""
    if isinstance(value, Mapping):
        out = {k: _prune_default(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_prune_default(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


class _Converter:
    def __init__(self, root: Schema) -> None:
        self.defs: dict[str, Schema] = root.get("$defs", {})
        self.models: dict[str, type[BaseModel]] = {}
        self.used: set[tuple[str, int]] = set()

    def convert(self, node: Schema, path: str, model: str | None = None) -> Schema:
        node = dict(node)
        if "anyOf" in node:
            branches = [b for b in node.pop("anyOf") if b != {"type": "null"}]
            if len(branches) != 1:
                raise CrdError(f"{path}: a union of {branches} has no structural form")
            node = {**branches[0], **node}
        if "$ref" in node:
            ref = node.pop("$ref")
            name = ref.removeprefix("#/$defs/")
            if name not in self.defs:
                raise CrdError(f"{path}: unresolved {ref}")
            node = {**self.defs[name], **node}
            model = name
        if "allOf" in node and len(node["allOf"]) == 1:
            node = {**node.pop("allOf")[0], **node}
            return self.convert(node, path, model)
        node.pop("title", None)

        out: Schema = {}
        for key, value in node.items():
            if key in _PLAIN_KEYS:
                out[key] = copy.deepcopy(value)
            elif key == "const":
                out["enum"] = [value]
            elif key == "default":
                default = _prune_default(value)
                if default not in (None, {}, []):
                    out["default"] = default
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                # JSON Schema 2020-12 numbers become OpenAPI 3.0's bound + boolean.
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                out[bound] = value
                out[key] = True
            elif key == "uniqueItems":
                if value:
                    out["x-kubernetes-list-type"] = "set"
            elif key == "items":
                out["items"] = self.convert(value, f"{path}[*]")
            elif key == "additionalProperties":
                if value is True:
                    out["x-kubernetes-preserve-unknown-fields"] = True
                elif isinstance(value, dict):
                    out["additionalProperties"] = self.convert(value, f"{path}.*")
            elif key == "properties":
                out["properties"] = self._properties(value, path, model)
            elif key == "required":
                out["required"] = list(value)
            elif key in ("$defs",):
                continue
            else:
                raise CrdError(f"{path}: JSON schema keyword {key!r} is not supported")
        if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            raise CrdError(f"{path}: no type")
        if out.get("type") == "object" and not (
            {"properties", "additionalProperties"} & out.keys()
        ):
            out["x-kubernetes-preserve-unknown-fields"] = True
        if model is not None:
            rules = self._rules(model, None, items=False)
            if rules:
                out["x-kubernetes-validations"] = rules
        return _ordered(out)

    def _properties(self, props: Schema, path: str, model: str | None) -> Schema:
        cls = self.models.get(model) if model else None
        described = FIELD_DESCRIPTIONS.get(cls, {}) if cls else {}
        out: Schema = {}
        for name, sub in props.items():
            prop = self.convert(sub, f"{path}.{name}")
            if "description" not in prop and name in described:
                prop["description"] = described[name]
            if model is not None:
                rules = self._rules(model, name, items=False)
                if rules:
                    prop["x-kubernetes-validations"] = rules
                item_rules = self._rules(model, name, items=True)
                if item_rules:
                    prop["items"] = _ordered(
                        {**prop["items"], "x-kubernetes-validations": item_rules}
                    )
            out[name] = _ordered(prop)
        return out

    def _rules(self, model: str, field: str | None, *, items: bool) -> list[dict[str, str]]:
        cls = self.models.get(model)
        if cls is None:
            return []
        found = []
        for i, r in enumerate(CEL_RULES.get(cls, ())):
            if r.field == field and r.items == items:
                self.used.add((model, i))
                found.append(r.as_schema())
        return found


def _model_classes(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``model``, by name (the name of its ``$defs`` entry)."""
    seen: dict[str, type[BaseModel]] = {}

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ in seen:
                if seen[tp.__name__] is not tp:
                    raise CrdError(f"two models named {tp.__name__}")
                return
            seen[tp.__name__] = tp
            for field in tp.model_fields.values():
                visit(field.annotation)
            return
        for arg in getattr(tp, "__args__", ()):
            visit(arg)

    visit(model)
    return seen


def spec_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of a spec model, with its CEL rules."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_CrdJsonSchema)
    conv = _Converter(raw)
    conv.models = _model_classes(model)
    root = {k: v for k, v in raw.items() if k != "$defs"}
    schema = conv.convert(root, "spec", model.__name__)
    for name, cls in conv.models.items():
        aliases = {f.alias or n for n, f in cls.model_fields.items()}
        for field in FIELD_DESCRIPTIONS.get(cls, {}).keys() - aliases:
            raise CrdError(f"description for {name}.{field}, which has no such field")
        for i, rule in enumerate(CEL_RULES.get(cls, ())):
            if (name, i) not in conv.used:
                where = f"{name}.{rule.field}" if rule.field else name
                raise CrdError(f"CEL rule for {where} matches no schema: {rule.rule}")
    return schema


# ---------------------------------------------------------------- manifests


_NAME_RULE = {
    "rule": f"size(self.metadata.name) <= 63 && self.metadata.name.matches('{c.NAME_PATTERN}')",
    "message": "metadata.name must be a DNS-1123 label: at most 63 lowercase letters,"
    " digits and '-', no dots",
}


def _root_schema(info: KindInfo) -> Schema:
    spec = spec_schema(info.spec_model)
    spec["description"] = f"Desired state of the {info.kind}."
    spec_required = bool(spec.get("required"))
    if not spec_required:
        spec["default"] = {}
    root: Schema = {
        "type": "object",
        "description": info.description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _ordered(spec),
            "status": _ordered_deep(info.status),
        },
        "x-kubernetes-validations": [_NAME_RULE],
    }
    if spec_required:
        root["required"] = ["spec"]
    return _ordered(root)


def crd(info: KindInfo) -> Schema:
    """The CustomResourceDefinition of one kind."""
    return {
        "apiVersion": CRD_API_VERSION,
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.crd_name,
            "labels": {"app.kubernetes.io/part-of": "ragline"},
        },
        "spec": {
            "group": c.GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": [info.short_name],
                "categories": ["ragline"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(col) for col in info.columns],
                    "schema": {"openAPIV3Schema": _root_schema(info)},
                }
            ],
        },
    }


def crds() -> dict[str, Schema]:
    """Every CRD by file name."""
    return {info.filename: crd(info) for info in KINDS}


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def render(manifest: Mapping[str, Any]) -> str:
    """Deterministic YAML: the generator's key order, no line folding, a header."""
    body = yaml.dump(
        manifest,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
    )
    return HEADER + body


def rendered() -> dict[str, str]:
    return {name: render(m) for name, m in crds().items()}


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check(directory: Path) -> list[str]:
    """Problems with the CRDs in ``directory``: stale, missing or unknown files."""
    expected = rendered()
    problems = []
    for name, text in expected.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: stale")
    for path in sorted(directory.glob(f"*.{c.GROUP}.yaml")):
        if path.name not in expected:
            problems.append(f"{path}: not generated from the contract (remove it?)")
    return problems


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ragoperator.crds",
        description="Generate Ragline's CRDs from api/ragapi/contract.py.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="DIR", type=Path, help="write the CRDs into DIR")
    mode.add_argument("--check", metavar="DIR", type=Path, help="exit 1 if DIR is stale")
    args = parser.parse_args(argv)
    if args.write is not None:
        for path in write(args.write):
            out(str(path))
        return 0
    problems = check(args.check)
    for problem in problems:
        out(problem)
    if problems:
        out(f"run `{WRITE_COMMAND}`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
