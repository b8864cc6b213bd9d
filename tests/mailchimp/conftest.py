"""Mailchimp test helpers: the stand-in server, an app with a settings key, a tenant whose
Mailchimp settings point at the stand-in, and waiting for a sync job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fold.bench.mailchimp_standin import StandIn
from fold.web.app import create_app
from tests.conftest import Api, Database, Tenant, make_tenant, settings_for
from tests.segments.conftest import seg_url

SECRET = "test-secret-key-for-mailchimp"
KEY = "0123456789abcdef0123456789abcdef-us6"
AUDIENCE = "aud1"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn(KEY).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mc_client(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(
        database,
        secret_key=SECRET,
        mailchimp_backoff=0.01,
        data_dir=str(tmp_path_factory.mktemp("data")),
    )
    app = create_app(settings, database.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def mc(mc_client: TestClient, database: Database) -> Tenant:
    return make_tenant(mc_client, database, prefix="mc")


def set_mailchimp(api: Api, server: StandIn, **extra: Any) -> dict[str, Any]:
    body = {"api_key": KEY, "audience_id": AUDIENCE, "base_url": server.base_url, **extra}
    response = api.put(f"/settings/v1/{api.bucket}/mailchimp", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def sync(api: Api, segment_uid: str, method: str = "POST", **params: Any) -> dict[str, Any]:
    response = api.request(method, seg_url(api, segment_uid, "/all/sync_mailchimp"), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_job(api: Api, uri: str, timeout: float = 300) -> dict[str, Any]:
    uid = uri.rstrip("/").split("/")[-1]
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = api.get(f"/sheep_event/{uid}/").json()
        if body["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)
