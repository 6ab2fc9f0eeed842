"""Liveness, readiness and metrics: the only endpoints without auth."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from ragapi.deps import StateDep
from ragapi.metrics import DEPENDENCY_UP
from ragapi.state import AppState

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 2.0


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def check_dependencies(state: AppState) -> dict[str, str]:
    """Probe Postgres, Redis and the routing; also sets ``ragline_dependency_up``."""

    async def postgres() -> None:
        await state.pool.fetchval("SELECT 1")

    async def redis() -> None:
        await state.redis.ping()

    checks: dict[str, str] = {}
    for name, probe in (("postgres", postgres), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    checks["routing"] = "ok" if state.routing.loaded else f"error: {state.routing.last_error}"
    for name, result in checks.items():
        DEPENDENCY_UP.labels(name).set(1 if result == "ok" else 0)
    return checks


async def watch_dependencies(state: AppState, stop: asyncio.Event, every: float = 10.0) -> None:
    """Keeps the dependency gauges current between scrapes of /readyz."""
    while not stop.is_set():
        await check_dependencies(state)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


@router.get("/readyz", summary="Postgres, Redis and the routing file are usable")
async def readyz(state: StateDep) -> JSONResponse:
    checks = await check_dependencies(state)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    # OpenMetrics when the scraper asks for it: that format carries exemplars.
    if "application/openmetrics-text" in request.headers.get("accept", ""):
        body = generate_openmetrics(REGISTRY)  # type: ignore[no-untyped-call]
        return Response(body, media_type=OPENMETRICS)
    text = generate_latest(REGISTRY)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
