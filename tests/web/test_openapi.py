"""The OpenAPI document describes the server: every success answer has a schema, errors are
in SPEC 9's shape, nothing lists a status the server never sends; and schemathesis, fuzzing
every operation from the document, finds no server error and no answer off its schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import Database, Tenant, make_tenant

EXAMPLES = 8


def operations(app: Any) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            out.append((method.upper(), path, operation))
    return out


def test_every_success_answer_has_a_schema(app_client: TestClient) -> None:
    for method, path, operation in operations(app_client.app):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        success = [s for s in responses if s.startswith("2")]
        assert len(success) == 1, (method, path, responses)
        content = responses[success[0]].get("content", {})
        schemas = [c.get("schema") for c in content.values()]
        assert schemas and all(schemas), (method, path, content)
        for status, answer in responses.items():
            if status.startswith(("4", "5")):
                shape = answer["content"]["application/json"]["schema"]
                assert shape["required"] == ["error", "description", "type"], (method, path)
    spec = app_client.app.openapi()  # type: ignore[attr-defined]
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_imports_and_csv_are_documented(app_client: TestClient) -> None:
    paths = app_client.app.openapi()["paths"]  # type: ignore[attr-defined]
    imports = paths["/api/v2/{bucket}/{resource_type}/import"]["post"]
    assert {"413", "415"} <= set(imports["responses"])
    assert "application/x-ndjson" in imports["requestBody"]["content"]
    csv = paths["/segments/v2/{bucket}/segment/{uid}/all/csv"]["get"]
    assert list(csv["responses"]["200"]["content"]) == ["text/csv"]


@pytest.fixture
def fuzz_tenant(app_client: TestClient, database: Database) -> tuple[Tenant, dict[str, str]]:
    """A bucket with a record, a segment, a fieldset and a job; the path values that name
    them, so the fuzzer reaches success answers and not only 404s."""
    tenant = make_tenant(app_client, database, prefix="fz")
    api = tenant.admin
    person = api.post("/person/", json={"first_name": "Ada", "email": "ada@example.org"}).json()
    segment = api.post(
        f"/segments/v2/{api.bucket}/create", json={"name": "All", "resource_type": "person"}
    ).json()
    fieldset = api.post(
        f"/segments/v2/{api.bucket}/fieldset", json={"name": "F", "resource": "person"}
    ).json()
    job = api.post(
        f"/segments/v2/{api.bucket}/segment/{segment['uid']}/action",
        json={"action": "add_tag", "value": "x", "description": "fuzz"},
    ).json()
    values = {
        "bucket": tenant.bucket,
        "resource_type": "person",
        "record": person["uid"],
        "segment": segment["uid"],
        "fieldset": fieldset["uid"],
        "job_uid": job["sheep_event"].split("/")[-2],
        "view_context": "crm",
    }
    return tenant, values


def path_values(path: str, values: dict[str, str]) -> dict[str, str]:
    out = {k: v for k, v in values.items() if "{" + k + "}" in path}
    if "{uid}" in path:
        kind = "fieldset" if "/fieldset/" in path else "segment" if "/segment/" in path else ""
        out["uid"] = values[kind or "record"]
    return out


def fuzz(operation: Any, values: dict[str, str], headers: dict[str, str]) -> None:
    """A few examples of one operation; raises what schemathesis finds."""
    path = path_values(operation.path, values)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        if case.path_parameters:
            case.path_parameters.update(path)
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )

    run()


def test_fuzzing_finds_no_server_error(
    app_client: TestClient, fuzz_tenant: tuple[Tenant, dict[str, str]]
) -> None:
    """Every operation, a few examples each, on the tenant's things with its admin key."""
    tenant, values = fuzz_tenant
    fuzzed = schemathesis.openapi.from_asgi("/openapi.json", app_client.app)
    headers = {"Authorization": f"Bearer {tenant.admin.key}"}
    failures: list[str] = []
    for result in fuzzed.get_all_operations():
        operation = result.ok()
        try:
            fuzz(operation, values, headers)
        except (Exception, BaseExceptionGroup) as exc:
            found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
            for one in found:
                text = " ".join(str(one).split())[:600]
                failures.append(f"{operation.method.upper()} {operation.path}: {text}")
    assert not failures, "\n\n".join(failures)
