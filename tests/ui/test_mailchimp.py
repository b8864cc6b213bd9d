"""The segment page shows a segment's last Mailchimp sync (when, status, added, removed,
failed), and starts one with "Sync to Mailchimp now", on any segment Mailchimp takes once
the bucket has Mailchimp settings; the builder's "Keep in sync with Mailchimp" box sets
`mailchimp_sync`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fold.bench.mailchimp_standin import StandIn
from tests.conftest import Tenant
from tests.mailchimp.conftest import KEY, set_mailchimp
from tests.messages.conftest import fill_contacts
from tests.ui.conftest import csrf_of, make_user, sign_in


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn(KEY).start()
    yield server
    server.stop()


def test_segment_page_shows_the_last_sync(
    app_client: TestClient, tenant: Tenant, standin: StandIn
) -> None:
    api = tenant.admin
    set_mailchimp(api, standin)
    standin.state.add_member("aud1", "gone@example.org")
    standin.state.add_segment("aud1", "Newsletter", ["gone@example.org"])
    fill_contacts(
        tenant.db,
        tenant.bucket,
        [{"first_name": f"N{i}", "email": f"n{i}@example.org"} for i in range(3)]
        + [{"first_name": "Bad", "email": "bad@nowhere.invalid"}],
    )
    synced = api.post(
        f"/segments/v2/{tenant.bucket}/create",
        json={"name": "Newsletter", "resource_type": "person", "mailchimp_sync": True},
    ).json()
    plain = api.post(
        f"/segments/v2/{tenant.bucket}/create", json={"name": "Plain", "resource_type": "person"}
    ).json()
    web = sign_in(app_client, tenant.bucket, *make_user(tenant.db, tenant.bucket, "editor"))
    page = web.page(f"/ui/{tenant.bucket}/segments/{synced['uid']}")
    assert "data-mailchimp" in page and "data-never" in page
    # Not kept in sync, but the bucket has Mailchimp: it can be synced by hand. Payments
    # cannot be synced at all.
    shown = web.page(f"/ui/{tenant.bucket}/segments/{plain['uid']}")
    assert "data-mailchimp" in shown and "Sync to Mailchimp now" in shown
    assert "Sync it now" in shown
    payments = api.post(
        f"/segments/v2/{tenant.bucket}/create", json={"name": "P", "resource_type": "payment"}
    ).json()
    assert "data-mailchimp" not in web.page(f"/ui/{tenant.bucket}/segments/{payments['uid']}")

    # "Sync now" (jobs run inline here): the page then shows what the sync did.
    answer = web.client.post(
        f"/ui/{tenant.bucket}/segments/{synced['uid']}/sync_mailchimp",
        data={"csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and "/jobs/" in answer.headers["location"]
    page = web.page(f"/ui/{tenant.bucket}/segments/{synced['uid']}")
    found = {
        name: re.search(rf"data-{name}>([^<]*)<", page)
        for name in ("status", "added", "removed", "failed", "when")
    }
    assert {k: m.group(1) if m else None for k, m in found.items() if k != "when"} == {
        "status": "completed",
        "added": "3",
        "removed": "1",
        "failed": "1",
    }
    assert found["when"] and re.match(r"\d{4}-\d\d-\d\dT", found["when"].group(1))
    # Without the form's CSRF token nothing starts.
    refused = web.client.post(
        f"/ui/{tenant.bucket}/segments/{synced['uid']}/sync_mailchimp", follow_redirects=False
    )
    assert refused.status_code in (400, 403)
    # A viewer sees the result but no button.
    viewer = sign_in(app_client, tenant.bucket, *make_user(tenant.db, tenant.bucket, "viewer"))
    page = viewer.page(f"/ui/{tenant.bucket}/segments/{synced['uid']}")
    assert "data-added" in page and "sync_mailchimp" not in page


def test_the_builder_keeps_a_segment_in_sync(app_client: TestClient, tenant: Tenant) -> None:
    web = sign_in(app_client, tenant.bucket, *make_user(tenant.db, tenant.bucket, "editor"))
    base = f"/ui/{tenant.bucket}"
    form = web.page(f"{base}/new")
    assert 'name="mailchimp_sync"' in form
    fields = {"csrf_token": csrf_of(form), "segment_type": "dynamic", "rules": "[]"}
    made = web.client.post(
        f"{base}/new",
        data={**fields, "name": "Synced", "resource_type": "membership", "mailchimp_sync": "true"},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    uid = made.headers["location"].rsplit("/", 1)[-1]
    api = tenant.admin
    assert api.get(f"/segments/v2/{tenant.bucket}/segment/{uid}").json()["mailchimp_sync"] is True
    assert 'name="mailchimp_sync" value="true" checked' in web.page(f"{base}/segments/{uid}/edit")
    # Unticked on an edit: off again.
    edited = web.client.post(
        f"{base}/segments/{uid}/edit",
        data={**fields, "name": "Synced", "resource_type": "membership"},
        follow_redirects=False,
    )
    assert edited.status_code == 303, edited.text
    assert api.get(f"/segments/v2/{tenant.bucket}/segment/{uid}").json()["mailchimp_sync"] is False
    # Payments cannot be synced: the builder says so and keeps the box ticked.
    refused = web.client.post(
        f"{base}/new",
        data={**fields, "name": "Donors", "resource_type": "payment", "mailchimp_sync": "true"},
    )
    assert refused.status_code == 400 and "mailchimp_sync needs contacts" in refused.text
    assert 'name="mailchimp_sync" value="true" checked' in refused.text
