"""The bench's keep-alive client against a plain HTTP/1.1 server: it keeps one connection,
opens another when the server closes it, refuses what is not a success, and asks a read
again (never a write) when the server dropped the connection it kept."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fold.bench.client import KeepAlive, Refused


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: list[int] = []  # one entry per request: the port of its client
    drop_next = False

    def log_message(self, *_args: object) -> None:
        pass

    def answer(self) -> None:
        cls = type(self)
        if cls.drop_next:  # as a server does with a kept connection it timed out
            cls.drop_next = False
            self.close_connection = True
            return
        cls.connections.append(self.client_address[1])
        length = int(self.headers.get("Content-Length") or 0)
        sent = json.loads(self.rfile.read(length)) if length else None
        status = 404 if self.path == "/missing" else 200
        body = json.dumps(
            {"method": self.command, "sent": sent, "key": self.headers.get("Authorization")}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = answer


@contextmanager
def server() -> Iterator[str]:
    Handler.connections = []
    Handler.drop_next = False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_one_connection_kept_and_another_opened_when_the_server_closes_it() -> None:
    with server() as base, KeepAlive(base, {"Authorization": "Bearer k"}) as client:
        assert client.call("POST", "/made", {"a": 1}) == {
            "method": "POST", "sent": {"a": 1}, "key": "Bearer k"
        }  # fmt: skip
        client.call("GET", "/again")
        client.call("GET", "/close")  # the server says Connection: close
        client.call("PATCH", "/after", {"b": 2})
        first, second, third, fourth = Handler.connections
    assert first == second == third != fourth


def test_an_answer_that_is_not_a_success_is_refused() -> None:
    with server() as base, KeepAlive(base, {}) as client:
        with pytest.raises(Refused, match="GET /missing: 404"):
            client.call("GET", "/missing")
        assert client.call("GET", "/fine")["method"] == "GET"


def test_a_dropped_connection_is_asked_again_for_a_read_never_for_a_write() -> None:
    with server() as base, KeepAlive(base, {}) as client:
        client.call("GET", "/first")
        Handler.drop_next = True
        assert client.call("GET", "/read")["method"] == "GET"
        Handler.drop_next = True
        with pytest.raises(ConnectionError):
            client.call("POST", "/write", {"c": 3})
        assert len(Handler.connections) == 2  # the first read and the read asked again


def test_only_plain_http_to_a_host() -> None:
    with pytest.raises(ValueError, match="plain HTTP"):
        KeepAlive("https://example.org", {})
