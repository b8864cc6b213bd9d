"""A client written from the reference's published Segments v2 description works unchanged:
the calls it makes, in the forms it sends them, answer every field the description
documents with its JSON type (SPEC 2.6, issue 9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tenant, api_routes, assert_error
from tests.segments.conftest import make_segment, names, seg_url

REFERENCE = Path(__file__).resolve().parents[3] / "shared/reference/segments-v2.openapi.json"
JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "array": list,
    "object": dict,
}
# Fields the reference types as a string that Fold answers as null when there is nothing to
# say (a root segment has no parent; a segment made in Fold has no legacy uid; a type with no
# contact link has no contact field). docs/decisions.md lists them.
NULLABLE = {"parent_segment", "legacy_uid", "contact_field", "template"}


def reference() -> dict[str, Any]:
    if not REFERENCE.exists():
        pytest.skip(f"the reference description is not at {REFERENCE}")
    loaded: dict[str, Any] = json.loads(REFERENCE.read_text())
    return loaded


def documented(path: str, method: str, status: str = "200") -> dict[str, Any]:
    """The success schema the reference documents for a path."""
    answer = reference()["paths"][path][method]["responses"][status]
    # Some answers are documented without a body schema: nothing to hold Fold to there.
    schema: dict[str, Any] = answer.get("content", {}).get("application/json", {}).get("schema")
    return schema or {}


def type_problems(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Every documented field missing from `value` or answered with another JSON type."""
    kind = schema.get("type")
    if kind is None:
        return []
    name = where.rsplit(".", 1)[-1].split("[")[0]
    if value is None and name in NULLABLE:
        return []
    expected = JSON_TYPES[kind]
    if not isinstance(value, expected) or (kind in ("integer", "number") and value is True):
        return [f"{where}: expected {kind}, got {type(value).__name__} {value!r:.60}"]
    problems: list[str] = []
    if kind == "object":
        for field, sub in schema.get("properties", {}).items():
            if field not in value:
                problems.append(f"{where}.{field}: missing")
            else:
                problems += type_problems(value[field], sub, f"{where}.{field}")
    if kind == "array" and "items" in schema:
        for index, item in enumerate(value[:5]):
            problems += type_problems(item, schema["items"], f"{where}[{index}]")
    return problems


def assert_shape(body: Any, path: str, method: str = "get", status: str = "200") -> None:
    problems = type_problems(body, documented(path, method, status), "answer")
    assert not problems, "\n".join(problems)


BASE = "/segments/v2/{bucket}"
RULE = {"field": "last_name", "operator": "equals", "value": "Lovelace"}


