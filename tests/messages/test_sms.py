"""SMS through a local stand-in that speaks the provider's HTTP shape (Twilio's Messages
API): form POST of To, From and Body with basic auth; numbers in E.164; bad ones failed."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from fold.messages.sms import e164, segments
from tests.conftest import Tenant
from tests.messages.conftest import (
    everyone,
    fill_contacts,
    job_of,
    make_template,
    messages_of,
    run_action,
)


class Provider:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            form = {k: v[0] for k, v in parse_qs(body).items()}
            state.calls.append(
                {"path": self.path, "form": form, "auth": self.headers.get("authorization")}
            )
            if form.get("To") == "+447911123999":
                status, answer = 400, {"code": 21211, "message": "Invalid 'To' Phone Number"}
            else:
                status, answer = 201, {"sid": f"SM{len(state.calls):032d}", "status": "queued"}
            content = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


PEOPLE = [
    {"first_name": "Ann", "mobile": "07911 123456"},
    {"first_name": "Ben", "telephone": "+44 20 7946 0018"},
    {"first_name": "Cy", "mobile": "12345"},
    {"first_name": "Di", "mobile": "07911 123457", "sms_opt_out": True},
    {"first_name": "Ed"},
    {"first_name": "Flo", "mobile": "07911 123999"},
]


def test_sms_goes_to_the_provider_in_its_shape(mt: Tenant, provider: Provider) -> None:
    api = mt.admin
    fill_contacts(mt.db, mt.bucket, PEOPLE)
    response = api.put(
        f"/settings/v1/{mt.bucket}/sms",
        json={
            "base_url": provider.url,
            "account_sid": "AC123",
            "auth_token": "tok-secret",
            "from_number": "+447700900000",
        },
    )
    assert response.status_code == 200, response.text
    assert "tok-secret" not in response.text
    template = make_template(
        api, name="Rota", channel="sms", text_body="Hi {{ first_name }}, you're on the rota €"
    )
    receipt = run_action(api, everyone(api), action="send-templated-sms", value=template["uid"])
    job = job_of(api, receipt)
    assert (job["succeeded"], job["skipped"], job["failed"]) == (2, 1, 3), job

    assert {c["path"] for c in provider.calls} == {"/2010-04-01/Accounts/AC123/Messages.json"}
    expected_auth = "Basic " + base64.b64encode(b"AC123:tok-secret").decode()
    assert {c["auth"] for c in provider.calls} == {expected_auth}
    sent = {c["form"]["To"]: c["form"] for c in provider.calls}
    assert set(sent) == {"+447911123456", "+442079460018", "+447911123999"}
    assert sent["+447911123456"] == {
        "To": "+447911123456",
        "From": "+447700900000",
        "Body": "Hi Ann, you're on the rota €",
    }

    records = {m["to"]: m for m in messages_of(api)}
    ann = records["+447911123456"]
    assert ann["status"] == "sent" and ann["provider_id"].startswith("SM")
    assert ann["sms_segments"] == 1 and ann["channel"] == "sms"
    reasons = sorted(e["reason"] for e in job["errors"])
    assert any("'12345' is not a valid phone number" in r for r in reasons), reasons
    assert any("no mobile or telephone number" in r for r in reasons), reasons
    assert any("Invalid 'To' Phone Number" in r for r in reasons), reasons
    skipped = [m for m in records.values() if m["status"] == "skipped"]
    assert len(skipped) == 1 and "opted out of sms" in skipped[0]["error"]


def test_sms_without_a_provider_goes_to_the_outbox(mt: Tenant) -> None:
    api = mt.admin
    fill_contacts(mt.db, mt.bucket, PEOPLE[:1])
    template = make_template(api, name="T", channel="sms", text_body="Hello {{ first_name }}")
    job = job_of(
        api, run_action(api, everyone(api), action="send-templated-sms", value=template["uid"])
    )
    assert job["succeeded"] == 1, job
    [message] = messages_of(api)
    assert message["status"] == "outbox" and message["to"] == "+447911123456"


def test_numbers_and_segments() -> None:
    assert e164("020 7946 0018", "GB") == "+442079460018"
    assert e164("+1 415 555 2671", "GB") == "+14155552671"
    with pytest.raises(ValueError):
        e164("not a number", "GB")
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("{" * 80) == 1 and segments("{" * 81) == 2  # two septets each
    assert segments("é" * 160) == 1  # é is in the GSM set
    assert segments("ŵ" * 70) == 1 and segments("ŵ" * 71) == 2  # UCS-2
    assert segments("😀" * 35) == 1 and segments("😀" * 36) == 2  # surrogate pairs
