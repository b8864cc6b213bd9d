"""The Xero stand-in behaves as Xero's documentation says, whoever calls it: tokens by the
client credentials grant that expire, the tenant header, `where` and paging of contacts,
validation errors in `Elements`, computed totals, Idempotency-Key replays, 429s."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fold.bench.xero_standin import StandIn
from tests.xero.conftest import CLIENT_ID, CLIENT_SECRET, TENANT


@pytest.fixture
def xero() -> Iterator[StandIn]:
    server = StandIn(CLIENT_ID, CLIENT_SECRET, TENANT, token_seconds=2).start()
    yield server
    server.stop()


def token(server: StandIn, secret: str = CLIENT_SECRET) -> httpx.Response:
    basic = base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()
    return httpx.post(
        f"{server.identity_url}/connect/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )


def api(server: StandIn, method: str, path: str, bearer: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}", "xero-tenant-id": TENANT}
    headers.update(kwargs.pop("headers", {}))
    return httpx.request(method, server.api_url + path, headers=headers, **kwargs)


def test_tokens_and_tenant(xero: StandIn) -> None:
    assert token(xero, "wrong").json() == {"error": "invalid_client"}
    granted = token(xero).json()
    assert granted["token_type"] == "Bearer" and granted["expires_in"] == 2
    bearer = granted["access_token"]
    assert api(xero, "GET", "/Contacts", "nope").status_code == 401
    other = api(xero, "GET", "/Contacts", bearer, headers={"xero-tenant-id": "other"})
    assert other.status_code == 403
    assert api(xero, "GET", "/Contacts", bearer).status_code == 200
    time.sleep(2.1)
    expired = api(xero, "GET", "/Contacts", bearer)
    assert expired.status_code == 401 and "TokenExpired" in expired.json()["Detail"]


def test_contacts_where_and_pages(xero: StandIn) -> None:
    bearer = token(xero).json()["access_token"]
    for i in range(250):
        xero.state.add_contact(f"Person {i:03d}", f"p{i}@example.org")
    where = 'EmailAddress=="P7@EXAMPLE.org" OR Name=="person 011"'
    found = api(xero, "GET", "/Contacts", bearer, params={"where": where, "page": 1}).json()
    assert sorted(c["Name"] for c in found["Contacts"]) == ["Person 007", "Person 011"]
    pages = [api(xero, "GET", "/Contacts", bearer, params={"page": n}).json() for n in (1, 2, 3)]
    assert [len(p["Contacts"]) for p in pages] == [100, 100, 50]
    assert pages[0]["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 3, "itemCount": 250}
    starts = api(
        xero, "GET", "/Contacts", bearer, params={"where": 'Name.StartsWith("Person 24")'}
    ).json()
    assert len(starts["Contacts"]) == 10
    bad = api(xero, "GET", "/Contacts", bearer, params={"where": "Name==Robert'); DROP"})
    assert bad.status_code == 400 and bad.json()["Type"] == "QueryParseException"


def test_invoices(xero: StandIn) -> None:
    bearer = token(xero).json()["access_token"]
    contact = xero.state.add_contact("Ada", "ada@example.org")
    invoice = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact["ContactID"]},
        "Status": "AUTHORISED",
        "DueDate": "2027-01-31",
        "LineAmountTypes": "Inclusive",
        "LineItems": [
            {"Description": "Dues", "Quantity": 1, "UnitAmount": 120, "AccountCode": "200"},
            {"Description": "Book", "Quantity": 3, "UnitAmount": 10, "AccountCode": "260",
             "TaxType": "ZERORATEDOUTPUT"},
        ],
    }  # fmt: skip
    key = {"Idempotency-Key": "k-1"}
    first = api(xero, "PUT", "/Invoices", bearer, json={"Invoices": [invoice]}, headers=key)
    assert first.status_code == 200, first.text
    made = first.json()["Invoices"][0]
    assert (made["SubTotal"], made["TotalTax"], made["Total"]) == (130.0, 20.0, 150.0)
    assert made["InvoiceNumber"] == "INV-0001" and made["Status"] == "AUTHORISED"
    again = api(xero, "PUT", "/Invoices", bearer, json={"Invoices": [invoice]}, headers=key)
    assert again.json()["Invoices"][0]["InvoiceID"] == made["InvoiceID"]
    assert len(xero.state.invoices) == 1 and xero.state.replayed == 1
    wrong = {**invoice, "Contact": {}, "LineItems": [{"Description": "", "AccountCode": "999"}]}
    refused = api(xero, "PUT", "/Invoices", bearer, json={"Invoices": [wrong]})
    assert refused.status_code == 400
    messages = [m["Message"] for m in refused.json()["Elements"][0]["ValidationErrors"]]
    assert "A Contact must be specified for this type of transaction" in messages
    assert "Account code '999' is not a valid code for this document." in messages
    assert "The description field is mandatory for each line item." in messages
    too_long = api(xero, "PUT", "/Invoices", bearer, json={"Invoices": [invoice]},
                   headers={"Idempotency-Key": "k" * 129})  # fmt: skip
    assert too_long.status_code == 400


def test_rate_limits(xero: StandIn) -> None:
    bearer = token(xero).json()["access_token"]
    xero.state.per_minute, xero.state.window = 3, 60.0
    answers = [api(xero, "GET", "/Contacts", bearer) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].headers["X-Rate-Limit-Problem"] == "minute"
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 60
    assert answers[1].headers["X-MinLimit-Remaining"] == "1"
