"""Message test helpers: a local SMTP server (aiosmtpd) that records what it receives and
can answer chosen recipients with chosen codes, an app whose settings tests control, and
a way to fill a bucket with many contacts quickly."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from fold.buckets.service import ensure_bucket
from fold.db.engine import unit_of_work
from fold.fields.builtin import BUILTIN
from fold.ids import new_uid
from fold.records.bulk import insert_clean
from fold.web.app import create_app
from tests.conftest import Api, Database, Tenant, make_tenant, settings_for
from tests.segments.conftest import make_segment, seg_url

SECRET = "test-secret-key-for-messages"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received, and the answers it is told to give."""

    port: int = 0
    received: list[tuple[str, bytes]] = field(default_factory=list)
    # recipient -> codes to answer RCPT with, one per attempt ("451 ...", "550 ...")
    rcpt_answers: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            raw = [content for _, content in self.received]
        return [
            email.message_from_bytes(content, policy=email.policy.default)  # type: ignore[misc]
            for content in raw
        ]

    def recipients(self) -> list[str]:
        with self.lock:
            return [to for to, _ in self.received]


class Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.box.lock:
            answers = self.box.rcpt_answers.get(address)
            if answers:
                return answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.box.lock:
            for to in envelope.rcpt_tos:
                self.box.received.append((to, envelope.original_content or envelope.content))
        return "250 Message accepted"


def start_smtp() -> tuple[Mailbox, Controller]:
    box = Mailbox(port=free_port())
    controller = Controller(Handler(box), hostname="127.0.0.1", port=box.port)
    controller.start()
    return box, controller


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    box, controller = start_smtp()
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def message_client(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = settings_for(
        database,
        secret_key=SECRET,
        smtp_backoff=0.01,
        data_dir=str(tmp_path_factory.mktemp("data")),
        public_url="http://testserver",
    )
    app = create_app(settings, database.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def mt(message_client: TestClient, database: Database) -> Tenant:
    """A tenant on the messages app (its own data dir and secret)."""
    return make_tenant(message_client, database, prefix="m")


@pytest.fixture
def other_mt(message_client: TestClient, database: Database) -> Tenant:
    return make_tenant(message_client, database, prefix="n")


def data_dir(api: Api) -> Path:
    app: Any = api.client.app
    return Path(app.state.settings.data_dir)


def fill_contacts(db: Database, bucket: str, people: list[dict[str, Any]]) -> list[str]:
    """Insert people as the demo does; answers their uids in order."""
    with unit_of_work(db.sessions) as session:
        ensure_bucket(session, bucket)
    now = datetime(2026, 1, 1)
    rows = [("person", new_uid(), person, now) for person in people]
    for start in range(0, len(rows), 5000):
        with unit_of_work(db.sessions) as session:
            insert_clean(
                session,
                bucket=bucket,
                user_uri="/test/",
                message="seed",
                rows=rows[start : start + 5000],
                schemas={"person": BUILTIN["person"]},
            )
    return [uid for _, uid, _, _ in rows]


def set_smtp(api: Api, box: Mailbox, **extra: Any) -> None:
    body = {
        "host": "127.0.0.1",
        "port": box.port,
        "security": "none",
        "from_address": "office@club.example",
        "from_name": "The Club",
        "reply_to": "replies@club.example",
        **extra,
    }
    response = api.put(f"/settings/v1/{api.bucket}/smtp", json=body)
    assert response.status_code == 200, response.text


def make_template(api: Api, status: int = 201, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Template")
    body.setdefault("channel", "email")
    response = api.post(f"/messages/v1/{api.bucket}/templates", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def run_action(api: Api, segment_uid: str, status: int = 200, **body: Any) -> Any:
    body.setdefault("description", "Message test")
    response = api.post(seg_url(api, segment_uid, "/action"), json=body)
    assert response.status_code == status, response.text
    return response.json()


def job_of(api: Api, receipt: dict[str, Any]) -> dict[str, Any]:
    uid = receipt["sheep_event"].rstrip("/").split("/")[-1]
    deadline = time.monotonic() + 120
    while True:
        body: dict[str, Any] = api.get(f"/sheep_event/{uid}/").json()
        if body["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def messages_of(api: Api, **filters: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        response = api.get("/message/", params={"page": page, "page_size": 1000, **filters})
        assert response.status_code == 200, response.text
        body = response.json()
        out.extend(body["results"])
        if page >= body["pages"]:
            return out
        page += 1


def everyone(api: Api) -> str:
    uid: str = make_segment(api, name="Everyone")["uid"]
    return uid


__all__ = ["make_segment"]
