"""``ragline demo``: the whole data plane on one machine, with the embedded defaults."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import typer

DEMO_ROUTING = """\
# The demo's routing: the same resources a cluster would hold (kubectl apply -f works too).
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {name: demo}
spec:
  chunking: {maxTokens: 200, overlapTokens: 30, strategy: structured}
  hnsw: {m: 16, efConstruction: 256, efSearch: 40}
  search: {hybrid: true, rrfK: 60, topK: 5}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {name: default}
spec:
  purpose: chat
  providers:
    - {name: extractive, type: extractive, priority: 100}
"""


def run_demo(*, port: int, data_dir: Path, corpus: Path, routing_file: Path | None) -> int:
    import uvicorn

    from ragapi.app import create_app
    from ragapi.client import upload_paths
    from ragapi.embedded import EmbeddedStack
    from ragapi.logs import configure_logging
    from ragapi.settings import Settings

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if routing_file is None:
        routing_file = data_dir / "routing.yaml"
        routing_file.write_text(DEMO_ROUTING)
    stack = EmbeddedStack(data_dir)  # started from the main thread: see ragapi.embedded
    typer.echo(f"starting Postgres and Redis in {data_dir} ...")
    stack.start()
    try:
        os.environ.update(stack.environ())
        os.environ["RAGLINE_ROUTING_FILE"] = str(routing_file)
        settings = Settings()
        configure_logging(settings.log_level, settings.log_json)
        key = asyncio.run(_admin_key(stack.postgres.url))
        key_file = data_dir / "admin.key"
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False
            )
        )

        has_corpus = corpus.is_dir()

        async def main() -> None:
            serving = asyncio.create_task(server.serve())
            while not server.started:
                if serving.done():
                    await serving  # re-raises why it could not start
                    return
                await asyncio.sleep(0.05)
            if has_corpus:
                failures = await upload_paths(
                    f"http://127.0.0.1:{port}",
                    key,
                    "demo",
                    [corpus],
                    base=corpus,
                    echo=lambda line: typer.echo(f"  ingested {line}"),
                )
                if failures:
                    typer.echo(f"{failures} documents failed to ingest", err=True)
            typer.echo(f"ready: http://127.0.0.1:{port} (index 'demo'; admin key in {key_file})")
            typer.echo(
                f'try: curl -s -H "Authorization: Bearer $(cat {key_file})" '
                '-H "Content-Type: application/json" '
                f'-d \'{{"question": "How do I tune HNSW recall?"}}\' '
                f"http://127.0.0.1:{port}/v1/indexes/demo/query"
            )
            await serving

        asyncio.run(main())
        return 0
    finally:
        stack.stop()


async def _admin_key(dsn: str) -> str:
    import asyncpg

    from ragapi.auth import Role, create_key
    from ragapi.store.migrations import migrate

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        return (await create_key(conn, tenant="default", role=Role.ADMIN, name="demo")).key
    finally:
        await conn.close()
