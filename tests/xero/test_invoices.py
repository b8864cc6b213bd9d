"""Invoices raised in the Xero stand-in through real HTTP: the right contacts (found by
email, by name, or created once and reused), lines, totals, due dates and statuses; the
`invoice` field on each record, audited; records linked to a contact; Xero's validation
errors counted as failed with its message while the job goes on; 429s and an expired
token waited out and renewed."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fold.bench.xero_standin import StandIn
from tests.conftest import Api, Tenant
from tests.messages.conftest import fill_contacts
from tests.segments.conftest import make_segment
from tests.xero.conftest import make_template, set_xero, start, wait_job

PEOPLE = 40


def person(i: int) -> dict[str, Any]:
    data: dict[str, Any] = {"first_name": f"Ada{i}", "last_name": "Lovelace", "tags": ["renew"]}
    if i % 4 != 3:
        data["email"] = f"Ada{i}@Example.org"
    return data


def record(api: Api, uid: str, resource_type: str = "person") -> dict[str, Any]:
    found: dict[str, Any] = api.get(f"/{resource_type}/{uid}/").json()
    return found


def run(api: Api, segment: str, action: str, template: str) -> dict[str, Any]:
    response = start(api, segment, action, template)
    assert response.status_code == 200, response.text
    return wait_job(api, response.json()["sheep_event"])


def test_authorised_invoices_with_contacts_found_or_made(xt: Tenant, standin: StandIn) -> None:
    api = xt.admin
    set_xero(api, standin)
    state = standin.state
    # Already in Xero: Ada0 by her address (another case), Ada3 (no email in Fold) by name.
    by_email = state.add_contact("A. Lovelace (Xero)", "ada0@example.ORG")
    by_name = state.add_contact("Ada3 Lovelace")
    uids = fill_contacts(xt.db, xt.bucket, [person(i) for i in range(PEOPLE)])
    segment = make_segment(
        api, name="Renewals", rules=[{"field": "tags", "operator": "equals", "value": "renew"}]
    )
    template = make_template(api)

    job = run(api, segment["uid"], "raise-authorised-xero-invoice", template["uid"])
    assert job["status"] == "completed", job
    assert (job["total"], job["succeeded"], job["failed"]) == (PEOPLE, PEOPLE, 0)
    assert job["params"]["batch_size"] == 50  # the action's largest batch
    assert len(state.invoices) == PEOPLE
    assert len(state.contacts) == PEOPLE  # two found, the others made once each
    today = date.today()
    numbers = set()
    for i, uid in enumerate(uids):
        kept = record(api, uid)["invoice"]
        invoice = state.invoices[kept["id"]]
        numbers.add(kept["number"])
        assert kept["number"] == invoice["InvoiceNumber"]
        assert kept["status"] == invoice["Status"] == "AUTHORISED"
        assert kept["url"].endswith(f"/AccountsReceivable/View.aspx?InvoiceID={kept['id']}")
        assert kept["job"] == job["uri"]
        assert kept["total"] == 87.0
        contact = state.contacts[invoice["Contact"]["ContactID"]]
        if i == 0:
            assert contact is by_email
        elif i == 3:
            assert contact is by_name
        elif "email" in person(i):
            assert contact["EmailAddress"] == f"Ada{i}@Example.org"
            assert (contact["Name"], contact["FirstName"]) == (f"Ada{i} Lovelace", f"Ada{i}")
        else:
            assert contact["Name"] == f"Ada{i} Lovelace" and not contact["EmailAddress"]
        assert invoice["Type"] == "ACCREC"
        assert invoice["Reference"] == "Renewal 2027"
        assert invoice["DueDateString"] == f"{(today + timedelta(days=14)).isoformat()}T00:00:00"
        lines = [
            (li["Description"], li["Quantity"], li["UnitAmount"], li["AccountCode"], li["TaxType"])
            for li in invoice["LineItems"]
        ]
        assert lines == [
            ("Annual membership", 1.0, 60.0, "200", "OUTPUT2"),
            ("Journal, printed", 2.0, 7.5, "200", "ZERORATEDOUTPUT"),
        ]
        assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"]) == (75.0, 12.0, 87.0)
    assert len(numbers) == PEOPLE

    entries = api.get(f"/audit/v2/{api.bucket}/person/{uids[5]}/audit").json()["audit"]
    assert [e["message"] for e in entries].count("Renewal invoices") == 1

    # A second job (drafts) reuses every contact and raises new invoices.
    job = run(api, segment["uid"], "raise-draft-xero-invoice", template["uid"])
    assert (job["status"], job["succeeded"]) == ("completed", PEOPLE)
    assert len(state.contacts) == PEOPLE and len(state.invoices) == 2 * PEOPLE
    kept = record(api, uids[1])["invoice"]
    assert kept["status"] == "DRAFT" and "/Edit.aspx?InvoiceID=" in kept["url"]
    assert state.invoices[kept["id"]]["Status"] == "DRAFT"
    # An invoice job cannot be undone: its invoices are in Xero.
    assert api.post(f"/sheep_event/{job['uid']}/undo").status_code == 409


def test_submitted_invoices_for_memberships(xt: Tenant, standin: StandIn) -> None:
    """A segment of records linked to a contact: the invoice is raised for the contact and
    kept on the record the job acted on."""
    api = xt.admin
    set_xero(api, standin)
    uids = fill_contacts(xt.db, xt.bucket, [person(i) for i in range(3)])
    memberships = []
    for n, uid in enumerate([*uids, uids[0]]):
        body = {
            "contact": f"/{api.bucket}/person/{uid}/",
            "status": "active",
            "start_date": f"2026-0{n + 1}-01",
        }
        response = api.post("/membership/", json=body)
        assert response.status_code == 201, response.text
        memberships.append(response.json()["uid"])
    orphan = api.post("/membership/", json={"status": "active"}).json()["uid"]
    segment = make_segment(api, name="Members", resource_type="membership")
    template = make_template(
        api,
        line_items=[{"description": "Membership", "unit_amount": 120, "tax_type": "EXEMPTOUTPUT"}],
        due={"rule": "day_of_following_month", "day": 31},
        line_amount_types="inclusive",
    )
    job = run(api, segment["uid"], "raise-submitted-xero-invoice", template["uid"])
    assert job["status"] == "completed", job
    assert (job["succeeded"], job["failed"]) == (4, 1)
    assert job["errors"][0]["uri"].endswith(f"/membership/{orphan}/")
    assert "names no contact" in job["errors"][0]["reason"]
    state = standin.state
    assert len(state.contacts) == 3  # the contact with two memberships was made once
    first = record(api, memberships[0], "membership")["invoice"]
    again = record(api, memberships[3], "membership")["invoice"]
    assert first["contact_id"] == again["contact_id"] and first["id"] != again["id"]
    assert "invoice" not in record(api, uids[0])
    invoice = state.invoices[first["id"]]
    assert invoice["Status"] == "SUBMITTED" and invoice["LineAmountTypes"] == "Inclusive"
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"]) == (120.0, 0.0, 120.0)
    today = date.today()
    following = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    last_day = (following.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    assert invoice["DueDateString"].startswith(last_day.isoformat())


def test_validation_errors_fail_records_and_the_job_goes_on(xt: Tenant, standin: StandIn) -> None:
    api = xt.admin
    set_xero(api, standin)
    fill_contacts(xt.db, xt.bucket, [person(i) for i in range(6)])
    segment = make_segment(api, name="All")
    template = make_template(
        api,
        line_items=[
            {"description": "Subscription", "unit_amount": 10, "account_code": "999"},
            {"description": "Donation", "unit_amount": 5, "tax_type": "NOSUCHTAX"},
        ],
    )
    job = run(api, segment["uid"], "raise-authorised-xero-invoice", template["uid"])
    assert job["status"] == "completed", job
    assert (job["processed"], job["failed"], job["succeeded"]) == (6, 6, 0)
    reason = job["errors"][0]["reason"]
    assert "Account code '999' is not a valid code for this document." in reason
    assert "The TaxType code 'NOSUCHTAX' does not exist" in reason
    assert not standin.state.invoices
    # A negative total is Xero's to refuse, too.
    template = make_template(
        api, name="Refund", line_items=[{"description": "Refund", "unit_amount": -5}]
    )
    job = run(api, segment["uid"], "raise-draft-xero-invoice", template["uid"])
    assert job["failed"] == 6 and "cannot be negative" in job["errors"][0]["reason"]


def test_rate_limits_and_expired_tokens_are_waited_out(xt: Tenant, standin: StandIn) -> None:
    api = xt.admin
    set_xero(api, standin)
    state = standin.state
    # Xero's minute limit, shrunk to 6 calls in 2 seconds, and three 429s to begin with.
    state.per_minute, state.window = 6, 2.0
    state.refuse_next, state.retry_after = 3, 1
    uids = fill_contacts(xt.db, xt.bucket, [person(i) for i in range(12)])
    segment = make_segment(api, name="Paced")
    template = make_template(api)
    job = run(api, segment["uid"], "raise-authorised-xero-invoice", template["uid"])
    assert (job["status"], job["succeeded"]) == ("completed", 12), job
    assert state.refused > 3  # the told-to ones and the minute limit's
    assert len(state.invoices) == 12
    assert {record(api, u)["invoice"]["id"] for u in uids} == set(state.invoices)
    assert state.most_in_flight <= 5

    # Xero forgets the token (it expired): the next call gets a new one.
    state.per_minute, state.window = 100_000, 60.0
    grants = state.token_grants
    state.tokens.clear()
    job = run(api, segment["uid"], "raise-draft-xero-invoice", template["uid"])
    assert (job["status"], job["succeeded"]) == ("completed", 12), job
    assert state.token_grants == grants + 1


def test_namesakes(xt: Tenant, standin: StandIn) -> None:
    """Xero keeps contact names unique: two namesakes without an address are one Xero
    contact; a namesake with another address is refused by Xero, with its message."""
    api = xt.admin
    set_xero(api, standin)
    people = [
        {"first_name": "Sam", "last_name": "Lee", "email": "sam@example.org"},
        {"first_name": "Sam", "last_name": "Lee"},
        {"first_name": "Sam", "last_name": "Lee"},
        {"first_name": "Sam", "last_name": "Lee", "email": "other.sam@example.org"},
    ]
    uids = fill_contacts(xt.db, xt.bucket, people)
    segment = make_segment(api, name="Sams")
    job = run(api, segment["uid"], "raise-draft-xero-invoice", make_template(api)["uid"])
    assert (job["succeeded"], job["failed"]) == (3, 1), job
    assert "already assigned to another contact" in job["errors"][0]["reason"]
    state = standin.state
    assert len(state.contacts) == 1
    kept = [record(api, u).get("invoice") for u in uids]
    assert len({k["contact_id"] for k in kept if k}) == 1
