"""The ``ragline`` command: serve, demo, keys, index, ingest, query, operator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer

from ragapi.auth import Role
from ragapi.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Ragline: RAG on Kubernetes.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys (shown once, stored hashed).")
index_app = typer.Typer(no_args_is_help=True, help="Index maintenance.")
app.add_typer(keys_app, name="keys")
app.add_typer(index_app, name="index")


def _settings() -> Settings:
    from ragapi.logs import configure_logging
    from ragapi.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _dsn() -> str:
    settings = _settings()
    if settings.database_url is None:
        typer.echo("RAGLINE_DATABASE_URL is not set", err=True)
        raise typer.Exit(2)
    return settings.admin_dsn()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API from RAGLINE_DATABASE_URL, RAGLINE_REDIS_URL and RAGLINE_ROUTING_FILE."""
    import uvicorn

    settings = _settings()
    problems = settings.problems()
    if problems:
        for p in problems:
            typer.echo(f"error: {p}", err=True)
        raise typer.Exit(2)
    uvicorn.run(
        "ragapi.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=20,
    )


@app.command()
def worker(
    # Two, as in the API: one job's writes overlap the next one's embedding.
    concurrency: Annotated[int, typer.Option(help="Jobs processed at once.")] = 2,
) -> None:
    """Process ingestion jobs only (no HTTP): for scaling ingestion apart from queries."""
    import signal

    from ragapi.app import open_state
    from ragapi.worker import IngestWorker

    settings = _settings()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with open_state(settings) as state:
            await asyncio.gather(
                *(IngestWorker(state, f"worker-{n}").run(stop) for n in range(concurrency))
            )

    asyncio.run(run())


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key belongs to.")] = "default",
    role: Annotated[Role, typer.Option(help="admin or reader.")] = Role.READER,
    index: Annotated[list[str] | None, typer.Option(help="Limit to these indexes.")] = None,
    name: Annotated[str, typer.Option(help="A label for humans.")] = "",
) -> None:
    """Create a key; the key itself is the last line of the output."""
    from ragapi.audit import record_command
    from ragapi.auth import create_key

    async def run() -> None:
        import asyncpg

        from ragapi.store.migrations import migrate

        conn = await asyncpg.connect(_dsn())
        try:
            await migrate(conn)
            async with conn.transaction():  # the key exists only if its creation is audited
                new = await create_key(conn, tenant=tenant, role=role, indexes=index, name=name)
                await record_command(
                    conn,
                    tenant,
                    action="key.create",
                    target=f"key:{new.id}",
                    detail={"role": role.value, "indexes": sorted(index or []), "name": name},
                )
        finally:
            await conn.close()
        typer.echo(f"created key {new.id} (tenant {tenant}, role {role.value}); it is shown once:")
        typer.echo(new.key)

    asyncio.run(run())


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves)."""
    from ragapi.auth import list_keys

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(_dsn())
        try:
            for r in await list_keys(conn):
                state = "revoked" if r["revoked_at"] else "active"
                typer.echo(
                    f"{r['id']}  rl_{r['prefix']}_…  {r['tenant']:<16} {r['role']:<7} {state:<8}"
                    f" {','.join(r['indexes']) or '*'}  {r['name']}"
                )
        finally:
            await conn.close()

    asyncio.run(run())


@keys_app.command("revoke")
def keys_revoke(key_id: uuid.UUID) -> None:
    """Revoke a key by id (takes effect on every pod within seconds)."""
    from ragapi.audit import record_command
    from ragapi.auth import revoke_key

    async def run() -> bool:
        import asyncpg

        conn = await asyncpg.connect(_dsn())
        try:
            async with conn.transaction():  # revoked only if the revocation is audited
                tenant = await revoke_key(conn, key_id)
                if tenant is not None:
                    await record_command(conn, tenant, action="key.revoke", target=f"key:{key_id}")
            return tenant is not None
        finally:
            await conn.close()

    if not asyncio.run(run()):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@index_app.command("build")
def index_build(name: str) -> None:
    """Ensure the index's tables and build its HNSW index (CREATE INDEX CONCURRENTLY);
    new parameters build beside the old index and swap. The operator's Job runs this."""
    from ragapi.routing import load_routing
    from ragapi.store.indexes import build_hnsw, ensure_index, get_index

    settings = _settings()

    async def run() -> None:
        import asyncpg

        from ragapi.store.migrations import migrate

        conn = await asyncpg.connect(_dsn())
        try:
            await migrate(conn)
            spec = load_routing(settings.routing_file).indexes.get(name)
            if spec is not None:
                await ensure_index(conn, name, spec)
            else:
                await get_index(conn, name)  # 404 as a clear error when it was never declared
            record = await build_hnsw(conn, name)
        finally:
            await conn.close()
        typer.echo(
            json.dumps(
                {
                    "index": name,
                    "hnsw": record.hnsw_index,
                    "params": record.hnsw_params,
                    "build_seconds": record.hnsw_build_seconds,
                }
            )
        )

    asyncio.run(run())


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    data_dir: Annotated[Path, typer.Option(help="Where Postgres and Redis keep data.")] = Path(
        ".ragline-demo"
    ),
    corpus: Annotated[Path, typer.Option(help="Documents to ingest.")] = Path("examples/corpus"),
    routing_file: Annotated[Path | None, typer.Option(help="Routing YAML.")] = None,
) -> None:
    """Start the embedded stack, ingest the sample corpus into index `demo`, and serve."""
    from ragapi.demo import run_demo

    sys.exit(run_demo(port=port, data_dir=data_dir, corpus=corpus, routing_file=routing_file))


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories.")],
    index: Annotated[str, typer.Option(help="Target index.")] = "demo",
    url: Annotated[str, typer.Option(envvar="RAGLINE_URL")] = "http://127.0.0.1:8080",
    key: Annotated[str, typer.Option(envvar="RAGLINE_API_KEY", help="An admin key.")] = "",
) -> None:
    """Upload files through the API (unchanged files write nothing)."""
    from ragapi.client import upload_paths

    failures = asyncio.run(upload_paths(url, key, index, paths, echo=typer.echo))
    raise typer.Exit(1 if failures else 0)


@app.command()
def query(
    question: str,
    index: Annotated[str, typer.Option(help="Index to ask.")] = "demo",
    url: Annotated[str, typer.Option(envvar="RAGLINE_URL")] = "http://127.0.0.1:8080",
    key: Annotated[str, typer.Option(envvar="RAGLINE_API_KEY")] = "",
) -> None:
    """Ask a question; prints the answer and its sources."""
    import httpx

    resp = httpx.post(
        f"{url}/v1/indexes/{index}/query",
        json={"question": question},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    body = resp.json()
    if resp.status_code != 200:
        typer.echo(f"error: {body['error']['code']}: {body['error']['message']}", err=True)
        raise typer.Exit(1)
    typer.echo(body["answer"])
    for n, c in enumerate(body["citations"], start=1):
        typer.echo(f"  [{n}] {c['source']}")
    typer.echo(f"(answered by {body['provider']})")


def _load_plugins() -> None:
    """Subcommands other packages register (``ragline operator`` comes from ragoperator)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="ragline.commands"):
        app.command(ep.name)(ep.load())


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _load_plugins()
    app()


if __name__ == "__main__":
    main()
