"""The chat provider protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ragapi.retrieval import Hit


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ChatRequest:
    question: str
    hits: Sequence[Hit]
    messages: list[dict[str, str]] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    cited: Sequence[Hit] | None = None  # set by providers that know what they used


class ProviderFailure(Exception):
    """A provider call failed. ``retryable`` tells the router whether trying again may help;
    ``kind`` is a bounded label for metrics (timeout, connection, rate_limited, server_error,
    client_error, bad_response)."""

    def __init__(
        self,
        provider: str,
        kind: str,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {kind}: {message}")
        self.provider = provider
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after


class ChatProvider(Protocol):
    name: str
    model: str

    async def complete(self, request: ChatRequest) -> Completion: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[str | Usage]:
        """Yields text deltas, then (optionally) one Usage."""
        ...
