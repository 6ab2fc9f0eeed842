"""Asynchronous ingestion: large uploads become jobs in Postgres, claimed with SKIP LOCKED,
retried with backoff, dead-lettered, and taken over when a worker's lease runs out."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest

from ragapi.embedded import EmbeddedStack
from tests.support.documents import make_pdf
from tests.support.jobs import wait_job
from tests.support.provider_server import Fault, ProviderServer

pytestmark = pytest.mark.integration


def test_async_upload_becomes_a_job_and_succeeds(admin: httpx.Client) -> None:
    source = f"job-{uuid.uuid4().hex}.md"
    resp = admin.post(
        "/v1/indexes/docs/documents",
        params={"async": "true"},
        json={
            "source": source,
            "content": "# Jobs\n\nQueued work lands eventually.",
            "content_type": "text/markdown",
        },
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["state"] == "queued" and resp.headers["location"] == body["status_url"]
    done = wait_job(admin, body["status_url"], {"succeeded", "failed", "dead"})
    assert done["state"] == "succeeded" and done["attempts"] == 1
    assert done["result"]["version"] == 1 and done["result"]["chunks_written"] == 1
    doc = admin.get(f"/v1/indexes/docs/documents/{done['result']['id']}").json()
    assert doc["source"] == source and "Queued work lands eventually." in doc["content"]


def test_large_upload_is_queued_without_asking(admin: httpx.Client) -> None:
    big = ("Capacity planning notes. " * 60_000).encode()  # 1.5 MB > RAGLINE_INGEST_ASYNC_BYTES
    resp = admin.post(
        "/v1/indexes/docs/documents",
        files={"file": ("big.txt", big)},
        data={"source": f"big-{uuid.uuid4().hex}.txt"},
    )
    assert resp.status_code == 202
    done = wait_job(admin, resp.json()["status_url"], {"succeeded", "failed", "dead"}, timeout=300)
    assert done["state"] == "succeeded", done
    assert done["result"]["chunks"] > 100


def test_bad_document_fails_permanently_without_retry(admin: httpx.Client) -> None:
    resp = admin.post(
        "/v1/indexes/docs/documents",
        params={"async": "true"},
        files={"file": ("bad.pdf", make_pdf([["x"]])[:200])},
        data={"source": "bad.pdf"},
    )
    done = wait_job(admin, resp.json()["status_url"], {"succeeded", "failed", "dead"})
    assert done["state"] == "failed" and done["attempts"] == 1
    assert done["error"].startswith("unparseable_document: ")


def test_transient_failure_is_retried_with_backoff(
    admin: httpx.Client, provider_state: ProviderServer
) -> None:
    # The remote embedding pool fails (both providers, all attempts) once, then heals.
    provider_state.state.inject("embeddings", *[Fault("500")] * 4)
    resp = admin.post(
        "/v1/indexes/remote/documents",
        params={"async": "true"},
        json={"source": f"retry-{uuid.uuid4().hex}.txt", "content": "Retried until it works."},
    )
    done = wait_job(admin, resp.json()["status_url"], {"succeeded", "failed", "dead"})
    assert done["state"] == "succeeded" and done["attempts"] == 2


def test_other_tenants_and_unknown_jobs_are_404(admin: httpx.Client) -> None:
    assert admin.get(f"/v1/jobs/{uuid.uuid4()}").status_code == 404


def test_dead_letter_and_lease_takeover(admin: httpx.Client, stack: EmbeddedStack) -> None:
    async def run() -> tuple[uuid.UUID, uuid.UUID]:
        conn = await asyncpg.connect(stack.postgres.url)
        try:
            payload = json.dumps({"source": "lease.txt", "content_type": "text/plain"})
            # A job whose worker died mid-run: its lease expired a minute ago.
            orphan = uuid.uuid4()
            await conn.execute(
                """INSERT INTO ingestion_jobs (id, tenant, index_name, kind, payload, data, state,
                                               attempts, locked_until)
                   VALUES ($1, 'default', 'docs', 'ingest', $2::jsonb, $3, 'running', 1,
                           now() - interval '1 minute')""",
                orphan,
                payload,
                b"Taken over after the lease ran out.",
            )
            # A job that keeps failing on a transient error reaches max_attempts: dead.
            doomed = uuid.uuid4()
            await conn.execute(
                """INSERT INTO ingestion_jobs (id, tenant, index_name, kind, payload, data, attempts,
                                               max_attempts)
                   VALUES ($1, 'default', 'no-such-index-anywhere', 'ingest', $2::jsonb, $3, 1, 2)""",
                doomed,
                payload,
                b"x",
            )
            return orphan, doomed
        finally:
            await conn.close()

    orphan, doomed = asyncio.run(run())
    taken = wait_job(admin, f"/v1/jobs/{orphan}", {"succeeded", "failed", "dead"})
    assert taken["state"] == "succeeded" and taken["attempts"] == 2
    # unknown index → 404 → permanent; a not-found index counts as a client error
    dead = wait_job(admin, f"/v1/jobs/{doomed}", {"succeeded", "failed", "dead"})
    assert dead["state"] in ("failed", "dead") and "not_found" in dead["error"]
