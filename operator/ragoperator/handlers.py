"""kopf handlers for RagIndex, InferencePool and ProviderBudget.

Handlers are thin: they validate the spec with the contract models, call the pure
builders, apply the result with server-side apply, and write status through ``patch``.
What will heal (an unreachable database, a missing Secret) raises ``TemporaryError``
with a condition saying why; a spec that never will raises ``PermanentError``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
import kopf
from pydantic import ValidationError

from ragapi.budget_keys import Spend, counters_key, period_bounds
from ragapi.contract import (
    GROUP,
    VERSION,
    InferencePoolSpec,
    ProviderBudgetSpec,
    RagIndexSpec,
)
from ragapi.store.indexes import drop_index, ensure_index, get_index, hnsw_index_name
from ragapi.store.migrations import migrate
from ragoperator import conditions as cond
from ragoperator.budgets import budget_status
from ragoperator.builders import (
    ROUTING_CONFIGMAP,
    Owner,
    SecretRef,
    index_build_job,
    index_build_job_name,
    pool_children,
    pool_workload_name,
    routing_configmap,
)
from ragoperator.kube import Kube, load_config
from ragoperator.metrics import (
    BUDGET_LIMIT_USD,
    BUDGET_SPENT_USD,
    BUDGET_USED_RATIO,
    INDEX_BUILD_FAILED,
    INDEX_BUILD_SECONDS,
    reconciling,
)
from ragoperator.settings import get_settings

KIND_PLURALS = {
    "RagIndex": "ragindexes",
    "InferencePool": "inferencepools",
    "ProviderBudget": "providerbudgets",
}
API = f"{GROUP}/{VERSION}"
DB_TIMEOUT = 10.0


def _kube(memo: kopf.Memo) -> Kube:
    kube: Kube = memo["kube"]
    return kube


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    from prometheus_client import start_http_server

    ours = get_settings()
    # kopf's own bookkeeping goes to annotations: our structural status schema would prune
    # an unknown `status.kopf` field.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Logger messages become Events only from WARNING up; our transitions post explicitly
    # with kopf.event, which this level does not filter.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    load_config()
    memo["kube"] = Kube()
    start_http_server(ours.metrics_port, addr=ours.metrics_address)


# ---------------------------------------------------------------- routing ConfigMap


async def render_routing(kube: Kube, namespace: str) -> None:
    """Re-render the namespace's routing ConfigMap from every Ragline resource in it."""
    resources: list[dict[str, Any]] = []
    for kind in KIND_PLURALS:
        resources.extend(await kube.list(API, kind, namespace))
    await kube.apply(routing_configmap(namespace, resources))


@kopf.on.event(GROUP, VERSION, "ragindexes")
@kopf.on.event(GROUP, VERSION, "inferencepools")
@kopf.on.event(GROUP, VERSION, "providerbudgets")
async def on_removed(
    event: kopf.RawEvent, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    # Deletions need no finalizer to leave the routing file; any other change re-renders in
    # its own kind's reconcile.
    if event["type"] == "DELETED" and namespace:
        await render_routing(_kube(memo), namespace)


# ---------------------------------------------------------------- RagIndex


def _validate(model: type[Any], spec: kopf.Spec, patch: kopf.Patch, generation: int | None) -> Any:
    try:
        return model.model_validate(dict(spec))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"spec.{where}: {first['msg']}"
        patch.status["conditions"] = [
            cond.condition(cond.READY, cond.FALSE, "InvalidSpec", message, generation)
        ]
        patch.status["phase"] = "Failed"
        raise kopf.PermanentError(message) from exc


async def _database(kube: Kube, spec: RagIndexSpec, namespace: str) -> tuple[str, SecretRef]:
    """The DSN for this index and the Secret that Jobs read it from."""
    settings = get_settings()
    ref = spec.database.secret_ref
    if ref is not None:
        dsn = await kube.read_secret(namespace, ref.name, ref.key)
        if dsn is None:
            raise _NotReady(
                "SecretMissing",
                f"Secret {ref.name!r} has no key {ref.key!r} in namespace {namespace!r}",
                delay=10,  # a Secret often lands seconds after the resource that names it
            )
        return dsn, SecretRef(ref.name, ref.key)
    if settings.database_url is None or settings.database_secret_name is None:
        raise _NotReady(
            "DatabaseUnconfigured",
            "set spec.database.secretRef, or give the operator RAGLINE_DATABASE_URL and "
            "RAGLINE_DATABASE_SECRET_NAME",
            delay=60,
        )
    return (
        settings.database_url.get_secret_value(),
        SecretRef(settings.database_secret_name, settings.database_secret_key),
    )


class _NotReady(Exception):
    def __init__(self, reason: str, message: str, delay: float) -> None:
        super().__init__(message)
        self.reason, self.message, self.delay = reason, message, delay


async def _connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=DB_TIMEOUT)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise _NotReady(
            "DatabaseUnreachable", f"cannot connect to Postgres: {type(exc).__name__}", delay=15
        ) from exc


