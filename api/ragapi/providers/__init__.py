"""Chat providers: one protocol, implementations for OpenAI-compatible servers and the
model-free extractive answerer."""

from ragapi.providers.base import ChatProvider, ChatRequest, Completion, ProviderFailure, Usage

__all__ = ["ChatProvider", "ChatRequest", "Completion", "ProviderFailure", "Usage"]
