"""One error hierarchy; the web layer turns every FoldError into SPEC 9's JSON shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, and where."""

    description: str
    param: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        if self.param is not None:
            out["param"] = self.param
        return out


class FoldError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "internal_error"
    error: ClassVar[str] = "Internal error"

    def __init__(
        self,
        description: str,
        *,
        param: str | None = None,
        error: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.param = param
        self.message = error or self.error
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "error": self.message,
            "description": self.description,
            "type": self.type,
        }
        if self.param is not None:
            out["param"] = self.param
        return out


class ValidationFailed(FoldError):
    status = 400
    type = "validation_error"
    error = "Invalid request"

    def __init__(
        self,
        description: str,
        *,
        param: str | None = None,
        error: str | None = None,
        problems: list[Problem] | None = None,
    ) -> None:
        super().__init__(description, param=param, error=error)
        self.problems = problems or []

    @classmethod
    def collect(cls, problems: list[Problem]) -> ValidationFailed:
        """One error for many problems: the first names the param, all are listed."""
        first = problems[0]
        if len(problems) == 1:
            return cls(first.description, param=first.param)
        summary = f"{len(problems)} problems; the first: {first.description}"
        return cls(summary, param=first.param, problems=problems)

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.problems:
            out["errors"] = [p.as_dict() for p in self.problems]
        return out


class AuthenticationFailed(FoldError):
    status = 401
    type = "authentication_error"
    error = "Authentication required"

    def __init__(self, description: str) -> None:
        super().__init__(description, headers={"WWW-Authenticate": "Bearer"})


class PermissionDenied(FoldError):
    status = 403
    type = "permission_denied"
    error = "Permission denied"


class SystemSegmentProtected(FoldError):
    status = 403
    type = "system_segment"
    error = "System segment"


class NotFound(FoldError):
    status = 404
    type = "not_found"
    error = "Not found"


class Conflict(FoldError):
    status = 409
    type = "conflict"
    error = "Conflict"


class PreconditionFailed(FoldError):
    status = 412
    type = "precondition_failed"
    error = "Precondition failed"


class PayloadTooLarge(FoldError):
    status = 413
    type = "payload_too_large"
    error = "Payload too large"


class UnsupportedMediaType(FoldError):
    status = 415
    type = "unsupported_media_type"
    error = "Unsupported media type"


class RateLimited(FoldError):
    status = 429
    type = "rate_limited"
    error = "Too many requests"


class Unavailable(FoldError):
    """The database is busy: a lock not had in time, or a query past its time limit."""

    status = 503
    type = "unavailable"
    error = "Unavailable"

    def __init__(self, description: str, *, retry_after: int = 1) -> None:
        super().__init__(description, headers={"Retry-After": str(retry_after)})


class MethodNotAllowed(FoldError):
    status = 405
    type = "method_not_allowed"
    error = "Method not allowed"


ALL_ERRORS: tuple[type[FoldError], ...] = (
    ValidationFailed,
    AuthenticationFailed,
    PermissionDenied,
    SystemSegmentProtected,
    NotFound,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    Unavailable,
    FoldError,
)
