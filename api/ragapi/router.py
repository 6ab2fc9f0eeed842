"""The chat router: walks a pool's providers in priority order and falls through.

Any provider failure moves on to the next provider; the extractive provider is always
the last resort, so a question is never lost. The result says which provider answered
and which were skipped and why. A stream falls through only before its first token:
after that, text has reached the client and a failure ends the stream with an error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog

from ragapi.contract import InferencePoolSpec, ProviderSpec, ProviderType
from ragapi.metrics import PROVIDER_LATENCY, PROVIDER_REQUESTS, PROVIDER_TOKENS
from ragapi.providers.base import ChatProvider, ChatRequest, Completion, ProviderFailure, Usage
from ragapi.providers.extractive import ExtractiveProvider
from ragapi.providers.openai_chat import OpenAIChatProvider, classify
from ragapi.secrets import read_secret
from ragapi.tracing import tracer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Skipped:
    provider: str
    reason: str  # bounded: timeout, connection, rate_limited, server_error, client_error, ...


@dataclass(frozen=True)
class Routed:
    completion: Completion
    provider: str
    model: str
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class StreamStart:
    """First event of a routed stream: who is answering, and who was skipped."""

    provider: str
    model: str
    skipped: list[Skipped]


class StreamInterrupted(Exception):
    """A provider failed after its first token; the partial answer must not pass as whole."""

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


class ProviderFactory:
    """One provider object per distinct provider spec (clients keep connection pools)."""

    def __init__(self) -> None:
        self._cache: dict[str, ChatProvider] = {}

    def get(self, spec: ProviderSpec) -> ChatProvider:
        key = spec.model_dump_json()
        found = self._cache.get(key)
        if found is None:
            found = self._build(spec)
            self._cache[key] = found
        return found

    def _build(self, spec: ProviderSpec) -> ChatProvider:
        if spec.type is ProviderType.OPENAI:
            assert spec.base_url and spec.model  # enforced by the contract
            return OpenAIChatProvider(
                spec.name,
                base_url=spec.base_url,
                model=spec.model,
                api_key=read_secret(spec.api_key_secret_ref),
                timeout=spec.timeout_seconds,
            )
        return ExtractiveProvider(spec.name)

    async def aclose(self) -> None:
        for p in self._cache.values():
            if isinstance(p, OpenAIChatProvider):
                await p.aclose()


def candidates(pool: InferencePoolSpec, factory: ProviderFactory) -> list[ChatProvider]:
    providers = [factory.get(p) for p in pool.ordered() if p.type is not ProviderType.LOCAL]
    if not any(isinstance(p, ExtractiveProvider) for p in providers):
        providers.append(ExtractiveProvider())  # the last resort is always there
    return providers


def _record_usage(provider: str, usage: Usage) -> None:
    PROVIDER_TOKENS.labels(provider, "input").inc(usage.input_tokens)
    PROVIDER_TOKENS.labels(provider, "output").inc(usage.output_tokens)


class ChatRouter:
    def __init__(self, factory: ProviderFactory | None = None) -> None:
        self.factory = factory or ProviderFactory()

    async def complete(self, pool: InferencePoolSpec, request: ChatRequest) -> Routed:
        skipped: list[Skipped] = []
        for provider in candidates(pool, self.factory):
            with tracer.start_as_current_span("generate") as span:
                span.set_attribute("ragline.provider", provider.name)
                span.set_attribute("ragline.model", provider.model)
                started = time.perf_counter()
                try:
                    completion = await provider.complete(request)
                except Exception as exc:
                    failure = classify(provider.name, exc)
                    PROVIDER_REQUESTS.labels(provider.name, failure.kind).inc()
                    span.set_attribute("ragline.fallback_reason", failure.kind)
                    log.warning(
                        "provider_failed",
                        provider=provider.name,
                        reason=failure.kind,
                        error=str(failure),
                    )
                    skipped.append(Skipped(provider.name, failure.kind))
                    continue
                PROVIDER_LATENCY.labels(provider.name).observe(time.perf_counter() - started)
                PROVIDER_REQUESTS.labels(provider.name, "success").inc()
                _record_usage(provider.name, completion.usage)
                span.set_attribute("ragline.tokens.input", completion.usage.input_tokens)
                span.set_attribute("ragline.tokens.output", completion.usage.output_tokens)
                return Routed(completion, provider.name, provider.model, skipped)
        raise AssertionError("unreachable: the extractive provider does not fail")

    async def stream(
        self, pool: InferencePoolSpec, request: ChatRequest
    ) -> AsyncIterator[StreamStart | str | Usage]:
        skipped: list[Skipped] = []
        for provider in candidates(pool, self.factory):
            started = time.perf_counter()
            first = True
            iterator = provider.stream(request)
            try:
                async for item in iterator:
                    if first:
                        first = False
                        PROVIDER_LATENCY.labels(provider.name).observe(
                            time.perf_counter() - started
                        )
                        yield StreamStart(provider.name, provider.model, skipped)
                    if isinstance(item, Usage):
                        _record_usage(provider.name, item)
                    yield item
            except Exception as exc:
                failure = classify(provider.name, exc)
                PROVIDER_REQUESTS.labels(provider.name, failure.kind).inc()
                log.warning(
                    "provider_failed",
                    provider=provider.name,
                    reason=failure.kind,
                    streamed=not first,
                    error=str(failure),
                )
                if not first:
                    raise StreamInterrupted(failure) from exc
                skipped.append(Skipped(provider.name, failure.kind))
                continue
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()  # a client that went away cancels the upstream call
            PROVIDER_REQUESTS.labels(provider.name, "success").inc()
            if first:  # an empty stream still answered
                yield StreamStart(provider.name, provider.model, skipped)
            return
        raise AssertionError("unreachable: the extractive provider does not fail")
