"""Answers with citations: extractive, an OpenAI-compatible provider, SSE streaming,
fall-through on provider faults, and the OpenAI-compatible endpoint driven by the real
`openai` SDK."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import openai
import pytest

from tests.integration.conftest import PROVIDER_API_KEY
from tests.support.provider_server import Fault, ProviderServer

pytestmark = pytest.mark.integration

RUNBOOK = """# Runbook

## Disk full

When the disk is full, delete old WAL segments and extend the volume by 20 percent.

## High latency

When latency is high, raise the replica count of the API deployment.
"""


@pytest.fixture(scope="module")
def runbooks(admin: httpx.Client) -> str:
    source = f"runbook-{uuid.uuid4().hex}.md"
    for index in ("docs", "llm"):
        resp = admin.post(
            f"/v1/indexes/{index}/documents",
            json={"source": source, "content": RUNBOOK, "content_type": "text/markdown"},
        )
        assert resp.status_code in (200, 201), resp.text
    return source


def _sse(resp: httpx.Response) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in resp.text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", None
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
        if data is not None:
            events.append((name, json.loads(data)))
    return events


def test_extractive_answer_cites_its_source(reader: httpx.Client, runbooks: str) -> None:
    resp = reader.post(
        "/v1/indexes/docs/query", json={"question": "What do I do when the disk is full?"}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["provider"] == "extractive"
    assert "delete old WAL segments" in body["answer"]
    assert "[1]" in body["answer"]
    assert body["citations"][0]["source"] == runbooks
    assert set(body["citations"][0]) == {"document_id", "source", "chunk_id"}


def test_streamed_query_events(reader: httpx.Client, runbooks: str) -> None:
    resp = reader.post(
        "/v1/indexes/docs/query",
        json={"question": "What do I do when the disk is full?", "stream": True},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = _sse(resp)
    names = [n for n, _ in events]
    assert names[0] == "start" and names[-1] == "done"
    assert set(names[1:-1]) == {"token"}
    assert events[0][1]["provider"] == "extractive"
    text = "".join(str(d["delta"]) for n, d in events if n == "token")
    plain = reader.post(
        "/v1/indexes/docs/query", json={"question": "What do I do when the disk is full?"}
    ).json()
    assert text == plain["answer"]
    assert events[-1][1]["citations"] == plain["citations"]


def test_openai_provider_answers_and_gets_the_prompt(
    reader: httpx.Client, runbooks: str, provider_state: ProviderServer
) -> None:
    resp = reader.post(
        "/v1/indexes/llm/query", json={"question": "What do I do when the disk is full?"}
    )
    body = resp.json()
    assert body["provider"] == "testllm" and body["model"] == "test-model"
    assert body["answer"].startswith("According to the documentation, ")
    assert body["answer"].endswith("[1]")
    assert body["citations"][0]["source"] == runbooks
    call = provider_state.state.calls[-1]
    assert call["headers"]["authorization"] == f"Bearer {PROVIDER_API_KEY}"
    prompt = call["body"]["messages"][-1]["content"]
    assert "[1] (source: " in prompt and "Question: What do I do when the disk is full?" in prompt


def _llm_calls(p: ProviderServer) -> int:
    return sum(1 for c in p.state.calls if c["endpoint"] == "chat")


@pytest.mark.parametrize(
    ("kind", "reason", "calls"),
    [
        ("500", "server_error", 3),
        ("reset", "connection", 3),
        ("malformed", "bad_response", 3),
        ("400", "client_error", 1),
    ],
)
def test_provider_fault_falls_through_to_extractive(
    reader: httpx.Client,
    runbooks: str,
    provider_state: ProviderServer,
    kind: str,
    reason: str,
    calls: int,
) -> None:
    # maxRetries 2: retryable faults are tried 3 times, a 400 only once.
    provider_state.state.inject("chat", *[Fault(kind)] * 3)
    body = reader.post(
        "/v1/indexes/llm/query", json={"question": "What do I do when the disk is full?"}
    ).json()
    assert body["provider"] == "extractive"
    assert body["skipped"] == [{"provider": "testllm", "reason": reason}]
    assert "delete old WAL segments" in body["answer"]
    assert _llm_calls(provider_state) == calls


@pytest.mark.parametrize("kind", ["500", "reset", "malformed"])
def test_retryable_fault_is_retried_and_the_provider_answers(
    reader: httpx.Client, runbooks: str, provider_state: ProviderServer, kind: str
) -> None:
    provider_state.state.inject("chat", Fault(kind))
    body = reader.post("/v1/indexes/llm/query", json={"question": "disk full?"}).json()
    assert body["provider"] == "testllm" and body["skipped"] == []
    assert _llm_calls(provider_state) == 2


def test_429_retry_after_is_honoured(
    reader: httpx.Client, runbooks: str, provider_state: ProviderServer
) -> None:
    provider_state.state.inject("chat", Fault("429", seconds=1.5))
    started = time.monotonic()
    body = reader.post("/v1/indexes/llm/query", json={"question": "disk full?"}).json()
    assert body["provider"] == "testllm"
    assert time.monotonic() - started >= 1.5
    # A Retry-After longer than the router waits falls through at once.
    provider_state.state.inject("chat", Fault("429", seconds=120))
    started = time.monotonic()
    body = reader.post("/v1/indexes/llm/query", json={"question": "disk full?"}).json()
    assert body["provider"] == "extractive"
    assert body["skipped"] == [{"provider": "testllm", "reason": "rate_limited"}]
    assert time.monotonic() - started < 5


def test_provider_timeout_is_retried_then_falls_through(
    reader: httpx.Client, runbooks: str, provider_state: ProviderServer
) -> None:
    provider_state.state.inject("chat", *[Fault("latency", seconds=3)] * 3)  # timeoutSeconds 2
    body = reader.post("/v1/indexes/llm/query", json={"question": "disk full?"}).json()
    assert body["provider"] == "extractive"
    assert body["skipped"] == [{"provider": "testllm", "reason": "timeout"}]
    assert _llm_calls(provider_state) == 3


def test_circuit_breaker_opens_skips_and_probes_after_cooldown(
    admin: httpx.Client, reader: httpx.Client, provider_state: ProviderServer
) -> None:
    admin.post(
        "/v1/indexes/fragile/documents",
        json={"source": "f.txt", "content": "Breakers stop cascades."},
    )
    provider_state.state.inject("chat", Fault("500"), Fault("500"))
    for _ in range(2):  # failureThreshold 2, maxRetries 0
        body = reader.post("/v1/indexes/fragile/query", json={"question": "breakers?"}).json()
        assert body["skipped"] == [{"provider": "flaky", "reason": "server_error"}]
    before = _llm_calls(provider_state)
    body = reader.post("/v1/indexes/fragile/query", json={"question": "breakers?"}).json()
    assert body["skipped"] == [{"provider": "flaky", "reason": "circuit_open"}]
    assert _llm_calls(provider_state) == before  # open: not called at all
    time.sleep(2.2)  # cooldownSeconds 2: one half-open probe, which succeeds and closes it
    body = reader.post("/v1/indexes/fragile/query", json={"question": "breakers?"}).json()
    assert body["provider"] == "flaky" and body["skipped"] == []
    metrics = httpx.get(f"{admin.base_url}/metrics").text
    assert 'ragline_circuit_state{provider="flaky"} 0.0' in metrics


def test_stream_failure_before_first_token_falls_through(
    reader: httpx.Client, runbooks: str, provider_state: ProviderServer
) -> None:
    # Retried before the first token (maxRetries 2), then the next provider.
    provider_state.state.inject("chat", *[Fault("500")] * 3)
    events = _sse(
        reader.post("/v1/indexes/llm/query", json={"question": "disk full?", "stream": True})
    )
    assert events[0] == (
        "start",
        {
            "provider": "extractive",
            "model": "extractive",
            "degraded": False,
            "skipped": [{"provider": "testllm", "reason": "server_error"}],
        },
    )
    assert _llm_calls(provider_state) == 3
    assert events[-1][0] == "done"


def test_stream_failure_after_first_token_ends_with_an_error_event(
    reader: httpx.Client, runbooks: str, provider_state: ProviderServer
) -> None:
    provider_state.state.inject("chat", Fault("midstream", after_chunks=3))
    events = _sse(
        reader.post("/v1/indexes/llm/query", json={"question": "disk full?", "stream": True})
    )
    names = [n for n, _ in events]
    assert names[0] == "start" and events[0][1]["provider"] == "testllm"
    assert names.count("token") == 3
    assert names[-1] == "error" and "done" not in names
    assert events[-1][1]["error"]["code"] == "provider_stream_interrupted"


def test_openai_sdk_against_chat_completions(api_url: str, reader_key: str, runbooks: str) -> None:
    client = openai.OpenAI(base_url=f"{api_url}/v1", api_key=reader_key, max_retries=0)
    done = client.chat.completions.create(
        model="docs", messages=[{"role": "user", "content": "What do I do when the disk is full?"}]
    )
    assert done.choices[0].message.role == "assistant"
    assert "delete old WAL segments" in (done.choices[0].message.content or "")
    extra = done.model_extra or {}
    assert extra["citations"][0]["source"] == runbooks and extra["provider"] == "extractive"

    stream = client.chat.completions.create(
        model="docs",
        stream=True,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "What do I do when the disk is full?"},
        ],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == done.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"

    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="no-such-index", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.body["code"] == "not_found"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=f"{api_url}/v1", api_key="rl_bad", max_retries=0
        ).chat.completions.create(model="docs", messages=[{"role": "user", "content": "x"}])


def test_openai_sdk_streaming_through_openai_provider(
    api_url: str, reader_key: str, runbooks: str, provider_state: ProviderServer
) -> None:
    client = openai.OpenAI(base_url=f"{api_url}/v1", api_key=reader_key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="llm",
            stream=True,
            messages=[{"role": "user", "content": "What do I do when the disk is full?"}],
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("According to the documentation, ") and text.endswith("[1]")
    assert provider_state.state.calls[-1]["body"]["stream"] is True


def test_client_disconnect_cancels_the_upstream_stream(
    api_url: str, reader_key: str, runbooks: str, provider_state: ProviderServer
) -> None:
    provider_state.state.token_delay = 0.05  # a long answer: ~10 s if read to the end
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"{api_url}/v1/indexes/llm/query",
            headers={"Authorization": f"Bearer {reader_key}"},
            json={"question": "What do I do when the disk is full?", "stream": True},
        ) as resp,
    ):
        got = 0
        for line in resp.iter_lines():
            if line.startswith("event: token"):
                got += 1
            if got >= 3:
                break  # the client leaves mid-answer
    deadline = time.monotonic() + 5
    while provider_state.state.streams_cancelled < 1:
        assert time.monotonic() < deadline, "upstream stream was not cancelled"
        time.sleep(0.1)
    assert provider_state.state.streams_finished == 0
