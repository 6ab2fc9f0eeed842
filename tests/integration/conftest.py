"""One real API process for the integration suite, over the embedded stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragapi.embedded import EmbeddedStack
from tests.conftest import ApiProcess, start_api, stop_api
from tests.support.provider_server import ProviderServer

ROUTING = """\
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: docs}}
spec: {{}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: filtered}}
spec:
  hnsw: {{m: 8, efConstruction: 32, efSearch: 10}}
  search: {{hybrid: false, topK: 10}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: llm}}
spec:
  answer: {{poolRef: {{name: openai-chat}}}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: remote}}
spec:
  embedding: {{poolRef: {{name: remote-embed}}, model: test-embed, dimensions: 64}}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: default}}
spec:
  purpose: chat
  providers: [{{name: extractive, type: extractive}}]
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: openai-chat}}
spec:
  purpose: chat
  providers:
    - {{name: testllm, type: openai, baseURL: "{url}", model: test-model, priority: 1,
       timeoutSeconds: 2, maxRetries: 2, apiKeySecretRef: {{name: testllm, key: apiKey}}}}
    - {{name: extractive, type: extractive, priority: 9}}
  circuitBreaker: {{failureThreshold: 1000, cooldownSeconds: 1}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: fragile}}
spec:
  answer: {{poolRef: {{name: fragile-chat}}}}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: fragile-chat}}
spec:
  purpose: chat
  providers:
    - {{name: flaky, type: openai, baseURL: "{url}", model: test-model, priority: 1,
       timeoutSeconds: 2, maxRetries: 0}}
  circuitBreaker: {{failureThreshold: 2, cooldownSeconds: 2}}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: remote-embed}}
spec:
  purpose: embedding
  providers:
    - {{name: testemb, type: openai, baseURL: "{url}", model: test-embed, priority: 1,
       maxRetries: 2}}
    - {{name: testemb-b, type: openai, baseURL: "{url}", model: test-embed, priority: 2,
       maxRetries: 0}}
  circuitBreaker: {{failureThreshold: 1000, cooldownSeconds: 1}}
"""
PROVIDER_API_KEY = "sk-test-provider-secret-0123456789"


@pytest.fixture(scope="session")
def api(
    stack: EmbeddedStack, provider: ProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    provider.state.dimensions = 64
    work = tmp_path_factory.mktemp("api")
    routing = work / "routing.yaml"
    routing.write_text(ROUTING.format(url=provider.url))
    proc = start_api(
        routing,
        {"RAGLINE_SECRET_TESTLLM_APIKEY": PROVIDER_API_KEY, "RAGLINE_MAX_UPLOAD_BYTES": "2000000"},
        stack,
        work / "api.log",
    )
    try:
        yield proc
    finally:
        stop_api(proc)


@pytest.fixture(scope="session")
def admin_key(api: ApiProcess) -> str:
    return api.create_key("admin")


@pytest.fixture(scope="session")
def reader_key(api: ApiProcess) -> str:
    return api.create_key("reader")


@pytest.fixture(scope="session")
def admin(api: ApiProcess, admin_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=api.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60
    ) as c:
        yield c


@pytest.fixture(scope="session")
def reader(api: ApiProcess, reader_key: str) -> Iterator[httpx.Client]:
    # Provider tests repeat questions: always ask for a fresh answer, not the cached one.
    with httpx.Client(
        base_url=api.url,
        headers={"Authorization": f"Bearer {reader_key}", "Cache-Control": "no-cache"},
        timeout=60,
    ) as c:
        yield c


@pytest.fixture()
def provider_state(provider: ProviderServer) -> Iterator[ProviderServer]:
    provider.state.reset()
    yield provider
    provider.state.reset()


def log_text(api: ApiProcess) -> str:
    return Path(api.log).read_text(errors="replace")


@pytest.fixture(scope="session")
def api_url(api: ApiProcess) -> str:
    return api.url
