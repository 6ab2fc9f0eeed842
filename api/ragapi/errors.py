"""The domain's error hierarchy.

Domain code raises these; one exception handler in the app maps every one of them to
the single error shape ``{"error": {"code", "message", "request_id"}}``. The boundary
(store, providers, redis) translates library exceptions into these once.
"""

from __future__ import annotations


class RaglineError(Exception):
    """Base of every error a client may see. ``code`` is stable and machine-readable."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(RaglineError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(RaglineError):
    status_code = 422
    code = "validation_error"


class Unauthenticated(RaglineError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(RaglineError):
    status_code = 403
    code = "forbidden"


class NotFound(RaglineError):
    status_code = 404
    code = "not_found"


class Conflict(RaglineError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(RaglineError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(RaglineError):
    status_code = 415
    code = "unsupported_media_type"


class EmptyDocument(RaglineError):
    status_code = 422
    code = "empty_document"


class InvalidEncoding(RaglineError):
    status_code = 422
    code = "invalid_encoding"


class UnparseableDocument(RaglineError):
    """The bytes claim a format but cannot be read as it (malformed PDF, broken DOCX)."""

    status_code = 422
    code = "unparseable_document"


class EncryptedDocument(RaglineError):
    status_code = 422
    code = "encrypted_document"


class RateLimited(RaglineError):
    status_code = 429
    code = "rate_limited"


class BudgetExceeded(RaglineError):
    status_code = 429
    code = "budget_exceeded"


class DependencyUnavailable(RaglineError):
    """A dependency (Postgres, Redis, a provider) cannot serve right now; retry later."""

    status_code = 503
    code = "dependency_unavailable"


class ProviderError(RaglineError):
    """Every provider in the pool failed; the message says which and why."""

    status_code = 502
    code = "provider_error"
