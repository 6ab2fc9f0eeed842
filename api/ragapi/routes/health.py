"""Liveness, readiness and metrics: the only endpoints without auth."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from ragapi.deps import StateDep
from ragapi.metrics import DEPENDENCY_UP

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 2.0


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Postgres, Redis and the routing file are usable")
async def readyz(state: StateDep) -> JSONResponse:
    async def postgres() -> None:
        await state.pool.fetchval("SELECT 1")

    async def redis() -> None:
        await state.redis.ping()

    checks: dict[str, str] = {}
    for name, probe in (("postgres", postgres), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT)
            checks[name] = "ok"
            DEPENDENCY_UP.labels(name).set(1)
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
            DEPENDENCY_UP.labels(name).set(0)
    checks["routing"] = "ok" if state.routing.loaded else f"error: {state.routing.last_error}"
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
