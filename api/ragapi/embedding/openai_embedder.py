"""Embeddings through any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, TEI, vLLM,
Ollama) with the official SDK."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import openai

from ragapi.providers.openai_chat import classify
from ragapi.tracing import provider_http_client


class OpenAIEmbedder:
    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        model: str,
        dimensions: int,
        api_key: str | None,
        timeout: float = 30.0,
        batch_size: int = 128,
        send_dimensions: bool = False,
        http_client: Any | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        # Only models with Matryoshka embeddings accept `dimensions`; most servers reject it.
        self._send_dimensions = send_dimensions
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "unused",
            timeout=timeout,
            max_retries=0,  # the embedding router retries
            http_client=http_client or provider_http_client(),
        )

    async def _call(self, batch: Sequence[str]) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self._send_dimensions else {}
        try:
            resp = await self._client.embeddings.create(
                model=self.model, input=list(batch), encoding_format="float", **extra
            )
        except Exception as exc:
            raise classify(self.name, exc) from exc
        data = sorted(resp.data, key=lambda d: d.index)
        vectors = [list(d.embedding) for d in data]
        if len(vectors) != len(batch) or any(len(v) != self.dimensions for v in vectors):
            raise classify(
                self.name,
                ValueError(
                    f"expected {len(batch)} vectors of {self.dimensions} dimensions from "
                    f"model {self.model!r}"
                ),
            )
        return vectors

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            out.extend(await self._call(texts[start : start + self.batch_size]))
        return out

    async def embed_query(self, text: str) -> list[float]:
        return (await self._call([text]))[0]

    async def aclose(self) -> None:
        await self._client.close()
