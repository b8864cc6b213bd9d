"""The other messaging actions: the local outbox (and `fold outbox`), drafts, in-app
messages with acknowledgement, email to a fixed address, and `debug` with a template."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import Tenant, assert_error
from tests.messages.conftest import (
    Mailbox,
    data_dir,
    everyone,
    job_of,
    make_template,
    messages_of,
    run_action,
    set_smtp,
)

PEOPLE = [
    {"first_name": "Ann", "last_name": "A", "email": "ann@example.org"},
    {"first_name": "Bo", "last_name": "B", "email": "bo@example.org", "email_opt_out": True},
    {"first_name": "Cy", "last_name": "C"},
]


def add_people(mt: Tenant) -> list[dict[str, object]]:
    out = []
    for person in PEOPLE:
        response = mt.admin.post("/person/", json=person)
        assert response.status_code == 201, response.text
        out.append(response.json())
    return out


def test_without_smtp_emails_go_to_the_outbox(mt: Tenant) -> None:
    api = mt.admin
    add_people(mt)
    template = make_template(api, subject="Hi {{ first_name }}", text_body="Hello {{ first_name }}")
    job = job_of(
        api, run_action(api, everyone(api), action="send-templated-email", value=template["uid"])
    )
    assert (job["succeeded"], job["skipped"], job["failed"]) == (1, 1, 1), job
    files = sorted((data_dir(api) / "outbox" / mt.bucket).glob("*.eml"))
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "ann@example.org" and message["Subject"] == "Hi Ann"
    assert message.get_body(("plain",)).get_content().strip() == "Hello Ann"  # type: ignore[union-attr]
    assert message["List-Unsubscribe"]
    statuses = sorted(m["status"] for m in messages_of(api))
    assert statuses == ["failed", "outbox", "skipped"]

    env = {**os.environ, "FOLD_DATA_DIR": str(data_dir(api))}
    listed = subprocess.run(
        [sys.executable, "-m", "fold.cli.main", "outbox", "--bucket", mt.bucket],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ann@example.org" in listed.stdout and "Hi Ann" in listed.stdout
    assert "1 messages in the outbox" in listed.stdout


def test_drafts_send_nothing(mt: Tenant, smtp_server: Mailbox) -> None:
    api = mt.admin
    add_people(mt)
    set_smtp(api, smtp_server)
    template = make_template(api, subject="Draft for {{ first_name }}", html_body="<p>x</p>")
    job = job_of(
        api, run_action(api, everyone(api), action="draft-templated-email", value=template["uid"])
    )
    assert job["succeeded"] == 1, job
    assert smtp_server.recipients() == []
    drafts = [m for m in messages_of(api) if m["status"] == "draft"]
    assert [d["subject"] for d in drafts] == ["Draft for Ann"]
    assert drafts[0]["html"] == "<p>x</p>" and drafts[0]["body"] == "x\n"


def test_in_app_messages_and_acknowledgement(mt: Tenant) -> None:
    api = mt.admin
    people = add_people(mt)
    template = make_template(
        api,
        channel="in_app",
        subject="Rota",
        html_body='<p>{{ first_name }}, read <a href="{{ acknowledge_url }}">this</a></p>',
    )
    job = job_of(
        api,
        run_action(
            api,
            everyone(api),
            action="send-templated-in-app-message-request-acknowledgement",
            value=template["uid"],
        ),
    )
    # In-app messages need no address, and email opt-outs do not apply to them.
    assert (job["succeeded"], job["skipped"], job["failed"]) == (3, 0, 0), job
    mine = api.get("/message/", params={"contact": people[0]["uri"]}).json()["results"]
    assert len(mine) == 1
    message = mine[0]
    assert message["channel"] == "in_app" and message["status"] == "sent"
    assert message["request_acknowledgement"] is True and not message.get("acknowledged")
    link = message["html"].split('href="')[1].split('"')[0]
    path = urlsplit(link).path
    assert path.startswith(f"/messages/v1/{mt.bucket}/acknowledge/{message['uid']}/")
    assert api.client.get(path).status_code == 200
    assert api.client.post(path).status_code == 200
    after = api.get(f"/message/{message['uid']}/").json()
    assert after["acknowledged"]
    other = api.get("/message/", params={"contact": people[2]["uri"]}).json()["results"][0]
    assert_error(
        api.client.post(path.replace(message["uid"], other["uid"])), 403, "permission_denied"
    )


def test_acknowledgement_email_carries_its_link(mt: Tenant, smtp_server: Mailbox) -> None:
    api = mt.admin
    add_people(mt)
    set_smtp(api, smtp_server)
    template = make_template(api, subject="Please confirm", text_body="Dear {{ first_name }}")
    job_of(
        api,
        run_action(
            api,
            everyone(api),
            action="send-templated-email-request-acknowledgement",
            value=template["uid"],
        ),
    )
    [message] = smtp_server.messages()
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Please acknowledge this message: http://testserver/messages/v1/" in text
    link = text.rsplit(": ", 1)[1].strip()
    assert api.client.post(urlsplit(link).path).status_code == 200
    [sent] = [m for m in messages_of(api) if m["status"] == "sent"]
    assert sent["acknowledged"] and sent["request_acknowledgement"] is True


def test_email_to_a_fixed_address(mt: Tenant, smtp_server: Mailbox) -> None:
    api = mt.admin
    add_people(mt)
    set_smtp(api, smtp_server)
    segment = everyone(api)
    bad = api.post(
        f"/segments/v2/{mt.bucket}/segment/{segment}/action",
        json={
            "action": "send-email-to-fixed-address",
            "value": "not-an-address",
            "description": "x",
        },
    )
    assert_error(bad, 400, "validation_error", "value")
    job = job_of(
        api,
        run_action(
            api,
            segment,
            action="send-email-to-fixed-address",
            value="office@club.example",
            description="New joiner",
        ),
    )
    assert job["succeeded"] == 3, job  # opt-outs are the contact's, not the office's
    assert smtp_server.recipients() == ["office@club.example"] * 3
    subjects = sorted(str(m["Subject"]) for m in smtp_server.messages())
    assert subjects == ["New joiner: Ann A", "New joiner: Bo B", "New joiner: Cy C"]
    assert all(m["List-Unsubscribe"] is None for m in smtp_server.messages())


def test_debug_with_a_template_reports_what_would_be_sent(mt: Tenant, smtp_server: Mailbox) -> None:
    api = mt.admin
    add_people(mt)
    set_smtp(api, smtp_server)
    template = make_template(api, subject="Hi {{ first_name }}", text_body="Hello")
    job = job_of(api, run_action(api, everyone(api), action="debug", value=template["uid"]))
    assert (job["succeeded"], job["skipped"], job["failed"]) == (1, 1, 1), job
    preview = job["params"]["preview"]
    assert {p["would"] for p in preview} == {"send", "skip", "fail"}
    assert next(p for p in preview if p["would"] == "send")["subject"] == "Hi Ann"
    assert smtp_server.recipients() == [] and messages_of(api) == []


def test_outbox_listing_when_empty(tmp_path: Path) -> None:
    env = {**os.environ, "FOLD_DATA_DIR": str(tmp_path)}
    listed = subprocess.run(
        [sys.executable, "-m", "fold.cli.main", "outbox"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "is empty" in listed.stdout
