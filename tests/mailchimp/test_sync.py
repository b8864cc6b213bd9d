"""A segment of 12,000 contacts synced to the Mailchimp stand-in through real HTTP: the
right members and segment membership, opted-out contacts never sent, refused addresses
failed with Mailchimp's reason, a second run changing nothing, contacts who left removed
from the Mailchimp segment but still subscribed (not in safe mode)."""

from __future__ import annotations

from typing import Any

from fold.bench.mailchimp_standin import StandIn
from tests.conftest import Tenant
from tests.mailchimp.conftest import AUDIENCE, set_mailchimp, sync, wait_job
from tests.messages.conftest import fill_contacts
from tests.segments.conftest import make_segment, seg_url

CONTACTS = 12_000


def person(i: int) -> dict[str, Any]:
    data: dict[str, Any] = {"first_name": f"P{i}", "last_name": "Lane", "tags": ["news"]}
    if i % 15 != 7:
        data["email"] = f"bad{i}@nowhere.invalid" if i % 1000 == 500 else f"P{i}@Example.org"
    if i % 10 == 3:
        data["email_opt_out"] = True
    return data


def fate(i: int) -> str:
    data = person(i)
    if data.get("email_opt_out"):
        return "skipped"
    if "email" not in data:
        return "skipped"
    if data["email"].endswith(".invalid") or i == 1:
        return "failed"
    return "done"


def test_twelve_thousand_contacts(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    set_mailchimp(api, standin)
    state = standin.state
    # Already in Mailchimp: a member of the tag who is not in Fold, and P1, who
    # unsubscribed in Mailchimp (a compliance state: Mailchimp refuses to resubscribe).
    state.add_member(AUDIENCE, "old@example.org")
    state.add_segment(AUDIENCE, "Newsletter", ["old@example.org"])
    state.add_member(AUDIENCE, "p1@example.org", status="unsubscribed")
    people = [person(i) for i in range(CONTACTS)]
    uids = fill_contacts(mc.db, mc.bucket, people)
    segment = make_segment(
        api,
        name="Newsletter",
        rules=[{"field": "tags", "operator": "equals", "value": "news"}],
    )
    receipt = sync(api, segment["uid"])
    job = wait_job(api, receipt["journal_uri"])

    fates = [fate(i) for i in range(CONTACTS)]
    synced = {f"p{i}@example.org" for i in range(CONTACTS) if fates[i] == "done"}
    assert job["status"] == "completed", job
    assert (job["total"], job["succeeded"], job["failed"], job["skipped"]) == (
        CONTACTS,
        fates.count("done"),
        fates.count("failed"),
        fates.count("skipped"),
    )
    reasons = " ".join(e["reason"] for e in job["errors"])
    assert "looks fake or invalid" in reasons and "compliance state" in reasons
    assert state.segment_emails(AUDIENCE, "Newsletter") == synced
    # Left the segment (never in Fold's): removed from the tag, still subscribed.
    assert state.member(AUDIENCE, "old@example.org")["status"] == "subscribed"  # type: ignore[index]
    assert state.member(AUDIENCE, "p1@example.org")["status"] == "unsubscribed"  # type: ignore[index]
    member = state.member(AUDIENCE, "P42@Example.org")
    assert member is not None and member["merge_fields"] == {"FNAME": "P42", "LNAME": "Lane"}
    assert member["status"] == "subscribed"
    opted_out = {p["email"].lower() for p in people if p.get("email_opt_out") and "email" in p}
    assert opted_out and not opted_out & state.seen
    assert "DELETE" not in state.methods and "PATCH" not in state.methods
    assert state.refused == 0 and state.most_in_flight <= 10

    stamped = api.get(f"/person/{uids[42]}/").json()
    assert stamped["mailchimp_last_sync"]
    assert "mailchimp_last_sync" not in api.get(f"/person/{uids[3]}/").json()  # opted out
    shown = api.get(seg_url(api, segment["uid"])).json()["mailchimp_last_sync"]
    assert shown["status"] == "completed"
    assert (shown["added"], shown["removed"], shown["failed"]) == (
        len(synced),
        1,
        fates.count("failed"),
    )

    # Nothing changed: a second run changes nothing in Mailchimp.
    changes = state.changes
    again = wait_job(api, sync(api, segment["uid"], method="GET")["journal_uri"])
    assert again["status"] == "completed" and again["succeeded"] == len(synced)
    assert (again["params"]["mailchimp_added"], again["params"]["mailchimp_removed"]) == (0, 0)
    assert state.changes == changes

    # Fifty contacts leave the Fold segment: safe mode keeps them in the tag; a normal run
    # takes them out of it, and they stay subscribed.
    leavers = [i for i in range(CONTACTS) if fates[i] == "done"][:50]
    for i in leavers:
        response = api.patch(f"/person/{uids[i]}/", json={"tags": []})
        assert response.status_code == 200, response.text
    gone = {f"p{i}@example.org" for i in leavers}
    safe = wait_job(api, sync(api, segment["uid"], safe_mode="true")["journal_uri"])
    assert safe["params"]["mailchimp_removed"] == 0
    assert state.segment_emails(AUDIENCE, "Newsletter") == synced
    wait_job(api, sync(api, segment["uid"])["journal_uri"])
    assert state.segment_emails(AUDIENCE, "Newsletter") == synced - gone
    for email in gone:
        assert state.member(AUDIENCE, email)["status"] == "subscribed"  # type: ignore[index]
