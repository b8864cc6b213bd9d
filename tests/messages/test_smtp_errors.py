"""What an SMTP server says back: temporary refusals retried, permanent ones failed with
the server's reply, and a server that is down fails the records, not the job."""

from __future__ import annotations

from typing import Any

from tests.conftest import Tenant
from tests.messages.conftest import (
    Mailbox,
    everyone,
    fill_contacts,
    free_port,
    job_of,
    make_template,
    messages_of,
    run_action,
    set_smtp,
)


def people(n: int) -> list[dict[str, Any]]:
    return [{"first_name": f"P{i}", "email": f"p{i}@example.org"} for i in range(n)]


def send(mt: Tenant) -> dict[str, Any]:
    api = mt.admin
    template = make_template(api, subject="Hello {{ first_name }}", text_body="Hi {{ first_name }}")
    receipt = run_action(api, everyone(api), action="send-templated-email", value=template["uid"])
    return job_of(api, receipt)


def test_temporary_refusals_are_retried_and_succeed(mt: Tenant, smtp_server: Mailbox) -> None:
    fill_contacts(mt.db, mt.bucket, people(6))
    set_smtp(mt.admin, smtp_server)
    smtp_server.rcpt_answers = {
        "p1@example.org": ["451 4.7.1 Greylisted, try again later"],
        "p3@example.org": ["421 4.3.2 Service shutting down", "451 4.3.0 Busy"],
    }
    job = send(mt)
    assert (job["status"], job["succeeded"], job["failed"]) == ("completed", 6, 0), job
    assert sorted(smtp_server.recipients()) == [f"p{i}@example.org" for i in range(6)]
    assert {m["status"] for m in messages_of(mt.admin)} == {"sent"}


def test_permanent_refusal_is_failed_with_the_reply(mt: Tenant, smtp_server: Mailbox) -> None:
    fill_contacts(mt.db, mt.bucket, people(4))
    set_smtp(mt.admin, smtp_server)
    smtp_server.rcpt_answers = {"p2@example.org": ["550 5.1.1 No such user here"]}
    job = send(mt)
    assert (job["succeeded"], job["failed"]) == (3, 1), job
    reason = job["errors"][0]["reason"]
    assert "550 5.1.1 No such user here" in reason
    assert "p2@example.org" not in smtp_server.recipients()
    failed = [m for m in messages_of(mt.admin) if m["status"] == "failed"]
    assert [m["to"] for m in failed] == ["p2@example.org"]
    assert "550" in failed[0]["error"]


def test_temporary_refusal_that_never_clears_is_failed(mt: Tenant, smtp_server: Mailbox) -> None:
    fill_contacts(mt.db, mt.bucket, people(2))
    set_smtp(mt.admin, smtp_server)
    smtp_server.rcpt_answers = {"p0@example.org": ["452 4.2.2 Mailbox full"] * 10}
    job = send(mt)
    assert (job["succeeded"], job["failed"]) == (1, 1), job
    assert "452 4.2.2 Mailbox full" in job["errors"][0]["reason"]


def test_a_server_that_is_down_fails_the_records(mt: Tenant) -> None:
    fill_contacts(mt.db, mt.bucket, people(30))
    set_smtp(mt.admin, Mailbox(port=free_port()))  # nothing listens there
    job = send(mt)
    assert job["status"] == "completed", job
    assert (job["total"], job["succeeded"], job["failed"]) == (30, 0, 30)
    assert "cannot reach the SMTP server 127.0.0.1" in job["errors"][0]["reason"]
    statuses = {m["status"] for m in messages_of(mt.admin)}
    assert statuses == {"failed"}
