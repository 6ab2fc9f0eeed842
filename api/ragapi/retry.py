"""The retry policy for provider calls (tenacity): retryable failures only — timeouts,
connection errors, 429, 5xx, malformed responses; never 400/401/403 — with jittered
exponential backoff, a cap, and a server's ``Retry-After`` honoured (a longer one than the
cap falls through to the next provider instead of waiting)."""

from __future__ import annotations

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from ragapi.providers.base import ProviderFailure

RETRY_WAIT_CAP_SECONDS = 8.0


def backoff_seconds(state: RetryCallState) -> float:
    backoff = wait_random_exponential(multiplier=0.1, max=RETRY_WAIT_CAP_SECONDS)(state)
    exc = state.outcome.exception() if state.outcome else None
    retry_after = getattr(exc, "retry_after", None) or 0.0
    return float(max(backoff, retry_after))


def retryable(exc: BaseException) -> bool:
    return (
        isinstance(exc, ProviderFailure)
        and exc.retryable
        and (exc.retry_after or 0.0) <= RETRY_WAIT_CAP_SECONDS
    )


def retrying(attempts: int) -> AsyncRetrying:
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=backoff_seconds,
        retry=retry_if_exception(retryable),
        reraise=True,
    )
