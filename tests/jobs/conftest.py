"""Job test helpers: a local HTTP server that records webhook calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import Api, assert_error
from tests.segments.conftest import make_segment, people, seg_url

__all__ = ["people"]


class Receiver:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_first: set[str] = set()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            call = {"body": body, "headers": dict(self.headers), "path": self.path}
            key = body.decode(errors="replace")
            with state.lock:
                state.calls.append(call)
                failing = any(marker in key for marker in state.fail_first)
                if failing:
                    state.fail_first = {m for m in state.fail_first if m not in key}
            self.send_response(503 if failing else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def start(api: Api, segment_uid: str, status: int = 200, **body: Any) -> dict[str, Any]:
    body.setdefault("description", "test job")
    response = api.post(seg_url(api, segment_uid, "/action"), json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def job(api: Api, uri: str) -> dict[str, Any]:
    uid = uri.rstrip("/").split("/")[-1]
    response = api.get(f"/sheep_event/{uid}/")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def everyone(api: Api) -> dict[str, Any]:
    return make_segment(api, name="Everyone")


def json_body(call: dict[str, Any]) -> Any:
    return json.loads(call["body"])


__all__ += ["assert_error", "everyone", "job", "json_body", "start"]
