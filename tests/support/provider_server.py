"""A test server that speaks the OpenAI HTTP wire protocol, with injectable faults.

It answers chat completions (plain and streamed, with ``usage``) and embeddings. Faults
are queued per endpoint and consumed one per request: latency, 429 with Retry-After,
500, a reset connection, a stream cut after N chunks, malformed JSON. It runs uvicorn in
a background thread on 127.0.0.1 so tests can steer it directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Fault:
    kind: str  # latency | 429 | 500 | 400 | reset | midstream | malformed
    seconds: float = 0.0  # latency, or Retry-After for 429
    after_chunks: int = 2  # midstream: chunks sent before the cut


@dataclass
class ServerState:
    faults: dict[str, deque[Fault]] = field(
        default_factory=lambda: {"chat": deque(), "embeddings": deque()}
    )
    calls: list[dict[str, Any]] = field(default_factory=list)
    dimensions: int = 384
    base_latency: float = 0.0
    token_delay: float = 0.0  # between streamed chunks
    streams_finished: int = 0
    streams_cancelled: int = 0  # the client (Ragline) went away mid-stream

    def inject(self, endpoint: str, *faults: Fault) -> None:
        self.faults[endpoint].extend(faults)

    def reset(self) -> None:
        for q in self.faults.values():
            q.clear()
        self.calls.clear()
        self.base_latency = 0.0
        self.token_delay = 0.0
        self.streams_finished = self.streams_cancelled = 0


def answer_for(messages: list[dict[str, Any]]) -> str:
    """Deterministic: the first sentence of source [1], cited."""
    prompt = str(messages[-1].get("content", "")) if messages else ""
    m = re.search(r"\[1\] \(source: [^)]*\)\n(.+?)(?:\n\n\[2\]|\n\nQuestion:)", prompt, re.S)
    if not m:
        return "I do not know."
    body = m.group(1).strip().split("\n\n")[-1]
    first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
    return f"According to the documentation, {first} [1]"


def _embed(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(float).tolist()


def _reset() -> Response:
    """Headers, then the connection drops: uvicorn closes it when the body raises, so the
    client sees a broken connection, not an HTTP error."""

    async def body() -> Any:
        raise ConnectionResetError("injected reset")
        yield b""  # pragma: no cover - makes this an async generator

    return StreamingResponse(body(), media_type="application/json")


def build_app(state: ServerState) -> Starlette:
    async def take_fault(endpoint: str) -> Fault | None:
        if state.base_latency:
            await asyncio.sleep(state.base_latency)
        q = state.faults[endpoint]
        fault = q.popleft() if q else None
        if fault and fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
            return None
        return fault

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(
            {"error": {"message": message, "type": "test", "code": status}},
            status_code=status,
            headers=headers,
        )

    async def chat(request: Request) -> Response:
        body = await request.json()
        state.calls.append({"endpoint": "chat", "headers": dict(request.headers), "body": body})
        fault = await take_fault("chat")
        if fault and fault.kind == "429":
            return error(429, "rate limited", {"Retry-After": str(fault.seconds)})
        if fault and fault.kind in ("500", "400"):
            return error(int(fault.kind), f"injected {fault.kind}")
        if fault and fault.kind == "reset":
            return _reset()
        text = answer_for(body.get("messages", []))
        words = re.findall(r"\S+\s*", text)
        usage = {
            "prompt_tokens": sum(
                len(str(m.get("content", "")).split()) for m in body.get("messages", [])
            ),
            "completion_tokens": len(words),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        cid, created, model = "chatcmpl-test", int(time.time()), body.get("model", "test")
        if fault and fault.kind == "malformed":
            return Response('{"id": "x", "choices": [', media_type="application/json")
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )

        async def events() -> Any:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                return (
                    "data: "
                    + json.dumps(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": model,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                        }
                    )
                    + "\n\n"
                )

            try:
                yield chunk({"role": "assistant", "content": ""})
                for n, w in enumerate(words * (50 if state.token_delay else 1)):
                    if fault and fault.kind == "midstream" and n >= fault.after_chunks:
                        raise ConnectionResetError("injected mid-stream disconnect")
                    yield chunk({"content": w})
                    await asyncio.sleep(state.token_delay)
            except (asyncio.CancelledError, GeneratorExit):
                state.streams_cancelled += 1
                raise
            state.streams_finished += 1
            yield chunk({}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                yield (
                    "data: "
                    + json.dumps(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": model,
                            "choices": [],
                            "usage": usage,
                        }
                    )
                    + "\n\n"
                )
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def embeddings(request: Request) -> Response:
        body = await request.json()
        state.calls.append(
            {"endpoint": "embeddings", "headers": dict(request.headers), "body": body}
        )
        fault = await take_fault("embeddings")
        if fault and fault.kind == "429":
            return error(429, "rate limited", {"Retry-After": str(fault.seconds)})
        if fault and fault.kind in ("500", "400"):
            return error(int(fault.kind), f"injected {fault.kind}")
        if fault and fault.kind == "reset":
            return _reset()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return JSONResponse(
            {
                "object": "list",
                "model": body.get("model"),
                "data": [
                    {"object": "embedding", "index": i, "embedding": _embed(t, state.dimensions)}
                    for i, t in enumerate(inputs)
                ],
                "usage": {
                    "prompt_tokens": sum(len(t.split()) for t in inputs),
                    "total_tokens": sum(len(t.split()) for t in inputs),
                },
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )


class ProviderServer:
    """Runs the app on 127.0.0.1:<free port> in a thread; ``url`` is the base URL."""

    def __init__(self) -> None:
        self.state = ServerState()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self._server = uvicorn.Server(
            uvicorn.Config(
                build_app(self.state),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ProviderServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("provider test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
