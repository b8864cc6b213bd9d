"""Routes that answer with and without their trailing slash, as SPEC 1's URIs do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from fold.errors import ALL_ERRORS

Endpoint = Callable[..., Any]

OBJECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors an endpoint can answer, all in SPEC 9's shape."""
    shape = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "description": {"type": "string"},
            "type": {"type": "string"},
            "param": {"type": "string"},
        },
        "required": ["error", "description", "type"],
    }
    known = {e.status: e for e in ALL_ERRORS}
    return {
        s: {
            "description": f"{known[s].type}: {known[s].error}" if s in known else "Error",
            "content": {"application/json": {"schema": shape}},
        }
        for s in statuses
    }


def route(
    router: APIRouter, methods: list[str], path: str, **kwargs: Any
) -> Callable[[Endpoint], Endpoint]:
    """Register `path` and its twin with or without the trailing slash (the twin hidden)."""
    twin = path[:-1] if path.endswith("/") else path + "/"
    if path == "":
        twin = "/"
    kwargs.setdefault("responses", error_responses(400, 401, 403, 404, 429))

    def register(func: Endpoint) -> Endpoint:
        router.api_route(path, methods=methods, **kwargs)(func)
        hidden = {**kwargs, "include_in_schema": False}
        hidden.pop("operation_id", None)
        router.api_route(twin, methods=methods, **hidden)(func)
        return func

    return register
