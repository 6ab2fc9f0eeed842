"""Which embedder serves an index: its embedding pool's provider, or the built-in model."""

from __future__ import annotations

from collections.abc import Callable

from ragapi.contract import InferencePoolSpec, ProviderType, RagIndexSpec
from ragapi.embedding.base import Embedder
from ragapi.embedding.openai_embedder import OpenAIEmbedder
from ragapi.errors import ValidationFailed
from ragapi.secrets import read_secret
from ragapi.settings import EmbedderKind, Settings


class EmbedderRegistry:
    """Builds embedders lazily and keeps one per distinct configuration.

    ``default_factory`` makes the embedder for indexes without an embedding pool; tests
    inject a deterministic one there, production leaves it to the settings.
    """

    def __init__(
        self, settings: Settings, default_factory: Callable[[], Embedder] | None = None
    ) -> None:
        self._settings = settings
        self._default_factory = default_factory
        self._default: Embedder | None = None
        self._by_key: dict[str, Embedder] = {}

    def default(self) -> Embedder:
        if self._default is None:
            if self._default_factory is not None:
                self._default = self._default_factory()
            elif self._settings.embedder is EmbedderKind.OPENAI:
                s = self._settings
                if not s.openai_embedding_base_url or not s.openai_embedding_dimensions:
                    raise ValidationFailed(
                        "RAGLINE_EMBEDDER=openai needs RAGLINE_OPENAI_EMBEDDING_BASE_URL and "
                        "RAGLINE_OPENAI_EMBEDDING_DIMENSIONS"
                    )
                self._default = OpenAIEmbedder(
                    "default",
                    base_url=s.openai_embedding_base_url,
                    model=s.openai_embedding_model,
                    dimensions=s.openai_embedding_dimensions,
                    api_key=s.openai_api_key.get_secret_value() if s.openai_api_key else None,
                )
            else:
                from ragapi.embedding.local import LocalEmbedder

                self._default = LocalEmbedder(intra_op_num_threads=self._settings.embedder_threads)
        return self._default

    def for_index(self, spec: RagIndexSpec, pool: InferencePoolSpec | None) -> Embedder:
        dims = spec.embedding.dimensions
        embedder = self._from_pool(pool, dims) if pool is not None else self.default()
        if embedder.dimensions != spec.embedding.dimensions:
            raise ValidationFailed(
                f"embedder {embedder.model!r} gives {embedder.dimensions}-dimensional vectors "
                f"but the index declares embedding.dimensions {dims}"
            )
        return embedder

    def _from_pool(self, pool: InferencePoolSpec, dimensions: int) -> Embedder:
        """The pool's first embedding provider. A remote model's dimension is whatever the
        index declares; each response is checked against it."""
        for provider in pool.ordered():
            if provider.type is ProviderType.LOCAL:
                return self.default()
            if provider.type is ProviderType.OPENAI:
                key = f"{provider.model_dump_json()}/{dimensions}"
                found = self._by_key.get(key)
                if found is None:
                    assert provider.base_url and provider.model  # enforced by the contract
                    found = OpenAIEmbedder(
                        provider.name,
                        base_url=provider.base_url,
                        model=provider.model,
                        dimensions=dimensions,
                        api_key=read_secret(provider.api_key_secret_ref),
                        timeout=provider.timeout_seconds,
                    )
                    self._by_key[key] = found
                return found
        raise ValidationFailed("embedding pool has no embedding provider")

    async def aclose(self) -> None:
        for e in self._by_key.values():
            if isinstance(e, OpenAIEmbedder):
                await e.aclose()
