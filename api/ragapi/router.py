"""The chat router: walks a pool's providers in priority order and falls through.

Per provider: the circuit breaker may skip it; its ProviderBudgets reserve the estimated
cost (and its RPM/TPM must admit the call); the call runs with the provider's timeout and
retries retryable failures (timeouts, connection errors, 429 honouring ``Retry-After``,
5xx, malformed responses) with jittered exponential backoff — never 400/401/403. Then
the reservation is settled with the reported usage, or released on failure, and the next
provider is tried. The extractive provider is always the last resort, so a question is
never lost; the result names the provider that answered and why others were skipped.

A stream falls through only before its first token: after that, text has reached the
client and a failure ends the stream with an error. A client that goes away closes the
upstream stream (no tokens paid for nobody).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from opentelemetry import trace

from ragapi.breaker import CircuitBreaker
from ragapi.budgets import BudgetLedger, Estimate, Refusal, Reservation, estimate
from ragapi.contract import (
    InferencePoolSpec,
    OnExhausted,
    ProviderBudgetSpec,
    ProviderSpec,
    ProviderType,
)
from ragapi.errors import BudgetExceeded
from ragapi.metrics import PROVIDER_LATENCY, PROVIDER_REQUESTS, PROVIDER_TOKENS
from ragapi.providers.base import ChatProvider, ChatRequest, Completion, ProviderFailure, Usage
from ragapi.providers.extractive import ExtractiveProvider
from ragapi.providers.openai_chat import OpenAIChatProvider, classify
from ragapi.ratelimit import ProviderRateLimiter
from ragapi.retry import RETRY_WAIT_CAP_SECONDS, retryable, retrying
from ragapi.secrets import read_secret
from ragapi.tracing import child_span, exemplar, leaf_span

log = structlog.get_logger(__name__)
T = TypeVar("T")

DEFAULT_MAX_OUTPUT_TOKENS = 512


@dataclass(frozen=True)
class Skipped:
    provider: str
    reason: str  # bounded: timeout, connection, rate_limited, server_error, client_error,
    # bad_response, circuit_open, budget_exhausted, budget_unavailable


@dataclass(frozen=True)
class Routed:
    completion: Completion
    provider: str
    model: str
    skipped: list[Skipped] = field(default_factory=list)
    degraded: bool = False  # answered by the last resort because budgets said no


@dataclass(frozen=True)
class StreamStart:
    """First event of a routed stream: who is answering, and who was skipped."""

    provider: str
    model: str
    skipped: list[Skipped]
    degraded: bool = False


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


@dataclass(frozen=True)
class Candidate:
    spec: ProviderSpec
    provider: ChatProvider

    @property
    def last_resort(self) -> bool:
        return isinstance(self.provider, ExtractiveProvider)


def candidates(pool: InferencePoolSpec, factory: ProviderFactory) -> list[Candidate]:
    found = [
        Candidate(p, factory.get(p)) for p in pool.ordered() if p.type is not ProviderType.LOCAL
    ]
    if not any(c.last_resort for c in found):
        spec = ProviderSpec(name="extractive", type=ProviderType.EXTRACTIVE)
        found.append(Candidate(spec, factory.get(spec)))  # the last resort is always there
    return found


def _record_usage(provider: str, usage: Usage) -> None:
    PROVIDER_TOKENS.labels(provider, "input").inc(usage.input_tokens)
    PROVIDER_TOKENS.labels(provider, "output").inc(usage.output_tokens)


@dataclass
class _Walk:
    skipped: list[Skipped] = field(default_factory=list)
    degraded: bool = False  # a budget said "degrade": only the last resort may answer


@dataclass
class _Admission:
    reservations: list[Reservation]
    skip: str | None = None  # reason to skip the provider
    degrade: bool = False  # go straight to the last resort, flagged


class ChatRouter:
    def __init__(
        self,
        factory: ProviderFactory | None = None,
        *,
        ledger: BudgetLedger | None = None,
        rates: ProviderRateLimiter | None = None,
        budgets: Callable[[], Mapping[str, ProviderBudgetSpec]] = dict,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = factory or ProviderFactory()
        self._ledger = ledger
        self._rates = rates
        self._budgets = budgets
        self._clock = clock
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def breaker(self, pool_name: str, pool: InferencePoolSpec, provider: str) -> CircuitBreaker:
        key = (pool_name, provider)
        b = self._breakers.get(key)
        cb = pool.circuit_breaker
        if b is None or (b.failure_threshold, b.cooldown_seconds) != (
            cb.failure_threshold,
            cb.cooldown_seconds,
        ):
            b = CircuitBreaker(provider, cb.failure_threshold, cb.cooldown_seconds, self._clock)
            self._breakers[key] = b
        return b

    # ------------------------------------------------------------------ budgets

    async def _admit(self, pool_name: str, c: Candidate, request: ChatRequest) -> _Admission:
        budgets = [
            (n, b)
            for n, b in self._budgets().items()
            if b.pool_ref.name == pool_name and b.provider == c.spec.name
        ]
        if not budgets:
            return _Admission([])
        if self._ledger is None or self._rates is None:
            return _Admission([], skip="budget_unavailable", degrade=True)
        prompt_chars = sum(len(m.get("content", "")) for m in request.messages)
        max_out = request.max_tokens or DEFAULT_MAX_OUTPUT_TOKENS
        held: list[Reservation] = []
        for name, spec in budgets:
            est = estimate(spec, c.provider.model, prompt_chars, max_out)
            try:
                admitted = await self._rates.admit(name, spec.rate_limits, est.tokens)
                got = (
                    await self._ledger.reserve(name, spec, est, c.spec.timeout_seconds)
                    if admitted
                    else None
                )
            except Exception as exc:  # Redis unreachable (directly, or wrapped by `limits`)
                await self._release(held)
                log.error("budget_unavailable", provider=c.spec.name, error=type(exc).__name__)
                return _Admission([], skip="budget_unavailable", degrade=True)
            if got is None:
                await self._release(held)
                return _Admission([], skip="rate_limited")
            if isinstance(got, Refusal):
                await self._release(held)
                return self._exhausted(spec, got)
            held.append(got)
        return _Admission(held)

    def _exhausted(self, spec: ProviderBudgetSpec, refusal: Refusal) -> _Admission:
        if spec.on_exhausted is OnExhausted.REJECT:
            raise BudgetExceeded(
                f"budget {refusal.budget!r} is exhausted ({refusal.dimension}: "
                f"{refusal.used} of {refusal.limit}); it resets in {refusal.retry_after}s",
                headers={"Retry-After": str(refusal.retry_after)},
            )
        return _Admission(
            [], skip="budget_exhausted", degrade=spec.on_exhausted is OnExhausted.DEGRADE
        )

    async def _release(self, held: list[Reservation]) -> None:
        if self._ledger is not None:
            for r in held:
                await self._ledger.release(r)

    async def _settle(self, held: list[Reservation], model: str, usage: Usage | None) -> None:
        if self._ledger is None:
            return
        cost = 0
        for r in held:
            # No usage reported: the estimate is the best (and a conservative) figure.
            est: Estimate = r.estimate
            used = (
                usage
                if usage and (usage.input_tokens or usage.output_tokens)
                else Usage(est.input_tokens, est.output_tokens)
            )
            cost = max(
                cost, await self._ledger.settle(r, model, used.input_tokens, used.output_tokens)
            )
        if held:
            trace.get_current_span().set_attribute("ragline.cost_usd", cost / 1_000_000)

    # ------------------------------------------------------------------ calls

    async def _with_retries(
        self, c: Candidate, call: Callable[[ChatRequest], Awaitable[T]], request: ChatRequest
    ) -> T:
        attempts = 1 if c.last_resort else c.spec.max_retries + 1
        async for attempt in retrying(attempts):
            with attempt:
                try:
                    return await call(request)
                except Exception as exc:
                    failure = classify(c.spec.name, exc)
                    PROVIDER_REQUESTS.labels(c.spec.name, failure.kind).inc()
                    raise failure from exc
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _admitted(
        self, pool_name: str, pool: InferencePoolSpec, request: ChatRequest, walk: _Walk
    ) -> AsyncGenerator[tuple[Candidate, CircuitBreaker, _Admission], None]:
        """The pool's providers in order, minus those the breaker or the budgets skip (each
        skip recorded in ``walk``); after a budget degrade, only the last resort."""
        for c in candidates(pool, self.factory):
            if walk.degraded and not c.last_resort:
                continue
            name = c.spec.name
            breaker = self.breaker(pool_name, pool, name)
            if not c.last_resort and not breaker.allow():
                PROVIDER_REQUESTS.labels(name, "circuit_open").inc()
                walk.skipped.append(Skipped(name, "circuit_open"))
                continue
            admission = await self._admit(pool_name, c, request)
            if admission.skip:
                breaker.release()
                PROVIDER_REQUESTS.labels(name, admission.skip).inc()
                walk.skipped.append(Skipped(name, admission.skip))
                walk.degraded = walk.degraded or admission.degrade
                continue
            yield c, breaker, admission

    async def complete(
        self, pool_name: str, pool: InferencePoolSpec, request: ChatRequest
    ) -> Routed:
        walk = _Walk()
        skipped = walk.skipped
        async with aclosing(self._admitted(pool_name, pool, request, walk)) as admitted:
            async for c, breaker, admission in admitted:
                name = c.spec.name
                degraded = walk.degraded
                with child_span(
                    "generate", {"ragline.provider": name, "ragline.model": c.provider.model}
                ) as span:
                    started = time.perf_counter()
                    try:
                        completion = await self._with_retries(c, c.provider.complete, request)
                    except ProviderFailure as failure:
                        await self._release(admission.reservations)
                        breaker.failure()
                        span.set_attribute("ragline.fallback_reason", failure.kind)
                        log.warning(
                            "provider_failed",
                            provider=name,
                            reason=failure.kind,
                            error=str(failure),
                        )
                        skipped.append(Skipped(name, failure.kind))
                        continue
                    breaker.success()
                    await self._settle(admission.reservations, c.provider.model, completion.usage)
                    PROVIDER_LATENCY.labels(name).observe(time.perf_counter() - started, exemplar())
                    PROVIDER_REQUESTS.labels(name, "success").inc()
                    _record_usage(name, completion.usage)
                    span.set_attributes(
                        {
                            "ragline.tokens.input": completion.usage.input_tokens,
                            "ragline.tokens.output": completion.usage.output_tokens,
                        }
                    )
                    if skipped:
                        span.set_attribute("ragline.fallback_reason", skipped[-1].reason)
                    return Routed(
                        completion,
                        name,
                        c.provider.model,
                        skipped,
                        degraded=degraded and c.last_resort,
                    )
        raise AssertionError("unreachable: the extractive provider does not fail")

    async def stream(
        self, pool_name: str, pool: InferencePoolSpec, request: ChatRequest
    ) -> AsyncIterator[StreamStart | str | Usage]:
        walk = _Walk()
        skipped = walk.skipped
        async with aclosing(self._admitted(pool_name, pool, request, walk)) as admitted:
            async for c, breaker, admission in admitted:
                name = c.spec.name
                degraded = walk.degraded
                started = time.perf_counter()
                # Not made current: an async generator resumes in other contexts, and a current
                # span must be detached in the context that attached it.
                span = leaf_span(
                    "generate",
                    {
                        "ragline.provider": name,
                        "ragline.model": c.provider.model,
                        "ragline.stream": True,
                    },
                )
                if skipped:
                    span.set_attribute("ragline.fallback_reason", skipped[-1].reason)
                usage: Usage | None = None
                streamed = False  # a token reached the client: no falling through any more
                finished = False  # reservations settled or released
                attempts_left = 1 if c.last_resort else c.spec.max_retries + 1
                try:
                    while True:
                        attempts_left -= 1
                        iterator = c.provider.stream(request)
                        try:
                            async for item in iterator:
                                if not streamed:
                                    streamed = True
                                    PROVIDER_LATENCY.labels(name).observe(
                                        time.perf_counter() - started
                                    )
                                    yield StreamStart(
                                        name, c.provider.model, skipped, degraded and c.last_resort
                                    )
                                if isinstance(item, Usage):
                                    usage = item
                                    _record_usage(name, item)
                                yield item
                        except Exception as exc:
                            failure = classify(name, exc)
                            PROVIDER_REQUESTS.labels(name, failure.kind).inc()
                            log.warning(
                                "provider_failed",
                                provider=name,
                                reason=failure.kind,
                                streamed=streamed,
                                error=str(failure),
                            )
                            span.set_attribute("ragline.error", failure.kind)
                            if streamed:
                                breaker.failure()
                                raise StreamInterrupted(failure) from exc
                            if retryable(failure) and attempts_left > 0:
                                await asyncio.sleep(
                                    min(failure.retry_after or 0.2, RETRY_WAIT_CAP_SECONDS)
                                )
                                continue
                            breaker.failure()
                            await self._release(admission.reservations)
                            finished = True
                            skipped.append(Skipped(name, failure.kind))
                            break
                        finally:
                            aclose = getattr(iterator, "aclose", None)
                            if aclose is not None:
                                await aclose()  # a client that went away cancels the upstream call
                        breaker.success()
                        PROVIDER_REQUESTS.labels(name, "success").inc()
                        if not streamed:  # an empty stream still answered
                            yield StreamStart(
                                name, c.provider.model, skipped, degraded and c.last_resort
                            )
                        return
                finally:
                    if not finished:
                        # Success, a failure after the first token, or the client went away: the
                        # provider may have generated tokens, so count usage (or the estimate).
                        if streamed:
                            await self._settle(admission.reservations, c.provider.model, usage)
                        else:
                            await self._release(admission.reservations)
                    if usage is not None:
                        span.set_attribute("ragline.tokens.input", usage.input_tokens)
                        span.set_attribute("ragline.tokens.output", usage.output_tokens)
                    span.end()
        raise AssertionError("unreachable: the extractive provider does not fail")


__all__ = ["ChatRouter", "ProviderFactory", "Routed", "Skipped", "StreamInterrupted", "StreamStart"]
