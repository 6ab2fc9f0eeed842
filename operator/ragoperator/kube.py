"""Thin async I/O around the Kubernetes API: server-side apply with one field manager,
reads, and Events. The official client is synchronous, so every call runs in a worker
thread and the event loop never blocks on the network."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

FIELD_MANAGER = "ragline-operator"


def load_config() -> None:
    """In-cluster service account first, then KUBECONFIG (local runs and tests)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


class Kube:
    def __init__(self) -> None:
        self._dynamic: DynamicClient | None = None

    def _client(self) -> DynamicClient:
        if self._dynamic is None:
            self._dynamic = DynamicClient(client.ApiClient())
        return self._dynamic

    def _resource(self, api_version: str, kind: str) -> Any:
        return self._client().resources.get(api_version=api_version, kind=kind)

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: idempotent; an unchanged manifest leaves resourceVersion alone."""

        def run() -> dict[str, Any]:
            res = self._resource(manifest["apiVersion"], manifest["kind"])
            out = self._client().server_side_apply(
                res, body=manifest, field_manager=FIELD_MANAGER, force_conflicts=True
            )
            result: dict[str, Any] = out.to_dict()
            return result

        return await asyncio.to_thread(run)

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None
    ) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            try:
                out = self._resource(api_version, kind).get(name=name, namespace=namespace)
            except NotFoundError:
                return None
            result: dict[str, Any] = out.to_dict()
            return result

        return await asyncio.to_thread(run)

    async def list(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            out = self._resource(api_version, kind).get(namespace=namespace)
            return [item.to_dict() for item in out.items]

        return await asyncio.to_thread(run)

    async def delete(self, api_version: str, kind: str, name: str, namespace: str) -> bool:
        def run() -> bool:
            try:
                self._resource(api_version, kind).delete(
                    name=name, namespace=namespace, body={"propagationPolicy": "Background"}
                )
            except NotFoundError:
                return False
            return True

        return await asyncio.to_thread(run)

    async def read_secret(self, namespace: str, name: str, key: str) -> str | None:
        """A Secret's value, or None when the Secret or key is missing."""
        import base64

        secret = await self.get("v1", "Secret", name, namespace)
        if secret is None:
            return None
        data = (secret.get("data") or {}).get(key)
        return base64.b64decode(data).decode() if data else None