class TestReferenceClient:
    def test_create_in_every_form_the_reference_allows(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        url = f"/segments/v2/{api.bucket}/create"
        forms: list[dict[str, Any]] = [
            {"params": {"resource_type": "person", "rules": json.dumps([RULE])}},
            {"json": {"resource_type": "person", "rules": [RULE]}},
            {"json": {"resource_type": "person", "rules": json.dumps([RULE])}},
            {"json": {"resource_type": "person", "rules": {"match": "all", "conditions": [RULE]}}},
            {"json": {"resource_type": "person", "rules": RULE}},
            {"params": {"resource_type": "person", "rules": json.dumps(RULE)}},
            {"data": {"resource_type": "person", "rules": json.dumps(RULE)}},
        ]
        for form in forms:
            response = api.post(url, **form)
            assert response.status_code == 201, (form, response.text)
            body = response.json()
            assert_shape(body, f"{BASE}/create", "post", "201")
            assert body["rules"] == {
                "match": "all",
                "conditions": [{**RULE, "value": "Lovelace"}],
            }, form
            assert names(api, body["uid"]) == ["Ada"], form

    def test_a_single_rule_object_is_never_dropped(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        one = {"field": "last_name", "operator": "equals", "value": "Job"}
        seg = make_segment(api, rules=one)
        assert seg["rules"]["conditions"] == [one]
        assert names(api, seg["uid"]) == []
        for neither in ({"fields": "last_name"}, {}, {"conditions": [], "extra": 1}):
            assert_error(
                api.post(
                    f"/segments/v2/{api.bucket}/create",
                    json={"name": "x", "resource_type": "person", "rules": neither},
                ),
                400,
                "validation_error",
                "rules",
            )

    def test_name_is_optional(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        url = f"/segments/v2/{api.bucket}/create"
        plain = api.post(url, params={"resource_type": "person"})
        assert plain.status_code == 201, plain.text
        assert plain.json()["name"] == "Untitled segment"
        ruled = api.post(url, json={"resource_type": "person", "rules": [RULE]}).json()
        assert ruled["name"] == "People whose last name is 'Lovelace'"

    def test_reads_answer_the_documented_fields(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        folder = make_segment(api, name="Folder", segment_type="auxiliary")
        seg = make_segment(api, name="Lovelaces", rules=[RULE], parent_segment=folder["uri"])
        b = f"/segments/v2/{api.bucket}"
        calls = [
            (f"{b}", f"{BASE}", {"page": 1, "page_size": 10}),
            (f"{b}/all", f"{BASE}/all", {"page_size": "25.0"}),
            (f"{b}/find", f"{BASE}/find", {"name": "love"}),
            (f"{b}/trees", f"{BASE}/trees", {}),
            (f"{b}/crm", f"{BASE}/{{view_context}}", {"page": "1"}),
            (seg_url(api, seg["uid"], "/count"), f"{BASE}/segment/{{uid}}/count", {}),
            (seg_url(api, seg["uid"], "/lookup"), f"{BASE}/segment/{{uid}}/lookup", {"q": "ad"}),
            (seg_url(api, seg["uid"], "/config"), f"{BASE}/segment/{{uid}}/config", {}),
            (
                seg_url(api, seg["uid"], "/all"),
                f"{BASE}/segment/{{uid}}/all",
                {"q": "ada", "verbose": "true", "page": 1.0},
            ),
        ]
        for url, path, params in calls:
            response = api.get(url, params=params)
            assert response.status_code == 200, (url, response.text)
            assert_shape(response.json(), path)
        trees = api.get(f"{b}/trees").json()["segments"]
        root = next(s for s in trees if s["uid"] == folder["uid"])
        assert [c["uid"] for c in root["children"]] == [seg["uid"]]
        lookup = api.get(seg_url(api, seg["uid"], "/lookup"), params={"q": "ad"}).json()
        assert [r["display_value"].split()[0] for r in lookup] == ["Ada"]

    def test_fieldsets_answer_the_documented_fields(self, tenant: Tenant) -> None:
        api = tenant.admin
        url = f"/segments/v2/{api.bucket}/fieldset"
        made = api.post(url, params={"resource": "person", "fields": "first_name,email"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["name"] == "Untitled fieldset"
        assert body["field_display"] == [
            {"field": "first_name", "type": "string"},
            {"field": "email", "type": "string"},
        ]
        assert_shape(body, f"{BASE}/fieldset", "post", "201")
        one = api.get(f"{url}/{body['uid']}")
        assert_shape(one.json(), f"{BASE}/fieldset/{{uid}}")
        listing = api.get(url, params={"resource": "person"}).json()
        assert listing["errors"] == [] and listing["fieldsets"]
        assert_shape(listing, f"{BASE}/fieldset")
        again = api.post(url, json=body)
        assert again.status_code == 201, again.text

    def test_replace_and_delete_answer_rules_as_an_object(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        seg = make_segment(api, name="All")
        for kind in ("replace", "delete"):
            response = api.post(
                seg_url(api, seg["uid"], f"/action/{kind}"),
                params={"rules": json.dumps([RULE]), "safe_mode": "true", "verbose": "false"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert_shape(body, f"{BASE}/segment/{{uid}}/action/{kind}", "post")
            assert body["lambda_params"]["rules"] == {"match": "all", "conditions": [RULE]}

    def test_export_receipts_answer_the_documented_fields(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        seg = make_segment(api, name="All")
        for kind, params in (
            ("xlsx", {"gdpr_bypass": "false"}),
            ("excel", {}),
            ("pdf", {"template": "table", "debug": "false"}),
        ):
            response = api.get(seg_url(api, seg["uid"], f"/all/{kind}"), params=params)
            assert response.status_code == 200, response.text
            assert_shape(response.json(), f"{BASE}/segment/{{uid}}/all/{kind}")

    def test_every_reference_parameter_is_accepted(self, app_client: Any) -> None:
        """Each query parameter the reference documents for a path Fold serves is one that
        Fold's route reads (and so never refused as unknown)."""
        served: dict[tuple[str, str], Any] = {}
        for r in api_routes(app_client.app):
            for method in r.methods:
                served[(r.path.rstrip("/"), method.lower())] = r
        assert ("/segments/v2/{bucket}/create", "post") in served
        missing = []
        for path, ops in reference()["paths"].items():
            for method, op in ops.items():
                found = served.get((path.rstrip("/"), method))
                if found is None:
                    continue
                accepts = accepted(found)
                for param in op.get("parameters", []):
                    if param["in"] == "query" and not accepts(param["name"]):
                        missing.append(f"{method.upper()} {path} ?{param['name']}")
        assert not missing, missing


def accepted(route: Any) -> Any:
    """The accepts test of a route registered through fold.api.routing.route."""
    for dep in route.dependant.dependencies:
        accepts = getattr(dep.call, "accepts", None)
        if accepts is not None:
            return accepts
    raise AssertionError(f"{route.path} does not check its parameters")


def test_action_receipt_uri_can_be_read(tenant: Tenant, people: dict[str, Any]) -> None:
    api = tenant.admin
    seg = make_segment(api, name="Everyone")
    receipt = api.post(
        seg_url(api, seg["uid"], "/action"),
        json={"action": "add_tag", "value": "v", "description": "tag"},
    ).json()
    action_uri = receipt["action"]
    assert action_uri.startswith(f"/{api.bucket}/action/")
    response = api.get(f"/api/v2{action_uri}")
    assert response.status_code == 200, response.text
    action = response.json()
    assert action["uri"] == action_uri and action["action"] == "add_tag"
    assert action["value"] == "v" and action["sheep_event"] == receipt["sheep_event"]
    assert action["status"] == "completed"


def test_other_tenants_cannot_read_an_action(
    tenant: Tenant, other_tenant: Tenant, people: dict[str, Any]
) -> None:
    api = tenant.admin
    seg = make_segment(api, name="Everyone")
    receipt = api.post(
        seg_url(api, seg["uid"], "/action"), json={"action": "debug", "description": "d"}
    ).json()
    uid = receipt["action"].split("/")[-2]
    assert_error(other_tenant.admin.get(f"/action/{uid}/"), 404, "not_found")
