"""Bad settings, templates and action options are 400s naming the `param`; invoice
templates are a bucket's own; the client secret is never answered nor logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fold.bench.xero_standin import StandIn
from tests.conftest import Database, Tenant, assert_error, make_tenant
from tests.messages.conftest import fill_contacts
from tests.segments.conftest import make_segment
from tests.xero.conftest import (
    CLIENT_SECRET,
    LINES,
    make_template,
    set_xero,
    start,
    wait_job,
)


def templates_url(bucket: str, suffix: str = "") -> str:
    return f"/xero/v1/{bucket}/invoice_templates{suffix}"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"line_items": LINES}, "name"),
        ({"name": "T"}, "line_items"),
        ({"name": "T", "line_items": []}, "line_items"),
        ({"name": "T", "line_items": ["x"]}, "line_items[0]"),
        ({"name": "T", "line_items": [{"unit_amount": 5}]}, "line_items[0].description"),
        ({"name": "T", "line_items": [{"description": "d"}]}, "line_items[0].unit_amount"),
        (
            {"name": "T", "line_items": [{"description": "d", "unit_amount": "ten"}]},
            "line_items[0].unit_amount",
        ),
        (
            {"name": "T", "line_items": [{"description": "d", "unit_amount": 1.23456}]},
            "line_items[0].unit_amount",
        ),
        (
            {"name": "T", "line_items": [{"description": "d", "unit_amount": 1, "quantity": 0}]},
            "line_items[0].quantity",
        ),
        (
            {"name": "T", "line_items": [{"description": "d", "unit_amount": 1, "colour": "red"}]},
            "line_items[0].colour",
        ),
        (
            {
                "name": "T",
                "line_items": [{"description": "d", "unit_amount": 1, "account_code": "2 00"}],
            },
            "line_items[0].account_code",
        ),
        ({"name": "T", "line_items": LINES, "due": {"rule": "someday"}}, "due.rule"),
        (
            {
                "name": "T",
                "line_items": LINES,
                "due": {"rule": "days_after_invoice_date", "days": 400},
            },
            "due.days",
        ),
        (
            {"name": "T", "line_items": LINES, "due": {"rule": "fixed_date", "date": "soon"}},
            "due.date",
        ),
        ({"name": "T", "line_items": LINES, "currency_code": "gbp"}, "currency_code"),
        ({"name": "T", "line_items": LINES, "line_amount_types": "gross"}, "line_amount_types"),
        ({"name": "T", "line_items": LINES, "reference": 7}, "reference"),
        ({"name": "T", "line_items": LINES, "colour": "red"}, "colour"),
    ],
)
def test_bad_templates(xt: Tenant, body: dict[str, Any], param: str) -> None:
    api = xt.admin
    assert_error(api.post(templates_url(api.bucket), json=body), 400, "validation_error", param)
    assert api.get(templates_url(api.bucket)).json()["total"] == 0


def test_templates_api(xt: Tenant, xero_client: TestClient, database: Database) -> None:
    api = xt.admin
    made = make_template(api, reference="{{ 7 * 7 }} <script>")
    assert made["reference"] == "{{ 7 * 7 }} <script>"  # data, never rendered
    assert made["line_items"][1] == {
        "description": "Journal, printed",
        "quantity": 2,
        "unit_amount": 7.5,
        "account_code": None,
        "tax_type": "ZERORATEDOUTPUT",
    }
    uid = made["uid"]
    changed = api.patch(templates_url(api.bucket, f"/{uid}"), json={"name": "Renamed"}).json()
    assert changed["name"] == "Renamed" and changed["line_items"] == made["line_items"]
    assert_error(
        api.patch(templates_url(api.bucket, f"/{uid}"), json={"due": {"rule": "x"}}),
        400,
        "validation_error",
        "due.rule",
    )
    assert api.get(templates_url(api.bucket, f"/{uid}")).json()["name"] == "Renamed"
    assert_error(
        api.get(templates_url(api.bucket, "?colour=red")), 400, "validation_error", "colour"
    )
    assert_error(
        xt.viewer.post(templates_url(api.bucket), json={"name": "V", "line_items": LINES}),
        403,
        "permission_denied",
    )
    # Another bucket neither sees nor uses it.
    other = make_tenant(xero_client, database, prefix="xo")
    assert_error(other.admin.get(templates_url(other.bucket, f"/{uid}")), 404, "not_found")
    segment = make_segment(other.admin, name="Other")
    assert_error(
        start(other.admin, segment["uid"], "raise-draft-xero-invoice", uid),
        400,
        "validation_error",
        "value",
    )
    assert api.delete(templates_url(api.bucket, f"/{uid}")).status_code == 200
    assert_error(api.get(templates_url(api.bucket, f"/{uid}")), 404, "not_found")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"tenant_id": "my-org"}, "tenant_id"),
        ({"client_secret": ""}, "client_secret"),
        ({"default_tax_type": "20% VAT"}, "default_tax_type"),
        ({"api_url": "ftp://xero"}, "api_url"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_settings(xt: Tenant, standin: StandIn, change: dict[str, Any], param: str) -> None:
    api = xt.admin
    body = {
        "client_id": "abc",
        "client_secret": CLIENT_SECRET,
        "tenant_id": standin.state.tenant_id,
        **change,
    }
    response = api.put(f"/settings/v1/{api.bucket}/xero", json=body)
    assert_error(response, 400, "validation_error", param)
    assert CLIENT_SECRET not in response.text


def test_action_options(xt: Tenant, standin: StandIn) -> None:
    api = xt.admin
    segment = make_segment(api, name="People")
    template = make_template(api)
    action = "raise-authorised-xero-invoice"
    assert_error(
        start(api, segment["uid"], action, template["uid"]), 400, "validation_error", "xero"
    )
    set_xero(api, standin)
    assert_error(start(api, segment["uid"], action, "nope"), 400, "validation_error", "value")
    groups = make_segment(api, name="Groups", resource_type="group")
    assert_error(
        start(api, groups["uid"], action, template["uid"]), 400, "validation_error", "action"
    )
    assert_error(
        start(api, segment["uid"], action, template["uid"], batch_size=0),
        400,
        "validation_error",
        "batch_size",
    )


def test_secret_never_answered_nor_logged(
    xt: Tenant, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    api = xt.admin
    caplog.set_level(logging.DEBUG)
    described = set_xero(api, standin)
    assert described["secrets_set"] == {"client_secret": True}
    assert "client_secret" not in described["values"]
    fill_contacts(xt.db, xt.bucket, [{"first_name": "Grace", "email": "grace@example.org"}])
    segment = make_segment(api, name="One")
    template = make_template(api)
    response = start(api, segment["uid"], "raise-draft-xero-invoice", template["uid"])
    job = wait_job(api, response.json()["sheep_event"])
    assert job["succeeded"] == 1
    answers = [
        response.text,
        api.get(f"/sheep_event/{job['uid']}/").text,
        api.get(f"/settings/v1/{api.bucket}/xero").text,
        api.get(f"/settings/v1/{api.bucket}").text,
    ]
    assert not any(CLIENT_SECRET in text for text in answers)
    assert CLIENT_SECRET not in caplog.text
    # A wrong secret: each record fails with Xero's refusal, which does not echo the secret.
    set_xero(api, standin, client_secret="wrong-secret-value")
    response = start(api, segment["uid"], "raise-draft-xero-invoice", template["uid"])
    job = wait_job(api, response.json()["sheep_event"])
    assert job["failed"] == 1 and "invalid_client" in job["errors"][0]["reason"]
    assert "wrong-secret-value" not in api.get(f"/sheep_event/{job['uid']}/").text
