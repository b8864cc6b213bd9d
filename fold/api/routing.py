"""Routes that answer with and without their trailing slash, as SPEC 1's URIs do, and that
refuse every input parameter they do not know (SPEC 9): nothing sent is silently ignored."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Collection
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

from fold.api.deps import READS_ONLY, bucket_caller, commit_on_return, request_params
from fold.auth.policies import Caller
from fold.errors import ALL_ERRORS, Problem, ValidationFailed

Endpoint = Callable[..., Any]
# The names an endpoint reads, or a test for names it reads by pattern (record filters).
Accepts = Collection[str] | Callable[[str], bool]

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


def plain_json(body: Any, status: int = 200) -> JSONResponse:
    """`body` answered as FastAPI would answer it returned, without first walking it
    through `jsonable_encoder` (a measurable part of a busy endpoint's time): an answer of
    plain JSON values renders the same either way; anything else is encoded as before."""
    try:
        return JSONResponse(body, status_code=status)
    except TypeError:
        return JSONResponse(jsonable_encoder(body), status_code=status)


def knows(accepts: Accepts) -> Callable[[str], bool]:
    return accepts if callable(accepts) else frozenset(accepts).__contains__


def unknown_params(names: Collection[str], accepts: Accepts) -> list[Problem]:
    """A problem for each name the endpoint does not read, listing those it does."""
    known = knows(accepts)
    unknown = [n for n in names if not known(n)]
    if not unknown:
        return []
    if callable(accepts):
        hint = "See /docs for this endpoint's parameters."
    elif accepts:
        hint = f"This endpoint takes: {', '.join(sorted(accepts))}."
    else:
        hint = "This endpoint takes no parameters."
    return [Problem(f"'{n}' is not a parameter of this endpoint. {hint}", n) for n in unknown]


def _checker(accepts: Accepts, *, data_body: bool, authenticated: bool) -> Endpoint:
    """A dependency that refuses unknown inputs, after the caller is authenticated."""
    known = knows(accepts)

    async def names(request: Request) -> list[str]:
        if data_body:
            # The body is the record itself; only the query string holds parameters.
            return list(dict.fromkeys(request.query_params.keys()))
        return list(await request_params(request))

    def refuse(found: list[str]) -> None:
        problems = unknown_params(found, accepts)
        if problems:
            raise ValidationFailed.collect(problems)

    if authenticated:

        async def check_for_caller(
            request: Request, caller: Caller = Depends(bucket_caller)
        ) -> None:
            refuse(await names(request))

        check_for_caller.accepts = known  # type: ignore[attr-defined]
        return check_for_caller

    async def check(request: Request) -> None:
        refuse(await names(request))

    check.accepts = known  # type: ignore[attr-defined]
    return check


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


def route(
    router: APIRouter,
    methods: list[str],
    path: str,
    *,
    accepts: Accepts = (),
    data_body: bool = False,
    public: bool = False,
    answer: Any = None,
    reads_only: bool = False,
    **kwargs: Any,
) -> Callable[[Endpoint], Endpoint]:
    """Register `path` and its twin with or without the trailing slash (the twin hidden).

    `accepts` names every query or body parameter the endpoint reads; anything else sent is a
    400 naming it. With `data_body` the body is data (a record), not parameters. A `public`
    path under a bucket (a signed link in an email) is answered without a key. `answer` is
    the model of the success answer, documented (the endpoint returns plain data, so nothing
    is re-validated on the way out; the schemathesis test checks it)."""
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
    authenticated = "{bucket}" in (router.prefix + path) and not public
    check = _checker(accepts, data_body=data_body, authenticated=authenticated)
    kwargs["dependencies"] = [*kwargs.get("dependencies", []), Depends(check)]

    def register(func: Endpoint) -> Endpoint:
        # A sync endpoint runs in a worker thread; its session's commit is done there too.
        handler = func if inspect.iscoroutinefunction(func) else commit_on_return(func)
        if reads_only:
            READS_ONLY.add(handler)
        router.api_route(path, methods=methods, **kwargs)(handler)
        hidden = {**kwargs, "include_in_schema": False}
        hidden.pop("operation_id", None)
        router.api_route(twin, methods=methods, **hidden)(handler)
        return func

    return register


_UNNAMED = re.compile(r"\(\?P<\w+>")


class Router(APIRouter):
    """An APIRouter that answers "no match" at once for a path none of its routes can take.

    The application tries its routers in turn for every request, and FastAPI tries each
    route of each router in turn, with its own bookkeeping per route: a segment count,
    whose router comes eleventh, spent about 15% of its CPU in that. One regular
    expression, the union of this router's routes' own, decides first; a path it matches
    goes through FastAPI's matching unchanged, so precedence and 405s are as before."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            union = self._union()
            if union is not None and union.match(get_route_path(scope)) is None:
                return Match.NONE, {}
        return super().matches(scope)

    def _union(self) -> re.Pattern[str] | None:
        version = self._get_routes_version()
        memo: tuple[int, re.Pattern[str] | None] | None = self.__dict__.get("_fold_union")
        if memo is None or memo[0] != version:
            patterns = [getattr(route, "path_regex", None) for route in self.routes]
            union = None
            if patterns and all(isinstance(p, re.Pattern) for p in patterns):
                # Each route names its parameters; in one expression the names would clash.
                parts = (_UNNAMED.sub("(?:", p.pattern) for p in patterns)  # type: ignore[union-attr]
                union = re.compile("|".join(f"(?:{part})" for part in parts))
            memo = self.__dict__["_fold_union"] = (version, union)
        return memo[1]
