"""Fixtures for the web interface's tests: a signed-in browser-like client, and for the
browser tests a real `fold serve` on a demo bucket and Debian's Chromium."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, sync_playwright

from fold.auth.service import add_user, create_key
from fold.db.engine import make_engine, make_sessionmaker, unit_of_work
from tests.conftest import Database

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
BUCKET = "demo"

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def make_user(db: Database, bucket: str, policy: str) -> tuple[str, str]:
    name, password = f"{policy}-{secrets.token_hex(4)}", secrets.token_hex(8)
    with unit_of_work(db.sessions) as session:
        add_user(session, username=name, password=password, bucket=bucket, policy=policy)
    return name, password


@dataclass
class WebClient:
    """A TestClient with its own cookie jar, signed in to the web interface."""

    client: TestClient
    bucket: str

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    def csrf(self) -> str:
        return csrf_of(self.page(f"/ui/{self.bucket}/"))


def sign_in(app_client: TestClient, bucket: str, username: str, password: str) -> WebClient:
    client = TestClient(app_client.app, base_url="http://testserver")
    login = client.get("/ui/login")
    token = csrf_of(login.text)
    answer = client.post(
        "/ui/login",
        data={"csrf_token": token, "username": username, "password": password},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/ui/{bucket}/"
    return WebClient(client, bucket)


@dataclass
class Server:
    url: str
    admin_key: str
    viewer_key: str
    users: dict[str, str]
    slow_hook: str

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def preview_count(self, rules: list[dict[str, Any]]) -> int:
        body = {"resource_type": "person", "rules": rules, "page_size": 1}
        answer = self.api("POST", f"/segments/v2/{BUCKET}/preview", json=body)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["count"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SlowHook(BaseHTTPRequestHandler):
    """A local stand-in webhook receiver that takes its time, so a job stays running."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        time.sleep(0.2)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def slow_hook() -> Iterator[str]:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), SlowHook)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    receiver.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, slow_hook: str) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("ui-server")
    env = {
        **os.environ,
        "FOLD_DATA_DIR": str(folder),
        "FOLD_DATABASE_URL": f"sqlite:///{folder / 'fold.db'}",
        "FOLD_IMPORT_WORKERS": "0",
        "FOLD_ALLOW_PRIVATE_WEBHOOKS": "1",
    }
    env.pop("FOLD_REDIS_URL", None)
    fold = [sys.executable, "-m", "fold.cli.main"]
    run = {"env": env, "check": True, "capture_output": True, "cwd": folder}
    subprocess.run([*fold, "migrate"], **run)  # type: ignore[call-overload]
    subprocess.run([*fold, "demo", "--bucket", BUCKET, "--people", "600"], **run)  # type: ignore[call-overload]
    engine = make_engine(env["FOLD_DATABASE_URL"])
    users = {"ada": "ada-password", "vic": "vic-password"}
    with unit_of_work(make_sessionmaker(engine)) as session:
        add_user(session, username="ada", password=users["ada"], bucket=BUCKET, policy="admin")
        add_user(session, username="vic", password=users["vic"], bucket=BUCKET, policy="viewer")
        admin = create_key(session, bucket=BUCKET, policy="admin").key
        viewer = create_key(session, bucket=BUCKET, policy="viewer").key
    engine.dispose()
    port = _free_port()
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [*fold, "serve", "--port", str(port)], env=env, cwd=folder, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "fold serve did not start"
        time.sleep(0.2)
    try:
        yield Server(url, admin, viewer, users, slow_hook)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists() or not AXE.exists():
        if os.environ.get("CI"):
            raise RuntimeError("the browser tests need /usr/bin/chromium and `make install`")
        pytest.skip("no /usr/bin/chromium or node_modules: run `make test`")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()
