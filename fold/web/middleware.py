"""ASGI middleware: a request id on every response, and a cap on body size."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fold.errors import FoldError, PayloadTooLarge, ValidationFailed
from fold.jsontext import text_problem

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
IMPORT_PATH_RE = re.compile(r"^/api/v2/[^/]+/[^/]+/import/?$")


def error_message(error: FoldError, request_id: str) -> tuple[Message, Message]:
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    start: Message = {"type": "http.response.start", "status": error.status, "headers": headers}
    return start, {"type": "http.response.body", "body": body}


class _TooLarge(Exception):
    pass


def url_problem(scope: Scope) -> ValidationFailed | None:
    """NUL or a lone surrogate in the path or the query string: PostgreSQL cannot hold
    either, so both databases refuse them here alike, before any endpoint reads them."""
    if problem := text_problem(scope["path"], "path"):
        return ValidationFailed(problem.description, param="path")
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if problem := text_problem(key, "query"):
            return ValidationFailed(problem.description, param="query")
        if problem := text_problem(value, key):
            return ValidationFailed(problem.description, param=key)
    return None


class RequestContext:
    """Gives each request an id (the client's X-Request-ID when sane), puts it and any
    rate-limit headers on the response, and refuses bodies over the configured size."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_import: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_import = max_import

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        limit = self.max_import if IMPORT_PATH_RE.match(scope["path"]) else self.max_body
        too_large = PayloadTooLarge(
            f"The body is larger than the {limit:,} bytes this endpoint accepts.",
        )

        if refused := url_problem(scope):
            for message in error_message(refused, request_id):
                await send(message)
            return

        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            for message in error_message(too_large, request_id):
                await send(message)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                ours = {b"x-request-id": request_id.encode()}
                for name, value in state.get("extra_headers", {}).items():
                    ours[name.lower().encode()] = value.encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
                message = {**message, "headers": headers + list(ours.items())}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _TooLarge:
            if response_started:
                raise
            for message in error_message(too_large, request_id):
                await send(message)
