"""Nothing sent is silently ignored (SPEC 9): an unknown or unsupported parameter is a 400
naming it, on every endpoint; flags take only their usual spellings; and every route checks
its parameters, so a new one cannot forget to."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tenant, api_routes, assert_error
from tests.segments.conftest import make_segment, names, people, seg_url

__all__ = ["people"]


def test_unknown_parameters_are_refused_everywhere(tenant: Tenant, people: dict[str, Any]) -> None:
    api = tenant.admin
    seg = make_segment(api, name="Everyone")["uid"]
    b = f"/segments/v2/{api.bucket}"
    calls = [
        # Read from a snapshot, never today's answer: before the first one it is a 400.
        ("GET", seg_url(api, seg, "/all"), {"as_of": "2026-01-01"}, "as_of"),
        ("GET", seg_url(api, seg, "/count"), {"as_of": "2026-01-01"}, "as_of"),
        ("GET", seg_url(api, seg, "/lookup"), {"as_of": "2026-01-01"}, "as_of"),
        ("GET", seg_url(api, seg), {"expand": "1"}, "expand"),
        ("GET", f"{b}/trees", {"depth": "2"}, "depth"),
        ("GET", f"{b}", {"sort": "name"}, "sort"),
        ("GET", f"{b}/find", {"name": "x", "nmae": "y"}, "nmae"),
        ("GET", seg_url(api, seg, "/config"), {"x": "1"}, "x"),
        ("DELETE", seg_url(api, seg), {"cascde": "true"}, "cascde"),
        ("GET", "/person/x1/", {"fields": "a"}, "fields"),
        ("GET", "/", {"verbose": "true"}, "verbose"),
        ("GET", f"/audit/v2/{api.bucket}/audit", {"limt": "5"}, "limt"),
    ]
    for method, url, params, bad in calls:
        assert_error(api.request(method, url, params=params), 400, "validation_error", bad)
    # In a body as in the query string; the segment was not changed.
    assert_error(
        api.patch(seg_url(api, seg), json={"name": "New", "colour": "red"}),
        400,
        "validation_error",
        "colour",
    )
    assert api.get(seg_url(api, seg)).json()["name"] == "Everyone"
    assert_error(
        api.post(f"{b}/create", json={"name": "x", "resource_type": "person", "rulez": []}),
        400,
        "validation_error",
        "rulez",
    )
    # A record body is data, not parameters: its fields are stored, not refused.
    created = api.post("/person/", json={"first_name": "Eve", "shoe_size": 5})
    assert created.status_code == 201 and created.json()["shoe_size"] == 5


def test_unknown_sort_and_odd_flags_are_refused(tenant: Tenant, people: dict[str, Any]) -> None:
    api = tenant.admin
    seg = make_segment(api, name="Everyone")["uid"]
    url = seg_url(api, seg, "/all")
    assert_error(api.get(url, params={"sort": "shoe_size"}), 400, "validation_error", "sort")
    assert_error(api.get(url, params={"verbose": "maybe"}), 400, "validation_error", "verbose")
    assert names(api, seg, sort="-first_name") == ["Ada", "Bob", "Cat", "Dan"]
    first = api.get(url, params={"sort": "-first_name"}).json()["results"][0]
    assert first["display_value"].startswith("Dan")
    for word in ("true", "1", "yes", "on", "TRUE", "On"):
        record = api.get(url, params={"verbose": word}).json()["results"][0]
        assert "email" in record or "tags" in record, word
    for word in ("false", "0", "no", "off"):
        record = api.get(url, params={"verbose": word}).json()["results"][0]
        assert "tags" not in record, word


@pytest.mark.parametrize("value", ["25.0", "25", 25.0])
def test_paging_takes_whole_decimals(tenant: Tenant, value: Any) -> None:
    api = tenant.admin
    response = api.get(f"/segments/v2/{api.bucket}", params={"page_size": value, "page": "1.0"})
    assert response.status_code == 200, response.text
    assert response.json()["page_size"] == 25


def test_paging_refuses_fractions(tenant: Tenant) -> None:
    api = tenant.admin
    for value in ("2.5", "1e999", "nan", "true"):
        assert_error(
            api.get(f"/segments/v2/{api.bucket}", params={"page": value}),
            400,
            "validation_error",
            "page",
        )


def test_every_route_checks_its_parameters(app_client: Any) -> None:
    """Every API route is registered through fold.api.routing.route, which adds the check."""
    unchecked = []
    routes = api_routes(app_client.app)
    assert len(routes) > 40
    for r in routes:
        # The web interface's pages are HTML for a browser, not the API that SPEC 9 binds.
        if r.path in ("/health", "/docs", "/openapi.json") or r.path.startswith("/ui"):
            continue
        if not any(hasattr(d.call, "accepts") for d in r.dependant.dependencies):
            unchecked.append(f"{sorted(r.methods)} {r.path}")
    assert not unchecked, unchecked


def test_no_key_is_a_401_before_a_404(tenant: Tenant, other_tenant: Tenant) -> None:
    api = tenant.admin
    for path in (
        f"/segments/v2/{api.bucket}/segment/{'0' * 24}/nowhere",
        f"/api/v2/{api.bucket}/person/{'0' * 24}/nowhere/else",
        f"/audit/v2/{api.bucket}/nowhere/at/all/x",
    ):
        assert_error(api.client.get(path), 401, "authentication_error")
        assert_error(
            api.client.get(path, headers={"Authorization": "Bearer fold_nope"}),
            401,
            "authentication_error",
        )
        assert_error(other_tenant.admin.get(path), 403, "permission_denied")
        assert_error(api.get(path), 404, "not_found")