async def _counts(conn: asyncpg.Connection, name: str, table: str) -> tuple[int, int]:
    docs = await conn.fetchval(
        "SELECT count(*) FROM documents WHERE index_name = $1 AND deleted_at IS NULL", name
    )
    chunks = await conn.fetchval(f'SELECT count(*) FROM "{table}" WHERE active')
    return int(docs), int(chunks)


def _ready_status(record: Any, docs: int, chunks: int) -> dict[str, Any]:
    built = record.hnsw_built_at
    return {
        "phase": "Ready",
        "documents": docs,
        "chunks": chunks,
        "index": {
            "name": record.hnsw_index,
            "params": record.hnsw_params,
            "builtAt": built.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if built else None,
            "buildSeconds": round(record.hnsw_build_seconds or 0.0, 3),
        },
    }


def _mark_ready(
    patch: kopf.Patch,
    status: kopf.Status,
    record: Any,
    docs: int,
    chunks: int,
    generation: int | None,
    *extra: dict[str, Any],
) -> None:
    patch.status.update(_ready_status(record, docs, chunks))
    patch.status["conditions"] = _conditions(
        status,
        *extra,
        cond.condition(
            cond.INDEX_BUILT, cond.TRUE, "Built", f"HNSW index {record.hnsw_index}", generation
        ),
        cond.condition(cond.READY, cond.TRUE, "Ready", "index is searchable", generation),
    )


def _conditions(status: kopf.Status, *new: dict[str, Any]) -> list[dict[str, Any]]:
    current = [dict(c) for c in (status.get("conditions") or [])]
    for c in new:
        current = cond.set_condition(current, c)
    return current


