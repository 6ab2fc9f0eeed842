"""Fuzz the API from its own OpenAPI document with schemathesis (bounded examples per
operation): no response is a 5xx, and none carries a stack trace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from ragapi.embedded import EmbeddedStack
from tests.conftest import ApiProcess, start_api, stop_api

pytestmark = pytest.mark.integration
ROUTING = "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: fuzz}\n"


@pytest.fixture(scope="module")
def fuzz_api(
    stack: EmbeddedStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    work = tmp_path_factory.mktemp("fuzz")
    routing = work / "routing.yaml"
    routing.write_text(ROUTING)
    api = start_api(
        routing,
        {"RAGLINE_RATE_LIMIT": "100000/minute", "RAGLINE_MAX_UPLOAD_BYTES": "65536"},
        stack,
        work / "api.log",
    )
    yield api
    stop_api(api)


@pytest.fixture(scope="module")
def fuzz_key(fuzz_api: ApiProcess) -> str:
    return fuzz_api.create_key("admin")


def _on_real_index(case: schemathesis.Case) -> schemathesis.Case:
    # Random index names only ever find 404: aim the fuzzing at an index that exists.
    if case.path_parameters and "index" in case.path_parameters:
        case.path_parameters["index"] = "fuzz"
    return case


def test_no_server_errors_no_tracebacks(fuzz_api: ApiProcess, fuzz_key: str) -> None:
    """Every operation of /openapi.json, with bounded generated cases each."""
    schema = schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    headers = {"Authorization": f"Bearer {fuzz_key}"}
    failures: list[str] = []

    for operation in operations:

        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy().map(_on_real_index))
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=fuzz_api.url, headers=headers, timeout=60)
            label = f"{case.method} {case.formatted_path}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.status_code} {response.text[:300]}")
            if "Traceback" in response.text:
                failures.append(f"{label}: stack trace in the response")
            content_type = response.headers.get("content-type") or [""]
            if isinstance(content_type, list):
                content_type = content_type[0]
            if response.status_code >= 400 and content_type.startswith("application/json"):
                body = response.json()
                if set(body) != {"error"} or not {"code", "message", "request_id"} <= set(
                    body["error"]
                ):
                    failures.append(f"{label}: error not in the one shape: {response.text[:200]}")

        run()
    assert failures == []


def test_the_fuzzed_process_logged_no_unhandled_error(fuzz_api: ApiProcess) -> None:
    # Runs after the fuzz cases in this module: nothing reached the catch-all handler.
    assert "unhandled_error" not in Path(fuzz_api.log).read_text()
