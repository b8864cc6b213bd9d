"""ASGI middleware: a request id on every response, a cap on body size, a cap on the
requests a process works on at once, and the heap given back when the process goes quiet."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
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


class Admission:
    """Lets at most `at_once` requests into the application at a time, and of those at
    most `running` work unhindered; the rest wait their turn here, on the event loop,
    holding nothing, first come first served.

    `at_once` keeps a burst from stalling. A request takes a database connection in its
    key check (a worker thread) and keeps it until its endpoint (another worker thread) is
    done. With more requests in flight than there are connections or threads, every
    connection could be held by a request waiting for a thread while every thread waits
    for a connection (or, on SQLite, for the write lock that a request waiting for a
    thread holds) until the pool's or the lock's timeout: seconds of stall, then errors.
    Admitting fewer requests than either keeps one of each free for whoever holds the
    other. `at_once` is worked out on the first request, when the thread limiter of the
    running loop can be read: fewer than its threads and than `connections` (what the pool
    can lend, less what the process's own background threads use). A request holds its
    turn until its response is sent: a streamed export reads the database while it
    streams.

    `running` keeps a busy process fast. Its Python runs one thread at a time, so twenty
    requests in its threads at once take no less time than four, and more CPU: each
    round trip to the database hands the interpreter lock to another of them. Measured
    with 20 clients counting and paging 50 tenants' segments on PostgreSQL (one process,
    docs/columns.md): 4.6 ms of CPU per request with 36 running, 3.9 with 4, and a p95 of
    126 ms against 93. A request still working after `long_after` seconds (a streamed
    export, a count that reads SQL) gives its lane back and carries on, so slow requests
    cannot hold up quick ones for longer than that."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        connections: Callable[[], int],
        running: int = 4,
        long_after: float = 0.1,
    ) -> None:
        self.app = app
        self.connections = connections
        self.running = running
        self.long_after = long_after
        self.turns: anyio.Semaphore | None = None
        self.lanes: anyio.Semaphore | None = None

    def at_once(self) -> int:
        threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
        return max(1, min(threads - 1, self.connections()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.turns is None or self.lanes is None:
            at_once = self.at_once()
            self.turns = anyio.Semaphore(at_once)
            self.lanes = anyio.Semaphore(max(1, min(self.running, at_once)))
        lanes = self.lanes
        async with self.turns:
            await lanes.acquire()
            held = True

            def give_back() -> None:
                nonlocal held
                if held:
                    held = False
                    lanes.release()

            timer = asyncio.get_running_loop().call_later(self.long_after, give_back)
            try:
                await self.app(scope, receive, send)
            finally:
                timer.cancel()
                give_back()


class GiveBackWhenQuiet:
    """Once no request has been in flight for `after` seconds, calls `trim` (glibc's
    `malloc_trim`, `web.prefork.heap_trimmer`): the arrays a count allocated and freed go
    back to the system instead of staying in the process's heap until its next count.
    Measured at a million people, four serving processes that had counted every suite
    segment held 129 MB of heap each, and 100 MB trimmed (docs/columns.md). Under steady
    load the process is never quiet and never trims: a trim takes 0.3-4 ms, and the pages
    it gives back are faulted in again by the next count."""

    def __init__(self, app: ASGIApp, *, trim: Callable[[], object], after: float = 0.2) -> None:
        self.app = app
        self.trim = trim
        self.after = after
        self.in_flight = 0
        self.started = 0  # requests begun: tells a quiet spell from one that was broken

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        self.started += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                asyncio.get_running_loop().call_later(self.after, self._quiet, self.started)

    def _quiet(self, started: int) -> None:
        if self.in_flight == 0 and self.started == started:
            self.trim()
