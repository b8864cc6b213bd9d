"""Xero test helpers: the stand-in of Xero's identity service and Accounting API, an app
whose Xero calls are not paced (the stand-in's limits are set per test), a tenant whose
Xero settings point at the stand-in, templates, and waiting for a job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fold.bench.xero_standin import StandIn
from fold.web.app import create_app
from tests.conftest import Api, Database, Tenant, make_tenant, settings_for
from tests.segments.conftest import seg_url

SECRET = "test-secret-key-for-xero"
CLIENT_ID = "6B3C1F0E2A9D4E7F8A1B2C3D4E5F6A7B"
CLIENT_SECRET = "xero-client-secret-never-shown-1234567890"
TENANT = "3f0a3c2e-1b7d-4f55-9c1e-0d6a2b9e8f11"
LINES = [
    {"description": "Annual membership", "quantity": 1, "unit_amount": 60, "account_code": "200"},
    {
        "description": "Journal, printed",
        "quantity": 2,
        "unit_amount": 7.5,
        "tax_type": "ZERORATEDOUTPUT",
    },
]


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn(CLIENT_ID, CLIENT_SECRET, TENANT, per_minute=100_000).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def xero_client(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = settings_for(
        database,
        secret_key=SECRET,
        xero_backoff=0.01,
        xero_calls_per_minute=100_000,
        data_dir=str(tmp_path_factory.mktemp("data")),
    )
    app = create_app(settings, database.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def xt(xero_client: TestClient, database: Database) -> Tenant:
    return make_tenant(xero_client, database, prefix="xero")


def set_xero(api: Api, server: StandIn, **extra: Any) -> dict[str, Any]:
    body = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "tenant_id": TENANT,
        "default_account_code": "200",
        "default_tax_type": "OUTPUT2",
        "identity_url": server.identity_url,
        "api_url": server.api_url,
        **extra,
    }
    response = api.put(f"/settings/v1/{api.bucket}/xero", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def make_template(api: Api, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Membership renewal")
    body.setdefault("line_items", LINES)
    body.setdefault("due", {"rule": "days_after_invoice_date", "days": 14})
    body.setdefault("reference", "Renewal 2027")
    response = api.post(f"/xero/v1/{api.bucket}/invoice_templates", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def start(api: Api, segment_uid: str, action: str, template_uid: str, **extra: Any) -> Any:
    body = {"action": action, "value": template_uid, "description": "Renewal invoices", **extra}
    return api.post(seg_url(api, segment_uid, "/action"), json=body)


def wait_job(api: Api, uri: str, stall: float = 120) -> dict[str, Any]:
    """The job once finished; fails only when its progress stands still for `stall` s."""
    uid = uri.rstrip("/").split("/")[-1]
    deadline = time.monotonic() + stall
    seen = None
    while True:
        body: dict[str, Any] = api.get(f"/sheep_event/{uid}/").json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        if body["processed"] != seen:
            seen, deadline = body["processed"], time.monotonic() + stall
        assert time.monotonic() < deadline, f"the job stood still: {body}"
        time.sleep(0.05)
