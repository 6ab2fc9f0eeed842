"""Tenant isolation: the database enforces it (row-level security), and no endpoint lets
tenant A read, infer or change tenant B's data — by id, by index name, by search, by
question, through the OpenAI endpoint or jobs — and the attempts are audited."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import openai
import pytest

from ragapi.embedded import EmbeddedStack
from tests.conftest import RAGLINE, ApiProcess

pytestmark = pytest.mark.integration


class Tenant:
    def __init__(self, api: ApiProcess, name: str) -> None:
        self.name = name
        self.key = api.create_key("admin", name)
        self.client = httpx.Client(
            base_url=api.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60
        )


@pytest.fixture(scope="module")
def tenants(api: ApiProcess) -> Iterator[tuple[Tenant, Tenant, dict[str, str]]]:
    run = uuid.uuid4().hex[:8]
    a, b = Tenant(api, f"acme-{run}"), Tenant(api, f"globex-{run}")
    secret = f"zebracode{run}"
    made = b.client.post(
        "/v1/indexes/docs/documents",
        json={
            "source": "plans.md",
            "content": f"# Plans\n\nThe launch codename is {secret}.",
            "content_type": "text/markdown",
            "tags": ["secret"],
        },
    )
    assert made.status_code == 201, made.text
    job = b.client.post(
        "/v1/indexes/docs/documents",
        params={"async": "true"},
        json={"source": "later.md", "content": f"Later: {secret}."},
    )
    assert job.status_code == 202
    info = {"secret": secret, "doc": made.json()["id"], "job": job.json()["job_id"]}
    yield a, b, info
    a.client.close()
    b.client.close()


def test_other_tenant_by_id_is_invisible_and_unchangeable(
    tenants: tuple[Tenant, Tenant, dict[str, str]],
) -> None:
    a, b, info = tenants
    doc = f"/v1/indexes/docs/documents/{info['doc']}"
    assert a.client.get(doc).status_code == 404
    assert a.client.get(doc, params={"version": 1}).status_code == 404
    assert a.client.put(doc, json={"content": "overwritten by acme"}).status_code == 404
    assert a.client.delete(doc).status_code == 404
    assert a.client.get(f"/v1/jobs/{info['job']}").status_code == 404
    # B's document is untouched and B still sees it
    mine = b.client.get(doc)
    assert mine.status_code == 200 and info["secret"] in mine.json()["content"]
    assert mine.json()["version"] == 1
    assert b.client.get(f"/v1/jobs/{info['job']}").status_code == 200


def test_same_index_same_source_are_separate_documents(
    tenants: tuple[Tenant, Tenant, dict[str, str]],
) -> None:
    a, _, info = tenants
    mine = a.client.post(
        "/v1/indexes/docs/documents", json={"source": "plans.md", "content": "Acme's own plans."}
    )
    assert (
        mine.status_code == 201 and mine.json()["id"] != info["doc"] and mine.json()["version"] == 1
    )
    listed = a.client.get("/v1/indexes/docs/documents").json()["documents"]
    assert [d["id"] for d in listed if d["source"] == "plans.md"] == [mine.json()["id"]]


def test_search_query_and_chat_never_surface_the_other_tenant(
    tenants: tuple[Tenant, Tenant, dict[str, str]], api: ApiProcess
) -> None:
    a, b, info = tenants
    secret = info["secret"]
    for filters in (None, {"tags": ["secret"]}):
        body: dict[str, object] = {"query": f"launch codename {secret}", "top_k": 50}
        if filters:
            body["filters"] = filters
        results = a.client.post("/v1/indexes/docs/search", json=body).json()["results"]
        assert all(secret not in r["text"] for r in results)
        assert all(r["document_id"] != info["doc"] for r in results)
    answer = a.client.post(
        "/v1/indexes/docs/query", json={"question": f"What is the launch codename {secret}?"}
    )
    assert secret not in answer.text
    streamed = a.client.post(
        "/v1/indexes/docs/query", json={"question": f"launch codename {secret}?", "stream": True}
    )
    assert secret not in streamed.text
    chat = openai.OpenAI(
        base_url=f"{api.url}/v1", api_key=a.key, max_retries=0
    ).chat.completions.create(
        model="docs",
        messages=[{"role": "user", "content": f"What is the launch codename {secret}?"}],
    )
    assert secret not in (chat.choices[0].message.content or "") and secret not in str(
        chat.model_extra
    )
    # B, asking the same, gets it: the data is there, only not for A
    own = b.client.post(
        "/v1/indexes/docs/query", json={"question": f"What is the launch codename {secret}?"}
    )
    assert secret in own.json()["answer"]


def test_rate_limit_status_is_per_key(tenants: tuple[Tenant, Tenant, dict[str, str]]) -> None:
    a, b, _ = tenants
    before = b.client.get("/v1/rate-limit/status").json()["remaining"]
    for _ in range(3):
        a.client.get("/v1/indexes")
    after = b.client.get("/v1/rate-limit/status").json()["remaining"]
    assert after == before - 1  # only B's own status call counted


def test_attempts_are_audited_for_the_tenant_that_made_them(
    tenants: tuple[Tenant, Tenant, dict[str, str]],
) -> None:
    a, b, info = tenants
    a.client.get(f"/v1/indexes/docs/documents/{info['doc']}")
    time.sleep(0.2)
    entries = a.client.get("/v1/audit").json()["entries"]
    assert any(
        e["outcome"] == "not_found"
        and e["target"].endswith(info["doc"])
        and e["action"] == "GET /v1/indexes/{index}/documents/{document_id}"
        for e in entries
    )
    # B's audit shows B's own upload, not A's attempt
    theirs = b.client.get("/v1/audit").json()["entries"]
    assert any(e["action"] == "document.upload" and e["outcome"] == "allowed" for e in theirs)
    assert all(not e["target"].endswith(info["doc"]) or e["outcome"] == "allowed" for e in theirs)


def test_reader_cannot_read_the_audit_log_and_the_denial_is_audited(
    api: ApiProcess, tenants: tuple[Tenant, Tenant, dict[str, str]]
) -> None:
    a, _, _ = tenants
    reader = api.create_key("reader", a.name)
    resp = httpx.get(f"{api.url}/v1/audit", headers={"Authorization": f"Bearer {reader}"})
    assert resp.status_code == 403
    entries = a.client.get("/v1/audit").json()["entries"]
    assert any(e["outcome"] == "denied" and e["action"] == "GET /v1/audit" for e in entries)


def test_key_commands_are_audited_in_the_keys_tenant(
    api: ApiProcess, tenants: tuple[Tenant, Tenant, dict[str, str]]
) -> None:
    a, b, _ = tenants
    out = api.ragline("keys", "create", "--role", "reader", "--tenant", a.name, "--name", "ci")
    key_id = out.split()[2]  # "created key <id> (tenant ..., role ...); it is shown once:"
    key = out.strip().splitlines()[-1]
    assert api.ragline("keys", "revoke", key_id).strip() == f"revoked {key_id}"
    revoked = httpx.get(f"{api.url}/v1/indexes", headers={"Authorization": f"Bearer {key}"})
    assert revoked.status_code == 401
    mine = [
        e for e in a.client.get("/v1/audit").json()["entries"] if e["target"] == f"key:{key_id}"
    ]
    assert {e["action"] for e in mine} == {"key.create", "key.revoke"}
    assert all(e["actor"].startswith("cli:") and e["outcome"] == "allowed" for e in mine)
    created = next(e for e in mine if e["action"] == "key.create")
    assert created["detail"] == {"role": "reader", "indexes": [], "name": "ci"}
    assert key not in str(mine)  # the key itself is never in the log
    # Another tenant's admin does not see these entries.
    assert not [e for e in b.client.get("/v1/audit").json()["entries"] if key_id in e["target"]]
    # Revoking again finds no active key: an error, and nothing more is audited.
    again = subprocess.run(
        [RAGLINE, "keys", "revoke", key_id], env=api.env, capture_output=True, text=True
    )
    assert again.returncode == 1 and f"no active key {key_id}" in again.stderr
    after = [
        e for e in a.client.get("/v1/audit").json()["entries"] if e["target"] == f"key:{key_id}"
    ]
    assert len(after) == 2


def test_row_level_security_alone_blocks_an_unfiltered_query(
    stack: EmbeddedStack, tenants: tuple[Tenant, Tenant, dict[str, str]]
) -> None:
    _, b, info = tenants

    async def run() -> None:
        app = await asyncpg.connect(stack.postgres.app_url)  # the API's own role
        owner = await asyncpg.connect(stack.postgres.url)
        try:
            role = await app.fetchrow(
                "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
            assert role is not None and (role["rolsuper"], role["rolbypassrls"]) == (False, False)
            everything = "SELECT count(*) FROM documents"
            chunks = "SELECT count(*) FROM chunks_docs"
            assert await owner.fetchval(everything) > 0
            # No tenant set: a query that forgets the tenant sees nothing at all.
            assert await app.fetchval(everything) == 0
            assert await app.fetchval(chunks) == 0
            assert await app.fetchval("SELECT count(*) FROM document_versions") == 0
            async with app.transaction():
                await app.execute("SELECT set_config('ragline.tenant', $1, true)", b.name)
                ids = {r["id"] for r in await app.fetch("SELECT id FROM documents")}
                assert uuid.UUID(info["doc"]) in ids
                tenants_seen = {
                    r["tenant"] for r in await app.fetch("SELECT DISTINCT tenant FROM chunks_docs")
                }
                assert tenants_seen == {b.name}
            async with app.transaction():
                await app.execute("SELECT set_config('ragline.tenant', 'someone-else', true)")
                assert await app.fetchval(everything) == 0
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await app.execute(
                        """INSERT INTO documents (id, tenant, index_name, source, version, content_type,
                                                  content_hash) VALUES ($1, $2, 'docs', 'x', 1, 'text/plain', '\\x00')""",
                        uuid.uuid4(),
                        b.name,
                    )
            # The owner's search functions (GIN under RLS) enforce the same isolation.
            text_fn = (
                "SELECT source FROM ragline_text_candidates('chunks_docs', $1, 50, NULL, NULL)"
            )
            assert await app.fetch(text_fn, f"launch codename {info['secret']}") == []  # no tenant
            async with app.transaction():
                await app.execute("SELECT set_config('ragline.tenant', 'someone-else', true)")
                assert await app.fetch(text_fn, f"launch codename {info['secret']}") == []
                assert (
                    await app.fetchval(
                        "SELECT ragline_count_matching('chunks_docs', ARRAY['secret'], NULL, 100)"
                    )
                    == 0
                )
            async with app.transaction():
                await app.execute("SELECT set_config('ragline.tenant', $1, true)", b.name)
                found = {
                    r["source"]
                    for r in await app.fetch(text_fn, f"launch codename {info['secret']}")
                }
                assert "plans.md" in found
                assert (
                    await app.fetchval(
                        "SELECT ragline_count_matching('chunks_docs', ARRAY['secret'], NULL, 100)"
                    )
                    == 1
                )
            with pytest.raises(asyncpg.RaiseError, match="not a Ragline chunk table"):
                await app.fetch(
                    "SELECT * FROM ragline_text_candidates('documents', 'x', 5, NULL, NULL)"
                )
            # and the role cannot switch the policies off
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute("ALTER TABLE documents DISABLE ROW LEVEL SECURITY")
            with pytest.raises(asyncpg.PostgresError):
                await app.execute("SET row_security = off; SELECT count(*) FROM documents")
        finally:
            await app.close()
            await owner.close()

    asyncio.run(run())