@kopf.on.resume(GROUP, VERSION, "ragindexes")
@kopf.on.create(GROUP, VERSION, "ragindexes")
@kopf.on.update(GROUP, VERSION, "ragindexes", field="spec")
async def reconcile_ragindex(
    spec: kopf.Spec,
    name: str,
    namespace: str,
    uid: str,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    generation = meta.get("generation")
    kube = _kube(memo)
    with reconciling("RagIndex"):
        parsed: RagIndexSpec = _validate(RagIndexSpec, spec, patch, generation)
        await render_routing(kube, namespace)
        try:
            dsn, secret = await _database(kube, parsed, namespace)
            conn = await _connect(dsn)
        except _NotReady as nr:
            _not_ready(patch, status, generation, nr)
            raise kopf.TemporaryError(nr.message, delay=nr.delay) from nr
        try:
            await migrate(conn)
            record = await ensure_index(conn, name, parsed)
            target = hnsw_index_name(name, parsed)
            docs, chunks = await _counts(conn, name, record.table)
        finally:
            await conn.close()
        reachable = cond.condition(
            cond.DATABASE_REACHABLE,
            cond.TRUE,
            "Connected",
            "tables and full-text index ensured",
            generation,
        )
        if record.hnsw_index == target:
            _mark_ready(patch, status, record, docs, chunks, generation, reachable)
        else:
            settings = get_settings()
            job = index_build_job(
                name,
                namespace,
                parsed,
                owner=Owner("RagIndex", name, uid),
                image=settings.image,
                database=secret,
                service_account=settings.build_service_account,
            )
            await kube.apply(job)
            if status.get("phase") != "Building":
                job_name = job["metadata"]["name"]
                kopf.event(
                    body,
                    type="Normal",
                    reason="IndexBuildStarted",
                    message=f"Job {job_name} builds HNSW index {target}",
                )
            # Queries keep using the previous HNSW index (if any) until the new one swaps in.
            searchable = record.hnsw_index is not None
            patch.status.update({"phase": "Building", "documents": docs, "chunks": chunks})
            patch.status["conditions"] = _conditions(
                status,
                reachable,
                cond.condition(
                    cond.INDEX_BUILT,
                    cond.FALSE,
                    "Building",
                    f"Job {job['metadata']['name']} is building {target}",
                    generation,
                ),
                cond.condition(
                    cond.READY,
                    cond.TRUE if searchable else cond.FALSE,
                    "Rebuilding" if searchable else "Building",
                    "searchable on the previous index while the new one builds"
                    if searchable
                    else "waiting for the first HNSW build",
                    generation,
                ),
            )
        patch.status["observedGeneration"] = generation


def _not_ready(
    patch: kopf.Patch, status: kopf.Status, generation: int | None, nr: _NotReady
) -> None:
    patch.status["phase"] = status.get("phase") or "Pending"
    patch.status["conditions"] = _conditions(
        status,
        cond.condition(cond.DATABASE_REACHABLE, cond.FALSE, nr.reason, nr.message, generation),
        cond.condition(cond.READY, cond.FALSE, nr.reason, nr.message, generation),
    )


def _job_state(job: dict[str, Any] | None) -> str:
    if job is None:
        return "missing"
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if c.get("status") == "True" and c.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    return "running"


@kopf.timer(
    GROUP,
    VERSION,
    "ragindexes",
    interval=get_settings().job_poll_seconds,
    initial_delay=1.0,
    idle=0,
)
async def follow_ragindex(
    spec: kopf.Spec,
    name: str,
    namespace: str,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Follows the build Job to completion and keeps counts fresh (drift is caught here,
    not by hoping for events)."""
    phase = status.get("phase")
    if phase not in ("Building", "Ready") or status.get("observedGeneration") != meta.get(
        "generation"
    ):
        return
    kube = _kube(memo)
    try:
        parsed = RagIndexSpec.model_validate(dict(spec))
        dsn, _secret = await _database(kube, parsed, namespace)
        conn = await _connect(dsn)
    except (_NotReady, ValidationError):
        return  # the reconcile handler reports these
    generation = meta.get("generation")
    try:
        record = await get_index(conn, name)
        docs, chunks = await _counts(conn, name, record.table)
    finally:
        await conn.close()
    target = hnsw_index_name(name, parsed)
    if phase == "Ready":
        if (status.get("documents"), status.get("chunks")) != (docs, chunks):
            patch.status.update({"documents": docs, "chunks": chunks})
        return
    job = await kube.get("batch/v1", "Job", index_build_job_name(name, parsed), namespace)
    state = _job_state(job)
    if state == "succeeded" and record.hnsw_index == target:
        _mark_ready(patch, status, record, docs, chunks, generation)
        INDEX_BUILD_SECONDS.labels(name).observe(record.hnsw_build_seconds or 0.0)
        INDEX_BUILD_FAILED.labels(name).set(0)
        seconds = record.hnsw_build_seconds or 0.0
        kopf.event(
            body,
            type="Normal",
            reason="IndexBuilt",
            message=f"HNSW index {target} built in {seconds:.1f}s",
        )
    elif state == "failed" or (state == "succeeded" and record.hnsw_index != target):
        message = f"index-build Job for {target} failed; see its pod logs"
        patch.status["phase"] = "Failed"
        patch.status["conditions"] = _conditions(
            status,
            cond.condition(cond.INDEX_BUILT, cond.FALSE, "BuildFailed", message, generation),
        )
        INDEX_BUILD_FAILED.labels(name).set(1)
        kopf.event(body, type="Warning", reason="IndexBuildFailed", message=message)
    elif state == "missing":
        # The Job was deleted (or expired) before finishing: reconcile creates it again.
        raise kopf.TemporaryError("build Job missing; re-reconciling", delay=1)


@kopf.on.delete(
    GROUP, VERSION, "ragindexes", when=lambda spec, **_: spec.get("deletionPolicy") == "Delete"
)
async def delete_ragindex_data(
    spec: kopf.Spec, name: str, namespace: str, memo: kopf.Memo, **_: Any
) -> None:
    """deletionPolicy Delete: drop the index's table and rows. Idempotent: a second run,
    or one after a crash half-way, finds nothing and succeeds."""
    kube = _kube(memo)
    try:
        parsed = RagIndexSpec.model_validate(dict(spec))
        dsn, _secret = await _database(kube, parsed, namespace)
        conn = await _connect(dsn)
    except _NotReady as nr:
        raise kopf.TemporaryError(nr.message, delay=nr.delay) from nr
    try:
        await drop_index(conn, name)
    finally:
        await conn.close()


# ---------------------------------------------------------------- InferencePool


@kopf.on.resume(GROUP, VERSION, "inferencepools")
@kopf.on.create(GROUP, VERSION, "inferencepools")
@kopf.on.update(GROUP, VERSION, "inferencepools", field="spec")
async def reconcile_inferencepool(
    spec: kopf.Spec,
    name: str,
    namespace: str,
    uid: str,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    generation = meta.get("generation")
    kube = _kube(memo)
    with reconciling("InferencePool"):
        parsed: InferencePoolSpec = _validate(InferencePoolSpec, spec, patch, generation)
        await render_routing(kube, namespace)
        children = pool_children(name, namespace, parsed, owner=Owner("InferencePool", name, uid))
        for child in children:
            await kube.apply(child)
        wanted = {c["kind"] for c in children}
        workload = pool_workload_name(name)
        for api_version, kind in (
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("policy/v1", "PodDisruptionBudget"),
            ("v1", "Service"),
            ("apps/v1", "Deployment"),
        ):
            if kind not in wanted:
                await kube.delete(api_version, kind, workload, namespace)
        if parsed.deployment is None:
            ready = cond.condition(
                cond.READY, cond.TRUE, "Routed", "pool rendered into routing", generation
            )
        else:
            ready = cond.condition(
                cond.READY, cond.UNKNOWN, "Deploying", f"Deployment {workload} applied", generation
            )
        patch.status["conditions"] = _conditions(status, ready)
        patch.status["phase"] = "Ready" if parsed.deployment is None else "Deploying"
        patch.status["observedGeneration"] = generation


@kopf.timer(
    GROUP,
    VERSION,
    "inferencepools",
    interval=get_settings().status_refresh_seconds,
    initial_delay=2.0,
    idle=0,
)
async def refresh_inferencepool(
    spec: kopf.Spec,
    name: str,
    namespace: str,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    if not spec.get("deployment"):
        return
    dep = await _kube(memo).get("apps/v1", "Deployment", pool_workload_name(name), namespace)
    ready = int(((dep or {}).get("status") or {}).get("readyReplicas") or 0)
    generation = meta.get("generation")
    available = cond.condition(
        cond.READY,
        cond.TRUE if ready > 0 else cond.FALSE,
        "Available" if ready > 0 else "NoReadyReplicas",
        f"{ready} ready replicas",
        generation,
    )
    conditions = _conditions(status, available)
    if status.get("readyReplicas") != ready or status.get("conditions") != conditions:
        patch.status["readyReplicas"] = ready
        patch.status["conditions"] = conditions
        patch.status["phase"] = "Ready" if ready > 0 else "Deploying"


# ---------------------------------------------------------------- ProviderBudget


@kopf.on.resume(GROUP, VERSION, "providerbudgets")
@kopf.on.create(GROUP, VERSION, "providerbudgets")
@kopf.on.update(GROUP, VERSION, "providerbudgets", field="spec")
async def reconcile_providerbudget(
    spec: kopf.Spec,
    namespace: str,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    generation = meta.get("generation")
    with reconciling("ProviderBudget"):
        _validate(ProviderBudgetSpec, spec, patch, generation)
        await render_routing(_kube(memo), namespace)
        if not status.get("state"):
            patch.status["state"] = "Ok"
        patch.status["observedGeneration"] = generation


@kopf.timer(
    GROUP,
    VERSION,
    "providerbudgets",
    interval=get_settings().status_refresh_seconds,
    initial_delay=1.0,
    idle=0,
)
async def refresh_providerbudget(
    spec: kopf.Spec,
    name: str,
    namespace: str,
    status: kopf.Status,
    patch: kopf.Patch,
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Status from the Redis counters the API pods write; an Event per crossed threshold."""
    settings = get_settings()
    if settings.redis_url is None:
        return
    parsed = ProviderBudgetSpec.model_validate(dict(spec))
    now = datetime.now(UTC)
    end = period_bounds(parsed.period, now)[1]
    key = counters_key(namespace, name, parsed.period, now)
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=5, decode_responses=True
    )
    try:
        fields: dict[str, str] = await client.hgetall(key)  # type: ignore[assignment]
    except Exception as exc:
        raise kopf.TemporaryError(f"Redis unreachable: {type(exc).__name__}", delay=30) from exc
    finally:
        await client.aclose()
    period_end = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    result = budget_status(parsed, Spend.from_hash(fields), period_end)
    budget_label = f"{namespace}/{name}"
    BUDGET_SPENT_USD.labels(budget_label).set(float(result.status["spent"]["usd"]))
    BUDGET_USED_RATIO.labels(budget_label).set(result.percent / 100)
    if parsed.limit.usd is not None:
        BUDGET_LIMIT_USD.labels(budget_label).set(float(parsed.limit.usd))
    last = status.get("lastAlertThreshold") if status.get("periodEnd") == period_end else None
    if result.crossed is not None and (last is None or result.crossed > last):
        kopf.event(
            body,
            type="Warning",
            reason="BudgetThresholdCrossed",
            message=f"{result.percent}% of the {parsed.period.value} budget used "
            f"(threshold {result.crossed}%)",
        )
    new_status = {**result.status, "lastAlertThreshold": result.crossed}
    if any(status.get(k) != v for k, v in new_status.items()):
        patch.status.update(json.loads(json.dumps(new_status)))


__all__ = [
    "ROUTING_CONFIGMAP",
    "reconcile_inferencepool",
    "reconcile_providerbudget",
    "reconcile_ragindex",
]
