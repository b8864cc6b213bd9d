"""The login call: a username and password for an API key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from fold.auth import service
from fold.auth.schemas import LoginAnswer
from fold.errors import ValidationFailed
from fold.web.deps import DbSession, Params
from fold.web.routing import error_responses, route

router = APIRouter(prefix="/api/v1", tags=["auth"])


@route(
    router,
    ["POST"],
    "/auth/",
    answer=LoginAnswer,
    accepts=("username", "password"),
    responses=error_responses(400, 403, 415),
)
def login(session: DbSession, params: Params) -> dict[str, Any]:
    """Exchange `username` and `password` (JSON or form) for an API key."""
    username, password = params.get("username"), params.get("password")
    for name, value in (("username", username), ("password", password)):
        if not isinstance(value, str) or not value:
            raise ValidationFailed(f"'{name}' is required.", param=name)
    assert isinstance(username, str) and isinstance(password, str)
    return {"api_key": service.login(session, username=username, password=password)}
