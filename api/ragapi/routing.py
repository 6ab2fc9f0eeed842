"""The routing file: a YAML stream of Ragline's custom resources, as a user applies them.

In a cluster the operator renders it into the ``ragline-routing`` ConfigMap, mounted at
``RAGLINE_ROUTING_FILE``; outside one, the very YAML from ``examples/`` works. The API
reloads it when it changes; a broken file keeps the last good routing and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml
from pydantic import ValidationError

from ragapi.contract import (
    API_VERSION,
    DEFAULT_POOL,
    InferencePoolSpec,
    ProviderBudgetSpec,
    ProviderType,
    Purpose,
    RagIndexSpec,
    is_valid_name,
)

log = structlog.get_logger(__name__)

# The offline default: when no pool named `default` is declared, answers are extractive.
BUILTIN_DEFAULT_POOL = InferencePoolSpec.model_validate(
    {"purpose": "chat", "providers": [{"name": "extractive", "type": "extractive"}]}
)


class RoutingError(ValueError):
    """The routing document is invalid; the message names the resource and the field."""


@dataclass(frozen=True)
class Routing:
    indexes: dict[str, RagIndexSpec] = field(default_factory=dict)
    pools: dict[str, InferencePoolSpec] = field(default_factory=dict)
    budgets: dict[str, ProviderBudgetSpec] = field(default_factory=dict)

    def chat_pool(self, index: RagIndexSpec) -> InferencePoolSpec:
        name = index.answer.pool_name
        pool = self.pools.get(name)
        if pool is None:
            if name == DEFAULT_POOL:
                return BUILTIN_DEFAULT_POOL
            raise RoutingError(f"chat pool {name!r} is not defined")
        return pool

    def embedding_pool(self, index: RagIndexSpec) -> InferencePoolSpec | None:
        ref = index.embedding.pool_ref
        return self.pools.get(ref.name) if ref else None


def parse_routing(text: str) -> Routing:
    """Parse and validate a YAML stream of resources; unknown kinds are an error."""
    indexes: dict[str, RagIndexSpec] = {}
    pools: dict[str, InferencePoolSpec] = {}
    budgets: dict[str, ProviderBudgetSpec] = {}
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise RoutingError(f"not valid YAML: {exc}") from exc
    for n, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise RoutingError(f"document {n}: expected a mapping")
        kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
        where = f"{kind}/{name}" if name else f"document {n}"
        if doc.get("apiVersion") != API_VERSION:
            raise RoutingError(f"{where}: apiVersion must be {API_VERSION}")
        if not isinstance(name, str) or not is_valid_name(name):
            raise RoutingError(f"{where}: metadata.name must be a DNS-1123 label")
        spec: Any = doc.get("spec") or {}
        try:
            if kind == "RagIndex":
                indexes[name] = RagIndexSpec.model_validate(spec)
            elif kind == "InferencePool":
                pools[name] = InferencePoolSpec.model_validate(spec)
            elif kind == "ProviderBudget":
                budgets[name] = ProviderBudgetSpec.model_validate(spec)
            else:
                raise RoutingError(f"{where}: unknown kind {kind!r}")
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise RoutingError(f"{where}: spec.{loc}: {first['msg']}") from exc
    routing = Routing(indexes=indexes, pools=pools, budgets=budgets)
    _check_references(routing)
    return routing


def _check_references(routing: Routing) -> None:
    for name, index in routing.indexes.items():
        chat = routing.chat_pool(index)
        if chat.purpose is not Purpose.CHAT:
            raise RoutingError(f"RagIndex/{name}: answer pool must have purpose chat")
        ref = index.embedding.pool_ref
        if ref is not None:
            pool = routing.pools.get(ref.name)
            if pool is None:
                raise RoutingError(f"RagIndex/{name}: embedding pool {ref.name!r} is not defined")
            if pool.purpose is not Purpose.EMBEDDING:
                raise RoutingError(f"RagIndex/{name}: embedding pool must have purpose embedding")
            if all(p.type is ProviderType.EXTRACTIVE for p in pool.providers):
                raise RoutingError(f"RagIndex/{name}: embedding pool has no embedding provider")


def load_routing(path: Path | None) -> Routing:
    if path is None:
        return Routing()
    return parse_routing(path.read_text())


class RoutingWatcher:
    """Polls the routing file and swaps in a new ``Routing`` when its content changes.

    Polling (not inotify) because a ConfigMap volume updates by swapping a symlink, which
    stat-polling of the resolved file sees on every platform.
    """

    def __init__(
        self,
        path: Path | None,
        on_change: Callable[[Routing], Awaitable[None]] | None = None,
        interval: float = 2.0,
    ) -> None:
        self.path = path
        self.interval = interval
        self.on_change = on_change
        self.current = Routing()
        self.loaded = path is None
        self.last_error: str | None = None
        self._signature: tuple[int, int, str] | None = None
        self._task: asyncio.Task[None] | None = None

    def _stat(self) -> tuple[int, int, str] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
            return (st.st_mtime_ns, st.st_size, str(self.path.resolve()))
        except OSError:
            return None

    async def refresh(self) -> bool:
        """Reload if the file changed; True when a new routing was swapped in."""
        if self.path is None:
            return False
        signature = self._stat()
        if signature is None:
            if not self.loaded:
                self.last_error = f"{self.path} does not exist (yet)"
            return False
        if signature == self._signature:
            return False
        try:
            text = await asyncio.to_thread(self.path.read_text)
            routing = parse_routing(text)
        except (OSError, RoutingError) as exc:
            self.last_error = str(exc)
            self._signature = signature
            log.error("routing_invalid", path=str(self.path), error=str(exc))
            return False
        self._signature = signature
        self.current, self.loaded, self.last_error = routing, True, None
        log.info(
            "routing_loaded",
            path=str(self.path),
            indexes=len(routing.indexes),
            pools=len(routing.pools),
            budgets=len(routing.budgets),
        )
        if self.on_change is not None:
            await self.on_change(routing)
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:  # a watcher must outlive one bad reload
                log.exception("routing_reload_failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="routing-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
