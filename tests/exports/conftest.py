"""Export test helpers: contacts with addresses, opt-outs and awkward values."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, Tenant
from tests.segments.conftest import make_segment, seg_url

CONTACTS = [
    {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.org", "tags": ["donor", "vip"],
     "date_of_birth": "1815-12-10", "joined": "2020-05-01",
     "address": {"line1": "12 St James's Square", "locality": "London", "postal_code": "SW1Y 4JH",
                 "country": "United Kingdom"}},
    {"first_name": "Bob", "last_name": "Brown", "email": "bob@x.org", "email_opt_out": True,
     "address": {"line1": "1 Park Lane", "locality": "Leeds", "postal_code": "LS6 1AA"}},
    {"first_name": "Cat", "last_name": "Clarke", "email": "cat@x.org", "post_opt_out": True,
     "address": {"line1": "3 High St", "locality": "York", "postal_code": "YO1 7HH"}},
    {"first_name": "Dan", "last_name": "Doe", "email": "dan@x.org", "sms_opt_out": True,
     "address": {"line1": "4 Low Rd", "locality": "Hull", "postal_code": "HU1 1AA"}},
    {"first_name": "=HYPERLINK(\"http://evil\")", "last_name": "Eve", "email": "eve@x.org",
     "notes": "+1 555 0100"},
    {"first_name": "Fay", "last_name": "Ford", "email": "fay@x.org", "email_opt_out": False,
     "address": {"locality": "Bath"}},
]  # fmt: skip


@pytest.fixture
def contacts(tenant: Tenant) -> dict[str, dict[str, Any]]:
    out = {}
    for person in CONTACTS:
        response = tenant.admin.post("/person/", json=person)
        assert response.status_code == 201, response.text
        out[person["last_name"]] = response.json()
    return out


def everyone(api: Api, **body: Any) -> dict[str, Any]:
    return make_segment(api, name=body.pop("name", "Mailing list"), **body)


def start(api: Api, uid: str, kind: str, method: str = "GET", **params: Any) -> Any:
    url = seg_url(api, uid, f"/all/{kind}")
    if method == "GET":
        return api.get(url, params=params)
    return api.post(url, json=params)


def journal(api: Api, receipt: dict[str, Any]) -> dict[str, Any]:
    """The journal once its export has finished (jobs run inline in tests; polled anyway)."""
    uid = receipt["journal_uri"].split("/")[-2]
    for _ in range(200):
        body: dict[str, Any] = api.get(f"/journal/{uid}/").json()
        if body["status"] not in ("created", "running", "cancelling"):
            return body
    raise AssertionError("the export did not finish")


def export_file(api: Api, uid: str, kind: str, **params: Any) -> tuple[dict[str, Any], Any]:
    """Run an export to its end: its journal and the download response."""
    response = start(api, uid, kind, **params)
    assert response.status_code == 200, response.text
    done = journal(api, response.json())
    assert done["status"] == "completed", done
    download = api.get(done["download"])
    assert download.status_code == 200, download.text
    return done, download
