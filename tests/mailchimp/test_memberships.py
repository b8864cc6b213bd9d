"""A membership segment syncs the contacts behind its memberships (SPEC 2.2, 5): each
contact once however many of its memberships are in the segment, stamped on the contact;
memberships with no contact, a deleted one, or one that opted out are skipped with the
reason; a membership segment with `mailchimp_sync` is synced automatically too."""

from __future__ import annotations

from typing import Any

from fold.bench.mailchimp_standin import StandIn
from tests.conftest import Api, Tenant, assert_error, created
from tests.mailchimp.conftest import AUDIENCE, set_mailchimp, sync, wait_job
from tests.mailchimp.test_automatic import due, last_sync
from tests.segments.conftest import make_segment, seg_url

LAPSED = [{"field": "status", "operator": "equals", "value": "lapsed"}]


def member(api: Api, contact: dict[str, Any] | None, status: str = "lapsed") -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "start_date": "2024-01-01"}
    if contact is not None:
        body["contact"] = contact["uri"]
    return created(api, "membership", body)


def test_a_membership_segment_syncs_the_contacts_behind_it(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    set_mailchimp(api, standin)
    ada = created(api, "person", {"first_name": "Ada", "last_name": "Byron", "email": "Ada@x.org"})
    bob = created(api, "person", {"first_name": "Bob", "email": "bob@x.org"})
    quiet = created(api, "person", {"first_name": "Q", "email": "q@x.org", "email_opt_out": True})
    gone = created(api, "person", {"first_name": "Gone", "email": "gone@x.org"})
    club = created(api, "organisation", {"name": "Chess Club", "email": "club@x.org"})
    current = created(api, "person", {"first_name": "Cur", "email": "current@x.org"})
    memberships = [
        member(api, ada),
        member(api, ada),  # a second lapsed membership of the same person
        member(api, bob),
        member(api, quiet),
        member(api, gone),
        member(api, club),
        member(api, None),
        member(api, current, status="active"),  # not in the segment
    ]
    assert api.delete(f"/person/{gone['uid']}/").status_code in (200, 204)
    segment = make_segment(api, name="Lapsed members", resource_type="membership", rules=LAPSED)

    job = wait_job(api, sync(api, segment["uid"], segment_name="Lapsed")["journal_uri"])

    assert job["status"] == "completed", job
    assert (job["total"], job["succeeded"], job["failed"], job["skipped"]) == (7, 4, 0, 3)
    assert standin.state.segment_emails(AUDIENCE, "Lapsed") == {
        "ada@x.org",
        "bob@x.org",
        "club@x.org",
    }
    sent = standin.state.member(AUDIENCE, "ada@x.org")
    assert sent is not None and sent["merge_fields"]["FNAME"] == "Ada"
    assert sent["merge_fields"]["LNAME"] == "Byron"
    assert standin.state.member(AUDIENCE, "club@x.org")["merge_fields"]["FNAME"] == "Chess Club"  # type: ignore[index]
    assert "q@x.org" not in standin.state.seen and "current@x.org" not in standin.state.seen
    # The contacts are stamped, once each; the memberships are not.
    assert api.get(f"/person/{ada['uid']}/").json()["mailchimp_last_sync"]
    assert api.get(f"/organisation/{club['uid']}/").json()["mailchimp_last_sync"]
    assert "mailchimp_last_sync" not in api.get(f"/person/{quiet['uid']}/").json()
    assert "mailchimp_last_sync" not in api.get(f"/person/{current['uid']}/").json()
    for row in memberships:
        assert "mailchimp_last_sync" not in api.get(f"/membership/{row['uid']}/").json()
    entries = api.get(f"/audit/v2/{api.bucket}/person/{ada['uid']}/audit").json()["audit"]
    assert sum("mailchimp_last_sync" in str(e) for e in entries) == 1


def test_a_flagged_membership_segment_syncs_by_itself(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    set_mailchimp(api, standin)
    ada = created(api, "person", {"first_name": "Ada", "email": "ada@x.org"})
    member(api, ada)
    segment = make_segment(
        api, name="Lapsed", resource_type="membership", rules=LAPSED, mailchimp_sync=True
    )
    assert due(api, mailchimp_sync_delay=0) == 1
    assert wait_job(api, last_sync(api, segment["uid"])["job"])["status"] == "completed"
    shown = last_sync(api, segment["uid"])
    assert (shown["status"], shown["upserted"], shown["added"]) == ("completed", 1, 1)
    assert standin.state.segment_emails(AUDIENCE, "Lapsed") == {"ada@x.org"}


def test_other_record_types_are_refused(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    set_mailchimp(api, standin)
    payments = make_segment(api, name="Payments", resource_type="payment")
    assert_error(
        api.get(seg_url(api, payments["uid"], "/all/sync_mailchimp")),
        400,
        "validation_error",
        "segment",
    )
    response = api.post(
        f"/segments/v2/{api.bucket}/create",
        json={"name": "P", "resource_type": "payment", "mailchimp_sync": True},
    )
    assert_error(response, 400, "validation_error", "mailchimp_sync")
