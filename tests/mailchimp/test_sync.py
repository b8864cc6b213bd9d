"""A segment of 12,000 contacts synced to the Mailchimp stand-in through real HTTP: the
right members and segment membership, opted-out contacts never sent, refused addresses
failed with Mailchimp's reason, a second run changing nothing, contacts who left removed
from the Mailchimp segment but still subscribed (not in safe mode), 429s waited out, the
receipt as the reference documents it, and the settings' secret never answered."""

from __future__ import annotations

from typing import Any

from fold.bench.mailchimp_standin import StandIn, subscriber_hash
from tests.conftest import Tenant, assert_error
from tests.mailchimp.conftest import AUDIENCE, KEY, set_mailchimp, sync, wait_job
from tests.messages.conftest import fill_contacts
from tests.segments.conftest import make_segment, seg_url

CONTACTS = 12_000
KEY_TEXT = KEY.split("-")[0]


def person(i: int) -> dict[str, Any]:
    data: dict[str, Any] = {"first_name": f"P{i}", "last_name": "Lane", "tags": ["news"]}
    if i % 15 != 7:
        data["email"] = f"bad{i}@nowhere.invalid" if i % 1000 == 500 else f"P{i}@Example.org"
    if i % 10 == 3:
        data["email_opt_out"] = True
    return data


def fate(i: int, p1_unsubscribed: bool = False) -> str:
    data = person(i)
    if data.get("email_opt_out"):
        return "skipped"
    if "email" not in data:
        return "skipped"
    if data["email"].endswith(".invalid") or (i == 1 and p1_unsubscribed):
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

    fates = [fate(i, p1_unsubscribed=True) for i in range(CONTACTS)]
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


