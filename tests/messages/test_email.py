"""Templated email to a segment, received by a local SMTP server: the recipients, every
message's headers and parts, opt-outs, the unsubscribe link, records and totals."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from fold.db.engine import unit_of_work
from fold.db.models import Job
from tests.conftest import Tenant, assert_error
from tests.messages.conftest import (
    Mailbox,
    everyone,
    fill_contacts,
    job_of,
    make_template,
    messages_of,
    run_action,
    set_smtp,
)

CONTACTS = 2000
EVIL = "<script>alert(1)</script>"


def person(i: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "first_name": EVIL if i % 97 == 0 else f"Pat{i}",
        "last_name": "Member",
        "email": f"member{i}@example.org",
        "renewal_date": "2026-03-31",
        "amount_due": 1234.5,
    }
    if i % 10 == 3:
        data["email_opt_out"] = True
    if i % 15 == 4:
        del data["email"]
    return data


HTML = (
    "<p>Dear {{ first_name }},</p>"
    "<p>Your membership of {{ bucket }} ends on {{ renewal_date|date }}; "
    "{{ amount_due|amount }} is due.</p>"
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


class TestTemplatedEmail:
    def test_a_segment_of_2000_is_received_exactly(self, mt: Tenant, smtp_server: Mailbox) -> None:
        api = mt.admin
        people = [person(i) for i in range(CONTACTS)]
        uids = fill_contacts(mt.db, mt.bucket, people)
        set_smtp(api, smtp_server)
        template = make_template(
            api, name="Renewal", subject="Renewal for {{ first_name }}", html_body=HTML
        )
        receipt = run_action(
            api, everyone(api), action="send-templated-email", value=template["uid"]
        )
        job = job_of(api, receipt)

        opted = {i for i, p in enumerate(people) if p.get("email_opt_out")}
        no_email = {i for i, p in enumerate(people) if "email" not in p} - opted
        expected = {p["email"] for i, p in enumerate(people) if i not in opted | no_email}
        assert job["status"] == "completed", job
        assert (job["total"], job["succeeded"], job["skipped"], job["failed"]) == (
            CONTACTS,
            len(expected),
            len(opted),
            len(no_email),
        )
        assert job["errors"][0]["reason"] == "the contact has no usable email address"

        received = smtp_server.recipients()
        assert Counter(received).most_common(1)[0][1] == 1
        assert set(received) == expected

        by_to = {str(m["To"]): m for m in smtp_server.messages()}
        ids = set()
        for i, data in enumerate(people):
            if data.get("email") not in expected:
                continue
            message = by_to[data["email"]]
            assert message["From"] == "The Club <office@club.example>"
            assert message["Reply-To"] == "replies@club.example"
            assert message["Subject"] == f"Renewal for {data['first_name']}"
            assert message["Message-ID"].endswith("@club.example>")
            ids.add(message["Message-ID"])
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            link = message["List-Unsubscribe"].strip("<>")
            assert f"/person/{uids[i]}/" in link
            assert message.get_content_type() == "multipart/alternative"
            text = message.get_body(("plain",)).get_content()
            html = message.get_body(("html",)).get_content()
            assert "ends on 31 March 2026; £1,234.50 is due." in text
            assert f"Your membership of {mt.bucket}" in html
            assert link in html and f"({link})" in text
            if data["first_name"] == EVIL:
                assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
            else:
                assert f"Dear {data['first_name']}," in html
        assert len(ids) == len(expected)

        records = messages_of(api)
        statuses = Counter(r["status"] for r in records)
        assert statuses == {"sent": len(expected), "skipped": len(opted), "failed": len(no_email)}
        sent = next(r for r in records if r["status"] == "sent")
        assert sent["channel"] == "email" and sent["template"] == template["uid"]
        assert sent["job"] == receipt["sheep_event"] and sent["provider_id"] in ids
        assert sent["contact"].startswith(f"/{mt.bucket}/person/")

        # The one-click link: no key, sets the opt-out of that contact alone, audited.
        first = next(i for i in range(CONTACTS) if people[i].get("email") in expected)
        link = by_to[people[first]["email"]]["List-Unsubscribe"].strip("<>")
        path = urlsplit(link).path
        page = api.client.get(path)
        assert page.status_code == 200 and "<form" in page.text
        assert api.get(f"/person/{uids[first]}/").json().get("email_opt_out") is not True
        done = api.client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200, done.text
        assert api.get(f"/person/{uids[first]}/").json()["email_opt_out"] is True
        audit = api.get(f"/audit/v2/{mt.bucket}/person/{uids[first]}/audit").json()
        entries = audit["audit"] if isinstance(audit, dict) else audit
        assert any("one-click" in e["message"] for e in entries)

        # A link turned to another contact, or with its signature changed, is refused.
        other = next(i for i in range(first + 1, CONTACTS) if people[i].get("email") in expected)
        forged = path.replace(uids[first], uids[other])
        assert_error(api.client.post(forged), 403, "permission_denied")
        broken = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        assert_error(api.client.post(broken), 403, "permission_denied")
        assert api.get(f"/person/{uids[other]}/").json().get("email_opt_out") is not True


class TestRefusedUpFront:
    def test_missing_other_bucket_and_wrong_channel_templates(
        self, mt: Tenant, other_mt: Tenant
    ) -> None:
        api = mt.admin
        segment = everyone(api)
        sms = make_template(api, name="Text", channel="sms", text_body="Hi {{ first_name }}")
        theirs = make_template(other_mt.admin, name="Theirs", subject="x", text_body="y")
        for value in ("000000000000000000000000", theirs["uid"], sms["uid"], "", None):
            response = api.post(
                f"/segments/v2/{mt.bucket}/segment/{segment}/action",
                json={"action": "send-templated-email", "value": value, "description": "x"},
            )
            assert_error(response, 400, "validation_error", "value")
        email = make_template(api, name="Mail", subject="s", text_body="t")
        response = api.post(
            f"/segments/v2/{mt.bucket}/segment/{segment}/action",
            json={"action": "send-templated-sms", "value": email["uid"], "description": "x"},
        )
        assert_error(response, 400, "validation_error", "value")
        with unit_of_work(mt.db.sessions) as session:
            jobs = session.scalar(select(func.count()).where(Job.bucket == mt.bucket))
        assert jobs == 0
        assert messages_of(api) == []
