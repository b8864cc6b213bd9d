"""No request, however malformed, gets a 500: every route in the OpenAPI document, with odd
path values, bodies and media types, answers in the error shape (SPEC 9)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.conftest import Tenant

ODD_VALUES = ["x", "0" * 24, "../etc", "%00", "a" * 300, "-1", "null"]
BODIES: list[dict[str, Any]] = [
    {"content": b"{", "headers": {"content-type": "application/json"}},
    {"content": b"[1,2,3]", "headers": {"content-type": "application/json"}},
    {
        "content": b'{"rules": {"$where": 1}, "name": [], "page": "x", "action": {}}',
        "headers": {"content-type": "application/json"},
    },
    {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    {
        "content": b"name=%ZZ&rules=[&uris_include=,,,",
        "headers": {"content-type": "application/x-www-form-urlencoded"},
    },
    {"content": b"<xml/>", "headers": {"content-type": "application/xml"}},
    {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}},
]
QUERIES = [
    {
        "page": "-5",
        "page_size": "abc",
        "sort": "$$",
        "q": "%_\\",
        "uri": "/x/y/z/",
        "cascade": "maybe",
        "format": "bin",
    }
]


def routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for path, item in app.openapi()["paths"].items():
        for method in item:
            out.append((method.upper(), path))
    return out


def fill(path: str, bucket: str, value: str) -> str:
    filled = path.replace("{bucket}", bucket)
    for name in ("resource_type", "uid", "job_uid", "view_context"):
        filled = filled.replace("{" + name + "}", value)
    return filled


@pytest.mark.parametrize("value", ODD_VALUES[:4])
def test_every_route_survives_malformed_input(tenant: Tenant, value: str) -> None:
    api = tenant.admin
    app = api.client.app  # type: ignore[attr-defined]
    for (method, path), body, query in itertools.product(routes(app), BODIES, QUERIES):
        url = fill(path, api.bucket, value)
        response = api.client.request(
            method,
            url,
            params=query,
            headers={**api.headers, **body["headers"]},
            content=body["content"],
        )
        assert response.status_code < 500, (method, url, response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert {"error", "description", "type"} <= set(response.json()), (
                method,
                url,
                response.text,
            )


def test_person_type_paths_with_odd_uids(tenant: Tenant) -> None:
    api = tenant.admin
    for value in ODD_VALUES:
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            response = api.request(method, f"/person/{value}/", json={"first_name": "x"})
            assert response.status_code in (400, 404, 405), (method, value, response.text)
