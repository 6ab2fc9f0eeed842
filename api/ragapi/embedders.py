"""Which embedder serves an index: its embedding pool's provider, or the built-in model."""

from __future__ import annotations

from collections.abc import Callable

from ragapi.contract import InferencePoolSpec, ProviderType, RagIndexSpec
from ragapi.embedding.base import Embedder
from ragapi.embedding.openai_embedder import OpenAIEmbedder
from ragapi.embedding.routed import RoutedEmbedder
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
        self._by_key: dict[str, RoutedEmbedder] = {}

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
        if pool is not None and spec.embedding.pool_ref is not None:
            embedder = self._from_pool(spec.embedding.pool_ref.name, pool, dims)
        else:
            embedder = self.default()
        if embedder.dimensions != spec.embedding.dimensions:
            raise ValidationFailed(
                f"embedder {embedder.model!r} gives {embedder.dimensions}-dimensional vectors "
                f"but the index declares embedding.dimensions {dims}"
            )
        return embedder

    def _from_pool(self, name: str, pool: InferencePoolSpec, dimensions: int) -> Embedder:
        """The pool's embedding providers behind one router. A remote model's dimension is
        whatever the index declares; each response is checked against it."""
        ordered = [p for p in pool.ordered() if p.type is not ProviderType.EXTRACTIVE]
        if ordered and ordered[0].type is ProviderType.LOCAL:
            return self.default()
        key = f"{name}/{pool.model_dump_json()}/{dimensions}"
        found = self._by_key.get(key)
        if found is None:
            remote = [
                (
                    OpenAIEmbedder(
                        p.name,
                        base_url=p.base_url or "",
                        model=p.model or "",
                        dimensions=dimensions,
                        api_key=read_secret(p.api_key_secret_ref),
                        timeout=p.timeout_seconds,
                    ),
                    p.max_retries,
                )
                for p in ordered
                if p.type is ProviderType.OPENAI
            ]
            if not remote:
                raise ValidationFailed(f"embedding pool {name!r} has no embedding provider")
            found = RoutedEmbedder(name, remote, pool.circuit_breaker)
            self._by_key[key] = found
        return found

    async def aclose(self) -> None:
        for e in self._by_key.values():
            await e.aclose()
