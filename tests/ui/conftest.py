"""Helpers for the web interface's tests: a signed-in browser-like client."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from fastapi.testclient import TestClient

from fold.auth.service import add_user
from fold.db.engine import unit_of_work
from tests.conftest import Database

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
class Browser:
    """A TestClient with its own cookie jar, signed in to the web interface."""

    client: TestClient
    bucket: str

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    def csrf(self) -> str:
        return csrf_of(self.page(f"/ui/{self.bucket}/"))


def sign_in(app_client: TestClient, bucket: str, username: str, password: str) -> Browser:
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
    return Browser(client, bucket)
