"""HTTP plumbing: request ids, access logs and RED metrics (a pure ASGI middleware, so
streaming responses are measured to their last byte), the body-size limit, and the one
error shape for every error."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragapi.errors import PayloadTooLarge, RaglineError
from ragapi.metrics import HTTP_DURATION, HTTP_REQUESTS
from ragapi.server_span import UNTRACED_PATHS, ServerSpan
from ragapi.tracing import exemplar

log = structlog.get_logger("ragapi.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def request_id_of(scope: Scope) -> str:
    rid: str = scope.get("state", {}).get("request_id", "")
    return rid


def error_response(
    status: int, code: str, message: str, request_id: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": request_id}},
        status_code=status,
        headers={**(headers or {}), "X-Request-ID": request_id},
    )


class RequestContextMiddleware:
    """Assigns the request id, binds it to every log line, makes the request's server
    span, and records RED metrics with the route template (never the raw path) as the
    label."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        started = time.perf_counter()
        status = 500
        error: BaseException | None = None
        span = ServerSpan.start(scope)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", rid.encode()))
                decision = scope["state"].get("ratelimit")
                if decision is not None and not any(
                    k.lower() == b"ratelimit-limit" for k, _ in headers
                ):
                    headers.extend(
                        (k.lower().encode(), v.encode()) for k, v in decision.headers().items()
                    )
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            error = exc
            raise
        finally:
            elapsed = time.perf_counter() - started
            template = getattr(scope.get("route"), "path", None)
            route = template or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(elapsed, exemplar=exemplar())
            if route not in UNTRACED_PATHS:  # nor logged
                log.info(
                    "http_request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.clear_contextvars()
            if span is not None:  # last: the exemplar and the log line carry its ids
                span.finish(template, status, error)


class BodyLimitMiddleware:
    """Refuses bodies over the limit before reading them (Content-Length) or while
    reading (chunked), so an oversized upload never reaches the parsers."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"request body exceeds {self.max_bytes} bytes",
            request_id_of(scope),
            {"Connection": "close"},
        )
        await response(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    def rid(request: Request) -> str:
        return request_id_of(request.scope)

    @app.exception_handler(RaglineError)
    async def _domain(request: Request, exc: RaglineError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("request_failed", code=exc.code, error=exc.message)
        principal = request.scope.get("state", {}).get("principal")
        if principal is not None and exc.status_code in (403, 404):
            from ragapi import audit

            route = getattr(request.scope.get("route"), "path", None) or "unmatched"
            await audit.record(
                request.app.state.ragline.pool,
                principal,
                action=f"{request.method} {route}",
                target=request.url.path,
                outcome="denied" if exc.status_code == 403 else "not_found",
                request_id=rid(request),
                detail={"code": exc.code},
            )
        return error_response(exc.status_code, exc.code, exc.message, rid(request), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", _validation_message(exc), rid(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        headers: dict[str, Any] = dict(exc.headers or {})
        return error_response(exc.status_code, code, str(exc.detail), rid(request), headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The client gets an id to quote, never a stack trace; the log has the details.
        log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        return error_response(500, "internal_error", "internal error", rid(request))
