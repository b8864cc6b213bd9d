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


def without_phantoms(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document without the 422 FastAPI lists for every validated parameter:
    Fold answers a malformed input with a 400 in SPEC 9's shape instead."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            operation.get("responses", {}).pop("422", None)
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return schema


READS_ONLY: set[Endpoint] = set()
"""Endpoints that only read although their method is POST (previews): their session does
not queue for the write lock."""


def route(
    router: APIRouter,
    methods: list[str],
    path: str,
    *,
    answer: Any = None,
    reads_only: bool = False,
    **kwargs: Any,
) -> Callable[[Endpoint], Endpoint]:
    """Register `path` and its twin with or without the trailing slash (the twin hidden).
    `answer` is the model of the success answer, documented (the endpoint returns plain
    data, so nothing is re-validated on the way out; the schemathesis test checks it)."""
    twin = path[:-1] if path.endswith("/") else path + "/"
    if path == "":
        twin = "/"
    responses = dict(kwargs.get("responses") or error_responses(400, 401, 403, 404, 429))
    # Every endpoint reads the database: busy, or a query past its time limit.
    responses.update(error_responses(503))
    if answer is not None:
        kwargs["response_model"] = None
        responses[kwargs.get("status_code") or 200] = {"model": answer, "description": "OK"}
    kwargs["responses"] = responses

    def register(func: Endpoint) -> Endpoint:
        if reads_only:
            READS_ONLY.add(func)
        router.api_route(path, methods=methods, **kwargs)(func)
        hidden = {**kwargs, "include_in_schema": False}
        hidden.pop("operation_id", None)
        router.api_route(twin, methods=methods, **hidden)(func)
        return func

    return register
