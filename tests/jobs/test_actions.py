"""Bulk actions (SPEC 3.2, 3.3) run as jobs: each record's result, totals and audit."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import update

from fold.db.engine import unit_of_work
from fold.db.models import Bucket, Record
from tests.conftest import Api, Tenant, assert_error
from tests.jobs.conftest import Receiver, everyone, job, json_body, start
from tests.segments.conftest import make_segment, seg_url


def record(api: Api, person: dict[str, Any]) -> dict[str, Any]:
    response = api.get(f"/person/{person['uid']}/", params={})
    if response.status_code == 404:
        return {"record_state": "deleted"}
    result: dict[str, Any] = response.json()
    return result


def audit_messages(api: Api, person: dict[str, Any]) -> list[str]:
    entries = api.get(f"/audit/v2/{api.bucket}/person/{person['uid']}/audit").json()["audit"]
    return [e["message"] for e in entries]


class TestTags:
    def test_add_tag_once_to_every_record(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.editor
        receipt = start(
            api,
            everyone(api)["uid"],
            action="add_tag",
            value="gala-2026",
            description="Gala invites",
        )
        assert receipt["status"] == "created" and receipt["sheep_event"].startswith(
            f"/{api.bucket}/sheep_event/"
        )
        assert (
            receipt["action"].startswith(f"/{api.bucket}/action/")
            and receipt["value"] == "gala-2026"
        )
        result = job(api, receipt["sheep_event"])
        assert (result["status"], result["total"], result["processed"], result["succeeded"]) == (
            "completed",
            4,
            4,
            4,
        )
        assert result["started"] and result["finished"] and result["description"] == "Gala invites"
        start(api, everyone(api)["uid"], action="add_tag", value="gala-2026")
        for person in people.values():
            assert record(api, person)["tags"].count("gala-2026") == 1
            assert audit_messages(api, person).count("Gala invites") == 1

    def test_remove_tag_and_undo(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        receipt = start(api, everyone(api)["uid"], action="remove_tag", value="donor")
        assert job(api, receipt["sheep_event"])["succeeded"] == 4
        assert all("donor" not in record(api, p).get("tags", []) for p in people.values())
        undo = api.post(f"/sheep_event/{receipt['sheep_event'].split('/')[-2]}/undo").json()
        assert job(api, undo["uri"])["status"] == "completed"
        assert (
            "donor" in record(api, people["Ada"])["tags"]
            and "donor" in record(api, people["Bob"])["tags"]
        )
        assert "donor" not in record(api, people["Cat"])["tags"]


class TestFields:
    def test_set_single_field_reads_the_type_and_undo_restores(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        before = {name: record(api, p) for name, p in people.items()}
        receipt = start(
            api,
            everyone(api)["uid"],
            action="set-single-field",
            field="joined",
            value="2026-02-03T10:00:00Z",
        )
        assert receipt["value"] == "2026-02-03"
        assert {record(api, p)["joined"] for p in people.values()} == {"2026-02-03"}
        uid = receipt["sheep_event"].split("/")[-2]
        undo = api.post(f"/sheep_event/{uid}/undo")
        assert undo.status_code == 200 and job(api, undo.json()["uri"])["succeeded"] == 4
        for name, person in people.items():
            after = record(api, person)
            assert after.get("joined") == before[name].get("joined")
            assert {k: v for k, v in after.items() if k != "last_updated"} == {
                k: v for k, v in before[name].items() if k != "last_updated"
            }
        assert_error(api.post(f"/sheep_event/{uid}/undo"), 409, "conflict")

    def test_empty_value_clears(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        start(
            api,
            everyone(api)["uid"],
            action="set-single-field",
            field="address.postal_code",
            value="",
        )
        assert all("postal_code" not in record(api, p).get("address", {}) for p in people.values())

    def test_refusals_before_any_job(self, tenant: Tenant) -> None:
        api = tenant.admin
        seg = everyone(api)["uid"]
        assert_error(
            api.post(
                seg_url(api, seg, "/action"),
                json={"action": "set-single-field", "value": 1, "description": "d"},
            ),
            400,
            "validation_error",
            "field",
        )
        assert_error(
            api.post(
                seg_url(api, seg, "/action"),
                json={
                    "action": "set-single-field",
                    "field": "date_of_birth",
                    "value": "soon",
                    "description": "d",
                },
            ),
            400,
            "validation_error",
            "value",
        )
        assert_error(
            api.post(seg_url(api, seg, "/action"), json={"action": "teleport", "description": "d"}),
            400,
            "validation_error",
            "action",
        )
        assert_error(
            api.post(seg_url(api, seg, "/action"), json={"action": "add_tag", "value": "x"}),
            400,
            "validation_error",
            "description",
        )
        assert_error(
            api.post(
                seg_url(api, seg, "/action"),
                json={"action": "change-status", "value": "zombie", "description": "d"},
            ),
            400,
            "validation_error",
            "value",
        )
        folder = make_segment(api, segment_type="auxiliary")
        assert_error(
            api.post(
                seg_url(api, folder["uid"], "/action"),
                json={"action": "add_tag", "value": "x", "description": "d"},
            ),
            400,
            "validation_error",
            "segment",
        )
        assert api.get("/sheep_event/").json()["total"] == 0

    def test_change_status(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        start(api, everyone(api)["uid"], action="change-status", value="lapsed")
        assert {record(api, p)["membership_status"] for p in people.values()} == {"lapsed"}

    def test_set_field_on_last_membership(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        ada = people["Ada"]["uri"]
        old = api.post(
            "/membership/", json={"contact": ada, "start_date": "2020-01-01", "status": "expired"}
        ).json()
        new = api.post(
            "/membership/", json={"contact": ada, "start_date": "2025-01-01", "status": "active"}
        ).json()
        receipt = start(
            api,
            everyone(api)["uid"],
            action="set-single-field-on-last-membership",
            field="amount",
            value="45",
        )
        result = job(api, receipt["sheep_event"])
        assert (result["succeeded"], result["failed"]) == (1, 3)
        assert {e["reason"] for e in result["errors"]} == {"the contact has no membership"}
        assert api.get(f"/membership/{new['uid']}/").json()["amount"] == 45
        assert "amount" not in api.get(f"/membership/{old['uid']}/").json()


class TestGroups:
    def test_join_group_once(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        group = api.post("/group/", json={"name": "Choir"}).json()
        donors = make_segment(
            api, rules=[{"field": "tags", "operator": "equals", "value": "donor"}]
        )
        for _ in range(2):
            receipt = start(api, donors["uid"], action="join-group", value=group["uri"])
            assert job(api, receipt["sheep_event"])["succeeded"] == 2
        members = api.get("/group_member/", params={"group": group["uri"]}).json()
        assert sorted(m["contact"] for m in members["results"]) == sorted(
            [people["Ada"]["uri"], people["Bob"]["uri"]]
        )
        assert_error(
            api.post(
                seg_url(api, donors["uid"], "/action"),
                json={"action": "join-group", "value": "/x/group/" + "a" * 24, "description": "d"},
            ),
            400,
            "validation_error",
            "value",
        )


class TestWebhooks:
    def test_form_webhook_with_retries_and_failures(
        self, tenant: Tenant, people: dict[str, Any], receiver: Receiver
    ) -> None:
        api = tenant.admin
        receiver.fail_first = {people["Bob"]["uid"]}
        receipt = start(api, everyone(api)["uid"], action="send-webhook", value=receiver.url)
        result = job(api, receipt["sheep_event"])
        assert (result["succeeded"], result["failed"]) == (4, 0)
        forms = [parse_qs(c["body"].decode()) for c in receiver.calls]
        assert sorted(f["uri"][0] for f in forms) == sorted(
            [p["uri"] for p in people.values()] + [people["Bob"]["uri"]]
        )
        assert {f["display_value"][0] for f in forms} >= {"Ada Lovelace"}

    def test_json_webhook_is_signed(
        self, tenant: Tenant, people: dict[str, Any], receiver: Receiver
    ) -> None:
        api = tenant.admin
        with unit_of_work(tenant.db.sessions) as session:
            session.execute(
                update(Bucket).where(Bucket.name == tenant.bucket).values(webhook_secret="s3cret")
            )
        start(api, everyone(api)["uid"], action="send-json-webhook", value=receiver.url)
        assert len(receiver.calls) == 4
        for call in receiver.calls:
            expected = "sha256=" + hmac.new(b"s3cret", call["body"], hashlib.sha256).hexdigest()
            headers = {k.lower(): v for k, v in call["headers"].items()}
            assert headers["x-fold-signature"] == expected
            assert json_body(call)["uri"] in {p["uri"] for p in people.values()}

    def test_unreachable_url_fails_each_record_and_goes_on(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        receipt = start(
            api,
            everyone(api)["uid"],
            action="send-json-webhook",
            value="http://127.0.0.1:9/nothing",
        )
        result = job(api, receipt["sheep_event"])
        assert (result["status"], result["failed"]) == ("completed", 4)
        assert "ConnectError" in result["errors"][0]["reason"]
        assert_error(
            api.post(f"/sheep_event/{receipt['sheep_event'].split('/')[-2]}/undo"), 409, "conflict"
        )

    def test_private_addresses_are_refused_unless_allowed(self, database: Any) -> None:
        from fastapi.testclient import TestClient

        from fold.web.app import create_app
        from tests.conftest import make_tenant, settings_for

        app = create_app(settings_for(database, allow_private_webhooks=False), database.engine)
        with TestClient(app) as client:
            tenant = make_tenant(client, database)
            seg = everyone(tenant.admin)["uid"]
            for url in ("http://127.0.0.1:8000/x", "http://10.1.2.3/x", "ftp://example.org/x"):
                response = tenant.admin.post(
                    seg_url(tenant.admin, seg, "/action"),
                    json={"action": "send-webhook", "value": url, "description": "d"},
                )
                assert_error(response, 400, "validation_error", "value")


class TestDebugReplaceDelete:
    def test_debug_touches_nothing(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        before = [record(api, p) for p in people.values()]
        receipt = start(api, everyone(api)["uid"], action="debug", value="anything")
        assert job(api, receipt["sheep_event"])["succeeded"] == 4
        assert [record(api, p) for p in people.values()] == before

    def test_replace_recomputes_derived_fields(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        with unit_of_work(tenant.db.sessions) as session:
            session.execute(
                update(Record).where(Record.bucket == tenant.bucket).values(display_value="stale")
            )
        response = api.post(
            seg_url(api, everyone(api)["uid"], "/action/replace"), json={"batch_size": 2}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (
            body["lambda_params"]["batch_size"] == 2 and body["lambda_params"]["safe_mode"] is True
        )
        assert job(api, body["notification_uri"])["succeeded"] == 4
        assert record(api, people["Ada"])["display_value"] == "Ada Lovelace"

    def test_delete_with_rules_and_undo(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        seg = everyone(api)["uid"]
        url = seg_url(api, seg, "/action/delete")
        assert_error(api.post(url, json={}), 400, "validation_error", "safe_mode")
        assert_error(
            api.post(url, json={"batch_size": 2501}), 400, "validation_error", "batch_size"
        )
        assert_error(tenant.editor.post(url, json={}), 403, "permission_denied")
        assert_error(
            tenant.viewer.post(
                seg_url(api, seg, "/action"), json={"action": "debug", "description": "d"}
            ),
            403,
            "permission_denied",
        )
        rules = [{"field": "tags", "operator": "equals", "value": "volunteer"}]
        body = api.post(url, json={"rules": rules}).json()
        assert body["lambda_params"]["rules"] == {"match": "all", "conditions": rules}
        result = job(api, body["notification_uri"])
        assert (result["status"], result["succeeded"]) == ("completed", 2)
        assert record(api, people["Bob"])["record_state"] == "deleted"
        assert record(api, people["Ada"])["record_state"] == "active"
        undo = api.post(f"/sheep_event/{body['notification_uri'].split('/')[-2]}/undo").json()
        assert job(api, undo["uri"])["succeeded"] == 2
        assert record(api, people["Bob"])["record_state"] == "active"
        assert record(api, people["Dan"])["record_state"] == "active"

    def test_large_deletes_need_confirm_count(
        self, tenant: Tenant, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from fold.jobs import service

        monkeypatch.setattr(service, "SAFE_LIMIT", 2)
        api = tenant.admin
        seg = make_segment(
            api, rules=[{"field": "tags", "operator": "or_list", "value": ["donor", "volunteer"]}]
        )
        url = seg_url(api, seg["uid"], "/action/delete")
        error = assert_error(api.post(url, json={}), 400, "validation_error", "confirm_count")
        assert "confirm_count=3" in error["description"]
        assert_error(
            api.post(url, json={"confirm_count": 2}), 400, "validation_error", "confirm_count"
        )
        assert (
            job(api, api.post(url, json={"confirm_count": 3}).json()["notification_uri"])[
                "succeeded"
            ]
            == 3
        )
