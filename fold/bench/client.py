"""The load the bench's concurrent sections put on a server: clients that each keep one
HTTP/1.1 connection open, as a script with a session does.

The clients run on the machine they measure, so what they cost is taken from the server.
Python's own `http.client` costs about a third of httpx's CPU per request (0.16 ms against
0.49 ms a small POST, measured here one after another), and sixteen or twenty of them in
threads of one process also share its interpreter lock. Other sections, which time one
request at a time, keep httpx."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


class Refused(Exception):
    """An answer that was not a success: its status and the start of its body."""


class KeepAlive:
    """One connection to `base`, opened again whenever the server closed it (after a
    `Connection: close`, or when it dropped an idle one), with `headers` on every
    request. Not for use by two threads at once."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float = 120) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"the bench's clients speak plain HTTP to a host: {base!r}")
        self.connection = http.client.HTTPConnection(
            parts.hostname, parts.port or 80, timeout=timeout
        )
        self.headers = headers

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of `method path` (with `body` as JSON); `Refused` unless 2xx."""
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=data, headers=headers)
                answer = self.connection.getresponse()
                raw = answer.read()
                break
            except (http.client.HTTPException, OSError) as exc:
                self.connection.close()  # the next request opens a new one
                # A kept connection the server dropped while idle: a read is asked again
                # (a write might have been done, so it is not).
                again = isinstance(exc, http.client.RemoteDisconnected) and method == "GET"
                if attempt == 2 or not again:
                    raise
        if not 200 <= answer.status < 300:
            raise Refused(f"{method} {path}: {answer.status} {raw[:200]!r}")
        return json.loads(raw) if raw else None

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> KeepAlive:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
