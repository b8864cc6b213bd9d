"""The one place errors become responses, in SPEC 9's shape."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from fold.auth import service as auth
from fold.db.engine import busy_reason
from fold.errors import (
    FoldError,
    MethodNotAllowed,
    NotFound,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)

log = logging.getLogger("fold.web")


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def error_response(request: Request, error: FoldError) -> JSONResponse:
    # The rate-limit headers are added by the middleware, as on every response.
    headers = {**error.headers, "X-Request-ID": _request_id(request)}
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def _param(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


async def on_fold_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FoldError)
    return error_response(request, exc)


async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid input"}
    param = _param(first.get("loc", ()))
    return error_response(
        request, ValidationFailed(f"{param}: {first.get('msg', 'invalid input')}", param=param)
    )


# Paths under a bucket: an unserved one still needs a key first (401 before 404).
BUCKET_PATH = re.compile(r"^/(?:segments/v2|api/v2|audit/v2)/([^/]+)(?:/|$)")


def _bucket_access(request: Request, bucket: str) -> None:
    """Raises the 401 or 403 that a served path under this bucket would answer."""
    factory = request.app.state.sessions
    with factory() as session:
        key = auth.authenticate(session, request.headers.get("authorization"))
        auth.caller_for(session, key, bucket)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error: FoldError
    found = BUCKET_PATH.match(request.url.path)
    if exc.status_code in (404, 405) and found and found.group(1) != "schema":
        try:
            await run_in_threadpool(_bucket_access, request, found.group(1))
        except FoldError as refused:
            return error_response(request, refused)
    if exc.status_code == 404:
        error = NotFound(f"Nothing is served at {request.url.path}. See /docs for the API.")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
    elif exc.status_code == 415:
        error = UnsupportedMediaType(str(exc.detail))
    else:
        error = ValidationFailed(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
    return error_response(request, error)


def busy_database(exc: DBAPIError) -> Unavailable | None:
    reason = busy_reason(exc)
    if reason == "lock":
        return Unavailable("The database is busy with other writes; try again shortly.")
    if reason == "timeout":
        return Unavailable(
            "The query ran past the server's time limit; narrow it or try again later.",
            retry_after=5,
        )
    return None


async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if busy := busy_database(exc):
        log.warning("request %s: %s", _request_id(request), busy.description)
        return error_response(request, busy)
    return await on_unexpected(request, exc)


async def on_pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    """No database connection came free in the pool's time: the server is overloaded, not
    broken; the client may try again."""
    busy = Unavailable("The server is busy: no database connection came free; try again shortly.")
    log.warning("request %s: %s", _request_id(request), exc)
    return error_response(request, busy)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = _request_id(request)
    log.exception("unhandled error in request %s", request_id)
    error = FoldError(
        f"Something went wrong on our side. Quote request id {request_id} when reporting it."
    )
    return error_response(request, error)


def install(app: FastAPI) -> None:
    app.add_exception_handler(FoldError, on_fold_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(PoolTimeout, on_pool_timeout)
    app.add_exception_handler(Exception, on_unexpected)
