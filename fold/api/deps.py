"""Request dependencies: the database session, the caller, and reading inputs."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

import anyio.to_thread
from anyio import CancelScope, CapacityLimiter
from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session, sessionmaker

from fold.api.ratelimit import RateLimiter
from fold.auth import service as auth
from fold.auth import sessions
from fold.auth.policies import Caller
from fold.db.engine import unit_of_work
from fold.errors import PermissionDenied, RateLimited, UnsupportedMediaType, ValidationFailed
from fold.jsontext import JsonRefused, loads, text_problem

READS_ONLY: set[Any] = set()
"""Endpoints that only read although their method is POST (previews): their session does
not queue for the write lock. `fold.api.routing.route(reads_only=True)` adds to it."""


async def db_session(request: Request) -> AsyncIterator[Session]:
    """Commits when the endpoint returns, rolls back when it raises; services never commit.

    Making the session does no I/O, so it is made here, on the event loop, and so is its
    end when there is nothing left to do (an endpoint of `fold.api.routing.route` commits
    in the worker thread it runs in); a commit, rollback or after-commit step goes to a
    worker thread. (A plain generator would cost two thread hand-overs: a measurable part
    of a small write.)"""
    writes = request.method not in ("GET", "HEAD", "OPTIONS") and (
        request.scope.get("endpoint") not in READS_ONLY
    )
    state = request.app.state
    factory: sessionmaker[Session] = state.write_sessions if writes else state.sessions
    work = unit_of_work(factory)
    session = work.__enter__()
    # Ended as FastAPI ends a plain generator's context: shielded from cancellation, and
    # with a limiter of its own, so that ending never waits for a worker thread that may
    # itself be waiting for this session's connection.
    try:
        yield session
    except BaseException as exc:
        with CancelScope(shield=True):
            suppressed = await anyio.to_thread.run_sync(
                work.__exit__, type(exc), exc, exc.__traceback__, limiter=CapacityLimiter(1)
            )
        if not suppressed:
            raise
    else:
        if session.in_transaction() or session.info.get("after_commit"):
            with CancelScope(shield=True):
                await anyio.to_thread.run_sync(
                    work.__exit__, None, None, None, limiter=CapacityLimiter(1)
                )
        else:
            work.__exit__(None, None, None)  # nothing begun, nothing to run: no I/O


def commit_on_return(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A sync endpoint that, once it returns, commits its request's session itself, in the
    worker thread it already runs in (`db_session` then has nothing to hand over). Its
    errors, the commit's too, end the session as before: rolled back."""

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        answer = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session) and value.in_transaction():
                value.commit()
        return answer

    return run


DbSession = Annotated[Session, Depends(db_session, scope="function")]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authorization_of(request: Request) -> str | None:
    """The bearer key, or the web interface's session cookie standing in for it.

    A cookie is sent by the browser whatever page asks, so a cookie-borne request that
    changes something must also carry the session's CSRF token."""
    header = request.headers.get("authorization")
    if header:
        return header
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    if not cookie:
        return None
    if request.method not in sessions.SAFE_METHODS and not sessions.csrf_ok(
        cookie, request.headers.get(sessions.CSRF_HEADER)
    ):
        raise PermissionDenied(
            "This request came with the web session's cookie but without its CSRF token.",
            error="CSRF token missing or wrong",
        )
    return f"Bearer {cookie}"


def bucket_caller(
    request: Request,
    session: DbSession,
    bucket: Annotated[str, Path(description="The bucket (tenant) name")],
) -> Caller:
    key, policy = auth.authenticate_in(session, authorization_of(request), bucket)
    limiter: RateLimiter = request.app.state.rate_limiter
    verdict = limiter.hit(key.id)
    request.state.extra_headers = verdict.headers()
    if not verdict.allowed:
        raise RateLimited(
            f"This key made more than {verdict.limit} requests this minute; "
            f"try again in {verdict.reset} s."
        )
    return auth.caller_with(key, bucket, policy)


CallerDep = Annotated[Caller, Depends(bucket_caller)]


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def parse_json(raw: bytes) -> Any:
    try:
        return loads(raw)
    except JsonRefused as exc:
        raise ValidationFailed(exc.problem.description, param=exc.problem.param) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise ValidationFailed(
            f"The body is not valid JSON{where}.", param="body", error="Malformed JSON"
        ) from None


async def json_body(request: Request) -> Any:
    """The JSON body; 400 when absent or malformed, 415 for another media type."""
    kind = _content_type(request)
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            f"Send the body as application/json, not {kind}.", param="content-type"
        )
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed("A JSON body is needed.", param="body")
    return parse_json(raw)


JsonBody = Annotated[Any, Depends(json_body)]


def _merged(items: list[tuple[str, str]]) -> dict[str, Any]:
    """Pairs as a dict; a key given more than once becomes a list (`?tags=a&tags=b`)."""
    out: dict[str, Any] = {}
    for key, value in items:
        if problem := text_problem(key, "body") or text_problem(value, key):
            raise ValidationFailed(problem.description, param=problem.param)
        if key in out:
            previous = out[key]
            out[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[key] = value
    return out


async def request_params(request: Request) -> dict[str, Any]:
    """Inputs from the query string, a form body or a JSON object body, merged.

    The reference API documents its inputs as query parameters and clients send all three,
    so every endpoint reads them alike; a body value wins over the query string."""
    params: dict[str, Any] = _merged(request.query_params.multi_items())
    kind = _content_type(request)
    raw = await request.body()
    if not raw.strip():
        return params
    if kind in ("", "application/json") or kind.endswith("+json"):
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise ValidationFailed("The JSON body must be an object.", param="body")
        params.update(body)
    elif kind == "application/x-www-form-urlencoded":
        params.update(_merged(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)))
    elif kind == "multipart/form-data":
        form = await request.form()
        params.update(_merged([(k, v) for k, v in form.multi_items() if isinstance(v, str)]))
    else:
        raise UnsupportedMediaType(
            f"Send inputs as JSON, a form or the query string, not {kind}.", param="content-type"
        )
    return params


Params = Annotated[dict[str, Any], Depends(request_params)]
