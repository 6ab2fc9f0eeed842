"""Auth, health, metrics, request ids and the error shape, over HTTP."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import ApiProcess
from tests.integration.conftest import log_text

pytestmark = pytest.mark.integration


def test_health_and_metrics_need_no_auth(api_url: str) -> None:
    assert httpx.get(f"{api_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api_url}/readyz").json()
    assert ready == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "routing": "ok"},
    }
    metrics = httpx.get(f"{api_url}/metrics")
    assert metrics.status_code == 200 and "ragline_http_requests_total" in metrics.text
    om = httpx.get(f"{api_url}/metrics", headers={"Accept": "application/openmetrics-text"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/indexes"),
        ("POST", "/v1/indexes/docs/documents"),
        ("GET", "/v1/indexes/docs/documents"),
        ("POST", "/v1/indexes/docs/search"),
        ("POST", "/v1/indexes/docs/query"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/indexes/docs/documents/00000000-0000-0000-0000-000000000000"),
        ("DELETE", "/v1/indexes/docs/documents/00000000-0000-0000-0000-000000000000"),
    ],
)
@pytest.mark.parametrize(
    "auth", [None, "Bearer rl_AAAAAAAA_notarealkeynotarealkeynotareal", "Basic abc", "Bearer rl_x"]
)
def test_every_endpoint_needs_a_valid_key(
    api_url: str, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    resp = httpx.request(method, f"{api_url}{path}", headers=headers, json={})
    assert resp.status_code == 401, resp.text
    err = resp.json()["error"]
    assert err["code"] == "unauthenticated" and err["request_id"] == resp.headers["x-request-id"]


def test_reader_cannot_write_and_scoped_keys_stay_in_scope(
    api: ApiProcess, reader: httpx.Client
) -> None:
    resp = reader.post("/v1/indexes/docs/documents", json={"source": "r.txt", "content": "text"})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    scoped = api.create_key("reader", "default", "filtered")
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {scoped}"}) as c:
        assert c.post("/v1/indexes/filtered/search", json={"query": "x"}).status_code == 200
        denied = c.post("/v1/indexes/docs/search", json={"query": "x"})
        assert denied.status_code == 403
        assert [i["name"] for i in c.get("/v1/indexes").json()["indexes"]] == ["filtered"]


def test_revoked_key_stops_working(api: ApiProcess) -> None:
    key = api.create_key("reader")
    key_id = next(
        line.split()[0]
        for line in api.ragline("keys", "list").splitlines()
        if key.split("_")[1] in line
    )
    assert api.ragline("keys", "revoke", key_id).strip() == f"revoked {key_id}"
    # Verified keys are cached for up to 10 s per pod; a fresh key was never cached here.
    resp = httpx.get(f"{api.url}/v1/indexes", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 401


def test_request_id_is_echoed_and_logged(admin: httpx.Client, api: ApiProcess) -> None:
    resp = admin.post(
        "/v1/indexes/docs/search", json={"query": "disk"}, headers={"X-Request-ID": "req-abc.123"}
    )
    assert resp.headers["x-request-id"] == "req-abc.123"
    bogus = admin.get("/v1/indexes", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", bogus.headers["x-request-id"])
    assert '"request_id": "req-abc.123"' in log_text(api)


def test_unknown_route_and_method_use_the_error_shape(admin: httpx.Client) -> None:
    resp = admin.get("/v1/nothing-here")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = admin.patch("/v1/indexes/docs/search")
    assert resp.status_code == 405 and resp.json()["error"]["code"] == "method_not_allowed"


def test_metrics_use_route_templates_not_raw_paths(admin: httpx.Client, api_url: str) -> None:
    admin.get("/v1/indexes/docs/documents/00000000-0000-0000-0000-000000000001")
    text = httpx.get(f"{api_url}/metrics").text
    assert 'route="/v1/indexes/{index}/documents/{document_id}"' in text
    assert "00000000-0000-0000-0000-000000000001" not in text
    for name in (
        "ragline_retrieval_duration_seconds_bucket",
        "ragline_embedding_duration_seconds_bucket",
        "ragline_ingest_chunks_total",
        "ragline_provider_requests_total",
    ):
        assert name in text


def test_secrets_never_reach_the_log(api: ApiProcess, admin_key: str, admin: httpx.Client) -> None:
    from tests.integration.conftest import PROVIDER_API_KEY

    # Use every secret in this test: a good key, a wrong one, the provider's key (an LLM
    # call that fails and one that succeeds), a key in a header the app never reads.
    wrong = "rl_AAAAAAAA_" + "W" * 32
    httpx.get(f"{api.url}/v1/indexes", headers={"Authorization": f"Bearer {wrong}"})
    admin.post(
        "/v1/indexes/llm/documents", json={"source": "s.txt", "content": "Secrets stay hidden."}
    )
    admin.post(
        "/v1/indexes/llm/query", json={"question": "hidden?"}, headers={"X-Api-Key": admin_key}
    )
    text = log_text(api)
    assert '"http_request"' in text  # the log is there, and it is the API's
    db_password = api.env["RAGLINE_DATABASE_URL"].split(":")[2].split("@")[0]
    admin_db_password = api.env["RAGLINE_ADMIN_DATABASE_URL"].split(":")[2].split("@")[0]
    redis_password = api.env["RAGLINE_REDIS_URL"].split(":")[2].split("@")[0]
    for secret in (
        admin_key,
        wrong,
        PROVIDER_API_KEY,
        db_password,
        admin_db_password,
        redis_password,
    ):
        assert len(secret) >= 16 and secret not in text


def test_openapi_documents_the_contract(api_url: str) -> None:
    spec = httpx.get(f"{api_url}/openapi.json").json()
    paths = spec["paths"]
    for p in (
        "/v1/indexes/{index}/documents",
        "/v1/indexes/{index}/search",
        "/v1/indexes/{index}/query",
        "/v1/chat/completions",
    ):
        assert p in paths
    upload = paths["/v1/indexes/{index}/documents"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "413" in upload["responses"] and "415" in upload["responses"]
