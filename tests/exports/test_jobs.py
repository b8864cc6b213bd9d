"""Export jobs: the receipt, the journal, the download and who may see it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fold.exports.service import purge
from fold.web.app import create_app
from tests.conftest import Database, Tenant, assert_error, settings_for
from tests.exports.conftest import everyone, export_file, journal, start

RECEIPT_KEYS = {
    "bucket", "uid", "policy", "gdpr_bypass", "gdpr_channel", "user_uri", "template",
    "journal_uri", "report_format", "debug", "use_mapreduce", "lambda_prefix",
}  # fmt: skip


class TestReceipt:
    @pytest.mark.parametrize("method", ["GET", "POST"])
    @pytest.mark.parametrize("kind", ["xlsx", "excel", "pdf"])
    def test_get_or_post_answers_the_receipt(
        self, tenant: Tenant, contacts: dict[str, Any], kind: str, method: str
    ) -> None:
        api = tenant.viewer
        seg = everyone(tenant.admin)
        response = start(api, seg["uid"], kind, method)
        assert response.status_code == 200, response.text
        receipt = response.json()
        assert set(receipt) == RECEIPT_KEYS
        assert receipt["use_mapreduce"] is False and receipt["debug"] is False
        assert (receipt["bucket"], receipt["uid"], receipt["policy"]) == (
            api.bucket,
            seg["uid"],
            "viewer",
        )
        assert (receipt["gdpr_bypass"], receipt["gdpr_channel"]) == (False, "all")
        assert receipt["report_format"] == kind
        assert receipt["journal_uri"].startswith(f"/{api.bucket}/journal/")
        assert journal(api, receipt)["status"] == "completed"

    def test_labels_default_to_the_post_channel(
        self, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        seg = everyone(tenant.admin)
        receipt = start(tenant.admin, seg["uid"], "pdf", template="labels").json()
        assert (receipt["gdpr_channel"], receipt["template"]) == ("post", "labels")

    def test_debug_checks_and_starts_nothing(
        self, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        seg = everyone(tenant.admin)
        receipt = start(tenant.admin, seg["uid"], "xlsx", debug="true").json()
        assert receipt["debug"] is True and receipt["journal_uri"] is None

    def test_bad_inputs(self, tenant: Tenant, contacts: dict[str, Any]) -> None:
        api = tenant.admin
        uid = everyone(api)["uid"]
        assert_error(start(api, uid, "xlsx", template="nope"), 400, "validation_error", "template")
        assert_error(start(api, uid, "xlsx", size="big"), 400, "validation_error", "size")
        assert_error(
            start(api, uid, "pdf", gdpr_bypass="true"),
            400,
            "validation_error",
            "gdpr_bypass_reason",
        )
        assert_error(
            start(tenant.editor, uid, "pdf", gdpr_bypass="true", gdpr_bypass_reason="x"),
            403,
            "permission_denied",
        )
        folder = everyone(api, name="Folder", segment_type="auxiliary")
        assert_error(start(api, folder["uid"], "xlsx"), 400, "validation_error")
        assert_error(start(api, "0" * 24, "xlsx"), 404, "not_found")


class TestJournal:
    def test_says_what_was_exported_and_downloads(
        self, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        api = tenant.editor
        seg = everyone(tenant.admin, name="Spring appeal / 2026")
        done, download = export_file(api, seg["uid"], "xlsx")
        assert done["rows"] == 3 and done["left_out_gdpr"] == 3
        assert done["segment"] == seg["uri"] and done["report_format"] == "xlsx"
        assert done["fieldset"] is None and done["user"].startswith(f"/{api.bucket}/api_key/")
        assert done["created"] and done["finished"] and done["size"] == len(download.content)
        assert download.headers["content-type"] == (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        disposition = download.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="Spring-appeal-2026-export-20')
        assert disposition.endswith('.xlsx"')
        assert download.content[:2] == b"PK"
        job_path = done["sheep_event"].replace(f"/{api.bucket}/", "/", 1)
        job = api.get(job_path).json()
        assert (job["status"], job["succeeded"], job["skipped"]) == ("completed", 3, 3)
        assert_error(api.post(f"{job_path}undo"), 409, "conflict")

    def test_another_bucket_sees_nothing(
        self, tenant: Tenant, other_tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        done, _ = export_file(tenant.admin, everyone(tenant.admin)["uid"], "pdf")
        uid = done["uid"]
        theirs = other_tenant.admin
        # Their own bucket: no such journal, the same answer as for a uid never used.
        for path in (f"/journal/{uid}/", f"/journal/{uid}/download"):
            body = assert_error(theirs.get(path), 404, "not_found")
            never = assert_error(theirs.get(path.replace(uid, "1" * 24)), 404, "not_found")
            assert body["description"] == never["description"].replace("1" * 24, uid)
        # Ours, with their key: refused before anything is looked up.
        assert_error(theirs.get(f"/api/v2/{tenant.bucket}/journal/{uid}/download"), 403,
                     "permission_denied")  # fmt: skip

    def test_a_running_export_is_a_409(
        self, database: Database, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        app = create_app(settings_for(database), database.engine)

        class Held:
            def send_after_commit(self, *args: Any) -> None:
                return None  # never sent: the job stays created

        app.state.queue = Held()
        with TestClient(app, raise_server_exceptions=False) as client:
            api = tenant.admin.__class__(client, tenant.bucket, tenant.admin.key)
            receipt = start(api, everyone(api)["uid"], "xlsx").json()
            uid = receipt["journal_uri"].split("/")[-2]
            assert api.get(f"/journal/{uid}/").json()["status"] == "created"
            assert_error(api.get(f"/journal/{uid}/download"), 409, "conflict")

    def test_files_go_after_the_retention_period(
        self, database: Database, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        api = tenant.admin
        done, _ = export_file(api, everyone(api)["uid"], "xlsx")
        assert purge(database.sessions, settings_for(database, export_retention_days=30)) == 0
        assert api.get(done["download"]).status_code == 200
        removed = purge(database.sessions, settings_for(database, export_retention_days=-1))
        assert removed >= 1
        assert_error(api.get(done["download"]), 404, "not_found")
        kept = api.get(f"/journal/{done['uid']}/").json()
        assert kept["rows"] == 3 and kept["download"] is None

    def test_bypass_in_a_job_is_audited_with_its_count(
        self, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        api = tenant.admin
        seg = everyone(api)
        done, _ = export_file(
            api, seg["uid"], "pdf", template="labels", gdpr_bypass="true",
            gdpr_bypass_reason="Posting the AGM notice, a legal duty",
        )  # fmt: skip
        # Labels: Eve has no address, Fay no first line; Clarke (post opt-out) let through.
        assert (done["rows"], done["left_out_no_address"], done["gdpr_bypassed"]) == (4, 2, 1)
        assert done["gdpr_bypass_reason"] == "Posting the AGM notice, a legal duty"
        audit = api.get(f"/audit/v2/{api.bucket}/segment/{seg['uid']}/audit")
        entries = audit.json()
        entries = entries if isinstance(entries, list) else entries["audit"]
        assert any("a legal duty" in e["message"] and "1 opted-out" in e["message"]
                   for e in entries)  # fmt: skip
