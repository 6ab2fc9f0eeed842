"""Ingestion over HTTP against the real app, Postgres and Redis."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from ragapi.embedded import EmbeddedStack
from tests.support.documents import encrypt_pdf, make_docx, make_pdf

pytestmark = pytest.mark.integration

GUIDE = """# Guide

## Install

Install the package with pip and run the setup command once.

## Configure

Set the database URL in the environment before starting the server.

## Operate

Watch the dashboards and page the on-call engineer when the error rate rises.
"""


def _upload(
    client: httpx.Client, index: str, source: str, content: str, **extra: object
) -> httpx.Response:
    body = {"source": source, "content": content, "content_type": "text/markdown", **extra}
    return client.post(f"/v1/indexes/{index}/documents", json=body)


def _db_counts(stack: EmbeddedStack, index: str) -> tuple[int, int, int]:
    async def run() -> tuple[int, int, int]:
        conn = await asyncpg.connect(stack.postgres.url)
        try:
            table = "chunks_" + index.replace("-", "_")
            return (
                await conn.fetchval("SELECT count(*) FROM documents"),
                await conn.fetchval("SELECT count(*) FROM document_versions"),
                await conn.fetchval(f"SELECT count(*) FROM {table}"),
            )
        finally:
            await conn.close()

    return asyncio.run(run())


def test_upload_then_unchanged_reupload_writes_nothing(
    admin: httpx.Client, stack: EmbeddedStack
) -> None:
    source = f"guide-{uuid.uuid4().hex}.md"
    first = _upload(admin, "docs", source, GUIDE)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["version"] == 1
    assert body["chunks"] == 3  # one per section: each is well under the token budget
    assert body["chunks_written"] == 3
    before = _db_counts(stack, "docs")

    again = _upload(admin, "docs", source, GUIDE)
    assert again.status_code == 200
    assert again.json() == {**body, "chunks_written": 0}
    assert _db_counts(stack, "docs") == before


def test_editing_one_section_rewrites_only_its_chunks(
    admin: httpx.Client, stack: EmbeddedStack
) -> None:
    source = f"guide-{uuid.uuid4().hex}.md"
    first = _upload(admin, "docs", source, GUIDE).json()
    edited = GUIDE.replace("page the on-call engineer", "open an incident")
    docs_before, versions_before, chunks_before = _db_counts(stack, "docs")

    second = _upload(admin, "docs", source, edited)
    assert second.status_code == 201
    body = second.json()
    assert body["id"] == first["id"]
    assert body["version"] == 2
    assert body["chunks"] == 3
    assert body["chunks_written"] == 1
    assert _db_counts(stack, "docs") == (docs_before, versions_before + 1, chunks_before + 1)

    # Both versions stay readable; the live one is the edit.
    doc = admin.get(f"/v1/indexes/docs/documents/{first['id']}").json()
    assert [v["version"] for v in doc["versions"]] == [1, 2]
    assert "open an incident" in doc["content"]
    old = admin.get(f"/v1/indexes/docs/documents/{first['id']}", params={"version": 1}).json()
    assert "page the on-call engineer" in old["content"]
    hits = admin.post(
        "/v1/indexes/docs/search", json={"query": "page the on-call engineer", "top_k": 20}
    ).json()
    texts = [r["text"] for r in hits["results"] if r["source"] == source]
    assert texts and all("page the on-call" not in t for t in texts)


def test_put_creates_a_new_version_and_keeps_source(admin: httpx.Client) -> None:
    source = f"put-{uuid.uuid4().hex}.md"
    created = _upload(admin, "docs", source, GUIDE).json()
    resp = admin.put(
        f"/v1/indexes/docs/documents/{created['id']}",
        json={
            "content": GUIDE + "\n## Upgrade\n\nRead the release notes first.\n",
            "content_type": "text/markdown",
            "tags": ["ops"],
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == 2
    assert resp.json()["chunks_written"] == 1
    doc = admin.get(f"/v1/indexes/docs/documents/{created['id']}").json()
    assert doc["source"] == source and doc["tags"] == ["ops"] and doc["version"] == 2
    missing = admin.put(f"/v1/indexes/docs/documents/{uuid.uuid4()}", json={"content": "x y z"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_delete_is_soft_and_hides_the_document_everywhere(admin: httpx.Client) -> None:
    token = uuid.uuid4().hex[:12]
    source = f"secret-{token}.md"
    created = _upload(
        admin, "docs", source, f"# Zebra {token}\n\nThe zebra codename is {token}.\n"
    ).json()
    found = admin.post("/v1/indexes/docs/search", json={"query": f"zebra codename {token}"}).json()
    assert any(r["source"] == source for r in found["results"])

    assert admin.delete(f"/v1/indexes/docs/documents/{created['id']}").status_code == 204
    assert admin.get(f"/v1/indexes/docs/documents/{created['id']}").status_code == 404
    assert admin.delete(f"/v1/indexes/docs/documents/{created['id']}").status_code == 404
    after = admin.post(
        "/v1/indexes/docs/search", json={"query": f"zebra codename {token}", "top_k": 50}
    ).json()
    assert all(r["source"] != source for r in after["results"])
    answer = admin.post(
        "/v1/indexes/docs/query", json={"question": f"What is the zebra codename {token}?"}
    ).json()
    assert token not in answer["answer"]
    assert all(c["source"] != source for c in answer["citations"])
    # The same source can come back as a new document.
    again = _upload(admin, "docs", source, "# Zebra\n\nA new zebra document.\n")
    assert again.status_code == 201 and again.json()["id"] != created["id"]


@pytest.mark.parametrize(
    ("filename", "data", "needle"),
    [
        (
            "notes.txt",
            b"Plain notes about the quarterly capacity review.\n\nSecond paragraph.",
            "capacity review",
        ),
        (
            "page.html",
            b"<html><body><nav>menu</nav><h1>Runbook</h1>"
            b"<p>Restart the ingest worker.</p></body></html>",
            "Restart the ingest worker",
        ),
        (
            "report.pdf",
            make_pdf([["Quarterly report.", "Revenue grew in every region."]]),
            "Revenue grew",
        ),
        (
            "spec.docx",
            make_docx([("Scope", ["The service stores vectors in Postgres."])]),
            "stores vectors",
        ),
    ],
)
def test_multipart_formats(admin: httpx.Client, filename: str, data: bytes, needle: str) -> None:
    source = f"{uuid.uuid4().hex}-{filename}"
    resp = admin.post(
        "/v1/indexes/docs/documents",
        files={"file": (filename, data)},
        data={"source": source, "tags": "upload,multipart", "metadata": '{"team": "sre"}'},
    )
    assert resp.status_code == 201, resp.text
    doc = admin.get(f"/v1/indexes/docs/documents/{resp.json()['id']}").json()
    assert needle in doc["content"]
    assert doc["tags"] == ["multipart", "upload"]
    assert doc["metadata"] == {"team": "sre"}
    hits = admin.post(
        "/v1/indexes/docs/search",
        json={
            "query": needle,
            "filters": {"tags": ["multipart"], "metadata": {"team": "sre"}},
            "top_k": 20,
        },
    ).json()
    assert source in {r["source"] for r in hits["results"]}


def _error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == resp.headers["x-request-id"]
    assert "Traceback" not in resp.text
    return str(body["error"]["message"])


def test_bad_input_is_refused_in_one_shape_and_writes_nothing(
    admin: httpx.Client, stack: EmbeddedStack
) -> None:
    before = _db_counts(stack, "docs")
    url = "/v1/indexes/docs/documents"
    _error(
        admin.post(url, json={"source": "e.md", "content": "", "content_type": "text/markdown"}),
        422,
        "empty_document",
    )
    _error(admin.post(url, json={"source": "w.txt", "content": "  \n\t "}), 422, "empty_document")
    big = admin.post(
        url, files={"file": ("big.txt", b"a " * 1_100_000)}, data={"source": "big.txt"}
    )
    assert "the limit is 2000000" in _error(big, 413, "payload_too_large")
    msg = _error(
        admin.post(url, files={"file": ("x.png", b"\x89PNG\r\n\x1a\n", "image/png")}),
        415,
        "unsupported_media_type",
    )
    assert "image/png" in msg
    _error(
        admin.post(url, files={"file": ("bad.pdf", b"%PDF-1.4 garbage")}),
        422,
        "unparseable_document",
    )
    encrypted = encrypt_pdf(make_pdf([["Top secret."]]), "")
    _error(admin.post(url, files={"file": ("enc.pdf", encrypted)}), 422, "encrypted_document")
    msg = _error(
        admin.post(url, files={"file": ("latin.txt", b"caf\xe9 au lait")}), 422, "invalid_encoding"
    )
    assert "offset 3" in msg or "byte 3" in msg or "position 3" in msg
    _error(
        admin.post("/v1/indexes/nope/documents", json={"source": "a", "content": "b"}),
        404,
        "not_found",
    )
    _error(
        admin.post(
            url, content=b"source=a", headers={"content-type": "application/x-www-form-urlencoded"}
        ),
        415,
        "unsupported_media_type",
    )
    _error(
        admin.post(url, content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "validation_error",
    )
    assert _db_counts(stack, "docs") == before


def test_size_limit_by_content_length_is_413_before_reading(api_url: str, admin_key: str) -> None:
    big = b"x" * 3_000_000
    resp = httpx.post(
        f"{api_url}/v1/indexes/docs/documents",
        content=big,
        headers={"Authorization": f"Bearer {admin_key}", "content-type": "application/json"},
    )
    _error(resp, 413, "payload_too_large")
