"""The answer cache (Redis, keyed by tenant, index content version, normalised question
and parameters) and conversation memory (last N turns per tenant session, 30-day TTL)."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest
import redis

from ragapi.embedded import EmbeddedStack
from ragapi.memory import TTL_SECONDS, session_key
from tests.conftest import ApiProcess
from tests.support.provider_server import ProviderServer

pytestmark = pytest.mark.integration


def _ask(c: httpx.Client, question: str, index: str = "docs", **extra: object) -> httpx.Response:
    return c.post(f"/v1/indexes/{index}/query", json={"question": question, **extra})


def test_hit_after_miss_and_invalidation_on_every_write(admin: httpx.Client) -> None:
    token = uuid.uuid4().hex[:10]
    made = admin.post(
        "/v1/indexes/docs/documents",
        json={"source": f"c-{token}.txt", "content": f"The cache colour {token} is teal."},
    ).json()
    q = f"What is the cache colour {token}?"
    first = _ask(admin, q)
    assert first.headers["x-ragline-cache"] == "miss"
    again = _ask(admin, f"  what is the CACHE colour {token}  ")  # normalised: same question
    assert again.headers["x-ragline-cache"] == "hit" and again.json() == first.json()
    assert _ask(admin, q, top_k=3).headers["x-ragline-cache"] == "miss"  # parameters matter
    # update: old answers unreachable at once
    admin.put(
        f"/v1/indexes/docs/documents/{made['id']}",
        json={"content": f"The cache colour {token} is red."},
    )
    after_update = _ask(admin, q)
    assert (
        after_update.headers["x-ragline-cache"] == "miss" and "red" in after_update.json()["answer"]
    )
    assert _ask(admin, q).headers["x-ragline-cache"] == "hit"
    # an upload anywhere in the index bumps its version too
    admin.post(
        "/v1/indexes/docs/documents", json={"source": f"other-{token}.txt", "content": "Unrelated."}
    )
    assert _ask(admin, q).headers["x-ragline-cache"] == "miss"
    admin.delete(f"/v1/indexes/docs/documents/{made['id']}")
    gone = _ask(admin, q)
    assert gone.headers["x-ragline-cache"] == "miss" and "red" not in gone.json()["answer"]


def test_cache_never_crosses_tenants(api: ApiProcess) -> None:
    token = uuid.uuid4().hex[:10]
    a = httpx.Client(
        base_url=api.url,
        headers={"Authorization": f"Bearer {api.create_key('admin', f'a-{token}')}"},
    )
    b = httpx.Client(
        base_url=api.url,
        headers={"Authorization": f"Bearer {api.create_key('admin', f'b-{token}')}"},
    )
    b.post(
        "/v1/indexes/docs/documents",
        json={"source": "s.txt", "content": f"The vault code {token} is 4711."},
    )
    q = f"What is the vault code {token}?"
    assert "4711" in _ask(b, q).json()["answer"]
    assert _ask(b, q).headers["x-ragline-cache"] == "hit"
    theirs = _ask(a, q)
    assert theirs.headers["x-ragline-cache"] == "miss" and "4711" not in theirs.text


def test_failed_over_answers_are_not_cached(
    admin: httpx.Client, provider_state: ProviderServer
) -> None:
    from tests.support.provider_server import Fault

    q = f"What do runbooks say {uuid.uuid4().hex[:6]}?"
    provider_state.state.inject("chat", *[Fault("500")] * 3)
    assert _ask(admin, q, index="llm").json()["provider"] == "extractive"
    healed = _ask(admin, q, index="llm")
    assert healed.headers["x-ragline-cache"] == "miss" and healed.json()["provider"] == "testllm"
    assert _ask(admin, q, index="llm").headers["x-ragline-cache"] == "hit"


def test_memory_is_prepended_kept_trimmed_and_forgotten(
    api: ApiProcess, admin: httpx.Client, provider_state: ProviderServer, stack: EmbeddedStack
) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    admin.post(
        "/v1/indexes/llm/documents", json={"source": "mem.txt", "content": "Memory keeps turns."}
    )
    for n in range(3):
        r = _ask(admin, f"question number {n}", index="llm", session_id=session)
        assert r.status_code == 200
        if n:  # with history the answer depends on the conversation: never cached
            assert r.headers.get("x-ragline-cache") is None
    prompt = provider_state.state.calls[-1]["body"]["messages"]
    roles = [m["role"] for m in prompt]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert (
        prompt[1]["content"] == "question number 0" and prompt[3]["content"] == "question number 1"
    )
    stored = admin.get(f"/v1/sessions/{session}").json()
    assert [t["role"] for t in stored["turns"]] == ["user", "assistant"] * 3
    assert stored["turns"][4]["content"] == "question number 2"
    r = redis.Redis.from_url(stack.redis.url)
    assert 0 < r.ttl(session_key("default", session)) <= TTL_SECONDS
    # the OpenAI endpoint shares it (extra_body) and streaming appends too
    client = openai.OpenAI(
        base_url=f"{api.url}/v1", api_key=admin.headers["authorization"].split()[1], max_retries=0
    )
    list(
        client.chat.completions.create(
            model="llm",
            stream=True,
            messages=[{"role": "user", "content": "and now?"}],
            extra_body={"session_id": session},
        )
    )
    assert admin.get(f"/v1/sessions/{session}").json()["turns"][-2]["content"] == "and now?"
    # another tenant cannot see or delete it
    other = httpx.Client(
        base_url=api.url, headers={"Authorization": f"Bearer {api.create_key('admin', 'nosy')}"}
    )
    assert other.get(f"/v1/sessions/{session}").status_code == 404
    assert other.delete(f"/v1/sessions/{session}").status_code == 404
    assert admin.delete(f"/v1/sessions/{session}").status_code == 204
    assert admin.get(f"/v1/sessions/{session}").status_code == 404


def test_memory_keeps_only_the_last_turns(admin: httpx.Client, stack: EmbeddedStack) -> None:
    session = f"long-{uuid.uuid4().hex[:8]}"
    for n in range(23):
        _ask(admin, f"turn {n}", session_id=session)
    turns = admin.get(f"/v1/sessions/{session}").json()["turns"]
    assert len(turns) == 40  # 20 turns of question and answer
    assert turns[0]["content"] == "turn 3"
