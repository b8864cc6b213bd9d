"""The login call: a username and password for an API key."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from fold.api.deps import DbSession, Params, client_address
from fold.api.routing import Router, error_responses, route
from fold.auth import service
from fold.auth.schemas import LoginAnswer
from fold.auth.throttle import LoginThrottle
from fold.errors import ValidationFailed

router = Router(prefix="/api/v1", tags=["auth"])


@route(
    router,
    ["POST"],
    "/auth/",
    answer=LoginAnswer,
    accepts=("username", "password"),
    responses=error_responses(400, 403, 415, 429),
)
def login(request: Request, session: DbSession, params: Params) -> dict[str, Any]:
    """Exchange `username` and `password` (JSON or form) for an API key. Repeated failures
    for a username or from an address answer 429 with `Retry-After` for a while."""
    username, password = params.get("username"), params.get("password")
    for name, value in (("username", username), ("password", password)):
        if not isinstance(value, str) or not value:
            raise ValidationFailed(f"'{name}' is required.", param=name)
    assert isinstance(username, str) and isinstance(password, str)
    throttle: LoginThrottle = request.app.state.login_throttle
    return {
        "api_key": service.login_throttled(
            session,
            throttle,
            username=username,
            password=password,
            address=client_address(request),
        )
    }
