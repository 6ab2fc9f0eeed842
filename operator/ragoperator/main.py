"""Running the operator: kopf in standalone mode (one replica, no peering)."""

from __future__ import annotations

import asyncio

import kopf


def run(namespaces: list[str], *, clusterwide: bool, liveness: str) -> None:
    import ragoperator.handlers  # noqa: F401 - registers the handlers

    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=clusterwide,
            namespaces=namespaces,
            liveness_endpoint=liveness,
        )
    )