def test_leavers_removed_but_still_subscribed_and_safe_mode(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    set_mailchimp(api, standin)
    state = standin.state
    uids = fill_contacts(mc.db, mc.bucket, [person(i) for i in range(300)])
    segment = make_segment(
        api, name="News", rules=[{"field": "tags", "operator": "equals", "value": "news"}]
    )
    first = wait_job(api, sync(api, segment["uid"], segment_name="Weekly news")["journal_uri"])
    synced = {f"p{i}@example.org" for i in range(300) if fate(i) == "done"}
    assert first["status"] == "completed"
    assert state.segment_emails(AUDIENCE, "Weekly news") == synced
    leavers = [i for i in range(300) if fate(i) == "done"][:20]
    for i in leavers:
        response = api.patch(f"/person/{uids[i]}/", json={"tags": []})
        assert response.status_code == 200, response.text
    gone = {f"p{i}@example.org" for i in leavers}
    safe = wait_job(
        api, sync(api, segment["uid"], segment_name="Weekly news", safe_mode="true")["journal_uri"]
    )
    assert safe["status"] == "completed" and safe["params"]["mailchimp_removed"] == 0
    assert state.segment_emails(AUDIENCE, "Weekly news") == synced
    after = wait_job(api, sync(api, segment["uid"], segment_name="Weekly news")["journal_uri"])
    assert after["params"]["mailchimp_removed"] == len(gone)
    assert state.segment_emails(AUDIENCE, "Weekly news") == synced - gone
    for email in gone:
        assert state.member(AUDIENCE, email)["status"] == "subscribed"  # type: ignore[index]


def test_429_waited_out_and_small_batches(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    set_mailchimp(api, standin)
    state = standin.state
    state.refuse_next, state.retry_after = 5, "0"
    fill_contacts(mc.db, mc.bucket, [person(i) for i in range(450)])
    segment = make_segment(api, name="All people")
    receipt = sync(api, segment["uid"], mailchimp_batch_size=100)
    job = wait_job(api, receipt["journal_uri"])
    assert job["status"] == "completed", job
    assert state.refused == 5
    expected = {f"p{i}@example.org" for i in range(450) if fate(i) == "done"}
    assert state.segment_emails(AUDIENCE, "All people") == expected
    assert job["succeeded"] == len(expected)


def test_standin_refuses_an_eleventh_connection_and_big_batches(standin: StandIn) -> None:
    """The stand-in behaves as Mailchimp documents, so the tests above mean something."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.mailchimp.conftest import KEY

    standin.state.delay = 0.3
    url = f"{standin.base_url}/lists/{AUDIENCE}/segments"
    with ThreadPoolExecutor(max_workers=15) as pool:
        codes = list(pool.map(lambda _: httpx.get(url, auth=("x", KEY)).status_code, range(15)))
    assert codes.count(429) >= 1 and codes.count(200) >= 1
    standin.state.delay = 0
    assert httpx.get(url, auth=("x", "wrong")).status_code == 401
    members = [{"email_address": f"m{i}@example.org", "status": "subscribed"} for i in range(501)]
    too_many = httpx.post(
        f"{standin.base_url}/lists/{AUDIENCE}", json={"members": members}, auth=("x", KEY)
    )
    assert too_many.status_code == 400
    found = httpx.get(
        f"{standin.base_url}/lists/{AUDIENCE}/members/{subscriber_hash('A@B.org')}",
        auth=("x", KEY),
    )
    assert found.status_code == 404
    standin.state.add_member(AUDIENCE, "a@b.org")
    found = httpx.get(
        f"{standin.base_url}/lists/{AUDIENCE}/members/{subscriber_hash('A@B.org')}",
        auth=("x", KEY),
    )
    assert found.status_code == 200 and found.json()["email_address"] == "a@b.org"


RECEIPT_TYPES = {
    "bucket": str,
    "journal_uri": str,
    "lambda_prefix": str,
    "mailchimp_batch_size": int,
    "safe_mode": bool,
    "segment_name": str,
    "segment_uri": str,
    "verbose": bool,
}


def test_receipt_and_bad_inputs(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    segment = make_segment(api, name="Members")
    url = seg_url(api, segment["uid"], "/all/sync_mailchimp")
    assert_error(api.post(url), 400, "validation_error", "mailchimp")  # not set up yet
    set_mailchimp(api, standin)
    for method in ("GET", "POST"):
        body = sync(api, segment["uid"], method=method, verbose="true")
        assert set(body) == set(RECEIPT_TYPES)
        for name, kind in RECEIPT_TYPES.items():
            assert type(body[name]) is kind, (name, body)
        assert body["segment_name"] == "Members" and body["mailchimp_batch_size"] == 500
        assert body["safe_mode"] is False and body["verbose"] is True
        assert body["segment_uri"] == segment["uri"]
        assert wait_job(api, body["journal_uri"])["status"] == "completed"
    form = api.post(url, data={"segment_name": "From a form", "mailchimp_batch_size": "20"})
    assert form.status_code == 200 and form.json()["mailchimp_batch_size"] == 20
    assert_error(api.get(url, params={"mailchimp_batch_size": 501}), 400, "validation_error",
                 "mailchimp_batch_size")  # fmt: skip
    assert_error(api.get(url, params={"mailchimp_batch_size": "x"}), 400, "validation_error",
                 "mailchimp_batch_size")  # fmt: skip
    assert_error(api.get(url, params={"safe_mode": "maybe"}), 400, "validation_error", "safe_mode")
    assert_error(api.get(url, params={"segment_name": "x" * 101}), 400, "validation_error",
                 "segment_name")  # fmt: skip
    assert_error(mc.viewer.get(url), 403, "permission_denied")
    groups = make_segment(api, name="Groups", resource_type="group")
    assert_error(api.get(seg_url(api, groups["uid"], "/all/sync_mailchimp")), 400,
                 "validation_error", "segment")  # fmt: skip
    assert api.get(seg_url(api, "nope", "/all/sync_mailchimp")).status_code == 404


def test_settings_secret_never_answered(mc: Tenant, standin: StandIn, caplog: Any) -> None:
    api = mc.admin
    answer = set_mailchimp(api, standin)
    assert KEY_TEXT not in str(answer)
    assert answer["secrets_set"] == {"api_key": True}
    assert answer["values"]["audience_id"] == AUDIENCE
    shown = api.get(f"/settings/v1/{api.bucket}/mailchimp")
    assert shown.status_code == 200 and KEY_TEXT not in shown.text
    assert KEY_TEXT not in api.get(f"/settings/v1/{api.bucket}").text
    assert KEY_TEXT not in caplog.text
    bad = api.put(
        f"/settings/v1/{api.bucket}/mailchimp", json={"api_key": "nodc", "audience_id": "a"}
    )
    assert_error(bad, 400, "validation_error", "api_key")
    assert_error(
        mc.editor.put(f"/settings/v1/{api.bucket}/mailchimp", json={}), 403, "permission_denied"
    )


def test_private_base_url_refused_unless_allowed(
    database: Any, standin: StandIn, tmp_path: Any
) -> None:
    from fastapi.testclient import TestClient

    from fold.web.app import create_app
    from tests.conftest import make_tenant, settings_for
    from tests.mailchimp.conftest import SECRET

    settings = settings_for(
        database, secret_key=SECRET, data_dir=str(tmp_path), allow_private_webhooks=False
    )
    with TestClient(create_app(settings, database.engine)) as client:
        api = make_tenant(client, database, prefix="mp").admin
        set_mailchimp(api, standin)
        fill_contacts(database, api.bucket, [person(0)])
        segment = make_segment(api, name="Private")
        job = wait_job(api, sync(api, segment["uid"])["journal_uri"])
    assert job["status"] == "failed" and job["failed"] == 1
    assert "private or loopback" in str(job["errors"])
    assert standin.state.requests == 0
