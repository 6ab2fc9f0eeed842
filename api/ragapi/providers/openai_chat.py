"""Chat through any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama, Groq, ...)
with the official SDK. The SDK's own retries are off: the router decides retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai

from ragapi.providers.base import ChatRequest, Completion, ProviderFailure, Usage
from ragapi.tracing import provider_http_client


def classify(provider: str, exc: BaseException) -> ProviderFailure:
    """Map an SDK exception to a failure with a bounded kind and retryability."""
    if isinstance(exc, ProviderFailure):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ProviderFailure(provider, "timeout", str(exc), retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderFailure(provider, "connection", str(exc), retryable=True)
    if isinstance(exc, openai.RateLimitError):
        retry_after = _retry_after(exc.response.headers.get("retry-after"))
        return ProviderFailure(
            provider, "rate_limited", str(exc), retryable=True, retry_after=retry_after
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ProviderFailure(provider, "server_error", str(exc), retryable=True)
        return ProviderFailure(provider, "client_error", str(exc), retryable=False)
    if isinstance(
        exc, (ValueError, KeyError, IndexError, TypeError, openai.APIResponseValidationError)
    ):
        return ProviderFailure(provider, "bad_response", str(exc), retryable=True)
    return ProviderFailure(provider, "error", repr(exc), retryable=False)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class OpenAIChatProvider:
    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout: float,
        http_client: Any | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "unused",  # local servers need none; the SDK insists on one
            timeout=timeout,
            max_retries=0,
            http_client=http_client or provider_http_client(),
        )

    async def complete(self, request: ChatRequest) -> Completion:
        try:
            resp = await self._client.chat.completions.create(
                model=self.model,
                messages=request.messages,  # type: ignore[arg-type]
                **self._options(request),
            )
            text = resp.choices[0].message.content
            if text is None:
                raise ValueError("response has no message content")
        except Exception as exc:
            raise classify(self.name, exc) from exc
        usage = resp.usage
        return Completion(
            text,
            Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[str | Usage]:
        try:
            stream = await self._client.chat.completions.create(  # type: ignore[call-overload]
                model=self.model,
                messages=request.messages,
                stream=True,
                stream_options={"include_usage": True},
                **self._options(request),
            )
            async with stream:
                async for chunk in stream:
                    if chunk.choices:
                        delta = chunk.choices[0].delta.content
                        if delta:
                            yield delta
                    if chunk.usage is not None:
                        yield Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        except Exception as exc:
            raise classify(self.name, exc) from exc

    def _options(self, request: ChatRequest) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if request.max_tokens is not None:
            opts["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            opts["temperature"] = request.temperature
        return opts

    async def aclose(self) -> None:
        await self._client.close()
