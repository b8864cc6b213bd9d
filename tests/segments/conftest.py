"""Segment test helpers: a small bucket of people to segment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, Tenant

PEOPLE = [
    {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.org", "tags": ["donor"],
     "address": {"locality": "London", "postal_code": "N1 9GU"}, "geo": "51.536,-0.103",
     "membership_status": "active", "joined": "2020-05-01"},
    {"first_name": "Bob", "last_name": "Brown", "email": "bob@x.org",
     "tags": ["volunteer", "donor"],
     "address": {"locality": "Leeds", "postal_code": "LS6 1AA"}, "geo": "53.81,-1.56",
     "membership_status": "lapsed", "joined": "2015-01-01"},
    {"first_name": "Cat", "last_name": "Clarke", "email": "cat@x.org", "tags": [],
     "address": {"locality": "london ", "postal_code": "SW1A 1AA"}, "geo": "51.501,-0.142",
     "membership_status": "active", "joined": "2023-03-03", "email_opt_out": True},
    {"first_name": "Dan", "last_name": "Doe", "tags": ["volunteer"],
     "address": {"locality": "York", "postal_code": "YO1 7HH"}},
]  # fmt: skip


def make_segment(api: Api, status: int = 201, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Segment")
    body.setdefault("resource_type", "person")
    response = api.post(f"/segments/v2/{api.bucket}/create", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def seg_url(api: Api, uid: str, suffix: str = "") -> str:
    return f"/segments/v2/{api.bucket}/segment/{uid}{suffix}"


@pytest.fixture
def people(tenant: Tenant) -> dict[str, dict[str, Any]]:
    out = {}
    for person in PEOPLE:
        response = tenant.admin.post("/person/", json=person)
        assert response.status_code == 201, response.text
        out[person["first_name"]] = response.json()
    return out


def names(api: Api, uid: str, **params: Any) -> list[str]:
    response = api.get(seg_url(api, uid, "/all"), params={"page_size": 100, **params})
    assert response.status_code == 200, response.text
    return sorted(r["display_value"].split()[0] for r in response.json()["results"])
