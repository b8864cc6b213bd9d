"""Messages to a segment of records that link to a contact (memberships): each membership
stands for its contact, who gets one message however many of their memberships are in the
segment; the template sees the membership as `membership` (and `record`); a membership
with no contact, a deleted one, or one who opted out is counted with the reason; `debug`
and a template's preview render for the contact; a type with no contact is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, Tenant, assert_error, created
from tests.messages.conftest import (
    Mailbox,
    job_of,
    make_template,
    messages_of,
    run_action,
    set_smtp,
)
from tests.segments.conftest import make_segment

LAPSED = [{"field": "status", "operator": "equals", "value": "lapsed"}]
TEXT = (
    "Dear {{ first_name or name }}, your {{ membership.membership_type }} membership "
    "ended on {{ record.end_date|date }}. {{ unsubscribe_url }}"
)


def lapsed(api: Api, contact: dict[str, Any] | None, kind: str = "Gold") -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "lapsed",
        "membership_type": kind,
        "start_date": "2024-01-01",
        "end_date": "2025-12-31",
    }
    if contact is not None:
        body["contact"] = contact["uri"]
    return created(api, "membership", body)


@pytest.fixture
def members(mt: Tenant) -> dict[str, Any]:
    api = mt.admin
    ada = created(api, "person", {"first_name": "Ada", "email": "ada@x.org"})
    bob = created(api, "person", {"first_name": "Bob", "email": "bob@x.org", "email_opt_out": True})
    cat = created(api, "person", {"first_name": "Cat"})
    club = created(api, "organisation", {"name": "Chess Club", "email": "club@x.org"})
    gone = created(api, "person", {"first_name": "Gone", "email": "gone@x.org"})
    rows = {
        "ada": lapsed(api, ada),
        "ada again": lapsed(api, ada, kind="Silver"),
        "bob": lapsed(api, bob),
        "cat": lapsed(api, cat),
        "club": lapsed(api, club, kind="Club"),
        "gone": lapsed(api, gone),
        "nobody": lapsed(api, None),
    }
    created(api, "membership", {"contact": ada["uri"], "status": "active"})  # not in the segment
    assert api.delete(f"/person/{gone['uid']}/").status_code in (200, 204)
    segment = make_segment(api, name="Lapsed", resource_type="membership", rules=LAPSED)
    return {"ada": ada, "club": club, "gone": gone, "rows": rows, "segment": segment}


@pytest.mark.parametrize("batch_size", [1, 200])
def test_each_contact_behind_the_memberships_gets_one_email(
    mt: Tenant, smtp_server: Mailbox, members: dict[str, Any], batch_size: int
) -> None:
    api = mt.admin
    set_smtp(api, smtp_server)
    template = make_template(api, name="Renew", subject="Renew, {{ first_name }}", text_body=TEXT)
    receipt = run_action(
        api,
        members["segment"]["uid"],
        action="send-templated-email",
        value=template["uid"],
        batch_size=batch_size,
    )
    job = job_of(api, receipt)

    assert job["status"] == "completed", job
    assert (job["total"], job["succeeded"], job["skipped"], job["failed"]) == (7, 2, 2, 3)
    reasons = {e["uri"].rstrip("/").split("/")[-1]: e["reason"] for e in job["errors"]}
    rows = members["rows"]
    assert reasons[rows["cat"]["uid"]] == "the contact has no usable email address"
    assert reasons[rows["nobody"]["uid"]] == "the record names no contact"
    assert "does not exist or was deleted" in reasons[rows["gone"]["uid"]]
    assert sorted(smtp_server.recipients()) == ["ada@x.org", "club@x.org"]
    bodies = {m["To"]: m.get_body(("plain",)).get_content() for m in smtp_server.messages()}
    assert "Dear Ada, your Gold membership ended on" in bodies["ada@x.org"]
    assert "Dear Chess Club, your Club membership" in bodies["club@x.org"]
    assert "/unsubscribe/person/" + members["ada"]["uid"] in bodies["ada@x.org"]

    written = messages_of(api)
    by_contact = {m["contact"]: m for m in written if m["status"] == "sent"}
    assert set(by_contact) == {members["ada"]["uri"], members["club"]["uri"]}
    assert by_contact[members["ada"]["uri"]]["about"] == rows["ada"]["uri"]
    skipped = {m["about"]: m for m in written if m["status"] == "skipped"}
    assert skipped[rows["bob"]["uri"]]["error"] == "the contact opted out of email"


def test_debug_and_preview_render_for_the_contact(mt: Tenant, members: dict[str, Any]) -> None:
    api = mt.admin
    template = make_template(api, name="Renew", subject="Renew, {{ first_name }}", text_body=TEXT)
    receipt = run_action(api, members["segment"]["uid"], action="debug", value=template["uid"])
    job = job_of(api, receipt)
    assert job["status"] == "completed", job
    first = job["params"]["preview"][0]
    assert (first["to"], first["subject"], first["would"]) == ("ada@x.org", "Renew, Ada", "send")
    assert first["uri"] == members["rows"]["ada"]["uri"]

    url = f"/messages/v1/{api.bucket}/templates/{template['uid']}/render"
    shown = api.get(url, params={"uri": members["rows"]["club"]["uri"]})
    assert shown.status_code == 200, shown.text
    assert shown.json()["to"] == "club@x.org"
    assert "Dear Chess Club, your Club membership" in shown.json()["text"]
    orphan = api.get(url, params={"uri": members["rows"]["nobody"]["uri"]}).json()
    assert (orphan["would"], orphan["reason"]) == ("fail", "the record names no contact")


def test_a_type_without_contacts_is_refused(mt: Tenant) -> None:
    api = mt.admin
    template = make_template(api, name="T", subject="Hi", text_body="Hi")
    groups = make_segment(api, name="Groups", resource_type="group")
    response = api.post(
        f"/segments/v2/{api.bucket}/segment/{groups['uid']}/action",
        json={"action": "send-templated-email", "value": template["uid"], "description": "x"},
    )
    assert_error(response, 400, "validation_error", "action")
