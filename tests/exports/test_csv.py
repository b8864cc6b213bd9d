"""The streamed CSV: GDPR by channel, bypass rules, and text no spreadsheet evaluates."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.conftest import Api, Tenant, assert_error
from tests.exports.conftest import everyone
from tests.segments.conftest import seg_url


def csv_rows(api: Api, uid: str, **params: Any) -> list[dict[str, str]]:
    response = api.get(seg_url(api, uid, "/all/csv"), params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="Mailing')
    return list(csv.DictReader(io.StringIO(response.text)))


def last_names(rows: list[dict[str, str]]) -> list[str]:
    return sorted(r["display_value"].split()[-1] for r in rows)


class TestGdpr:
    @pytest.mark.parametrize(
        ("channel", "left_out"),
        [
            (None, {"Brown", "Clarke", "Doe"}),
            ("all", {"Brown", "Clarke", "Doe"}),
            ("email", {"Brown"}),
            ("post", {"Clarke"}),
            ("sms", {"Doe"}),
        ],
    )
    def test_each_channel_leaves_out_who_opted_out_of_it(
        self, tenant: Tenant, contacts: dict[str, Any], channel: str | None, left_out: set[str]
    ) -> None:
        api = tenant.admin
        seg = everyone(api)
        params = {"gdpr_channel": channel} if channel else {}
        expected = sorted(set(contacts) - left_out)
        assert last_names(csv_rows(api, seg["uid"], **params)) == expected

    def test_bypass_needs_a_reason_and_an_admin_and_is_audited(
        self, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        seg = everyone(tenant.admin)
        url = seg_url(tenant.admin, seg["uid"], "/all/csv")
        assert_error(
            tenant.admin.get(url, params={"gdpr_bypass": "true"}),
            400,
            "validation_error",
            "gdpr_bypass_reason",
        )
        for api in (tenant.editor, tenant.viewer):
            assert_error(
                api.get(url, params={"gdpr_bypass": "true", "gdpr_bypass_reason": "Audit"}),
                403,
                "permission_denied",
            )
        rows = csv_rows(
            tenant.admin, seg["uid"], gdpr_bypass="true", gdpr_bypass_reason="Legal hold request"
        )
        assert last_names(rows) == sorted(contacts)
        audit = tenant.admin.get(f"/audit/v2/{tenant.bucket}/segment/{seg['uid']}/audit").json()
        entries = audit if isinstance(audit, list) else audit["audit"]
        bypass = [e for e in entries if "GDPR bypass" in e["message"]]
        assert len(bypass) == 1 and "Legal hold request" in bypass[0]["message"]
        diff = {d["field"]: d["value"] for d in bypass[0]["clean_diff"]}
        assert diff["gdpr_bypassed"] == 3 and diff["gdpr_bypass_reason"] == "Legal hold request"

    def test_a_viewer_exports_without_bypass(
        self, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        seg = everyone(tenant.admin)
        assert len(csv_rows(tenant.viewer, seg["uid"])) == 3

    def test_bad_inputs(self, tenant: Tenant, contacts: dict[str, Any]) -> None:
        api = tenant.admin
        url = seg_url(api, everyone(api)["uid"], "/all/csv")
        assert_error(
            api.get(url, params={"gdpr_channel": "fax"}), 400, "validation_error", "gdpr_channel"
        )
        assert_error(
            api.get(url, params={"gdpr_bypass": "maybe"}), 400, "validation_error", "gdpr_bypass"
        )
        assert_error(api.get(url, params={"colour": "red"}), 400, "validation_error", "colour")
        # What the export jobs take but a streamed CSV cannot honour is refused, not ignored.
        assert_error(api.get(url, params={"debug": "true"}), 400, "validation_error", "debug")
        assert_error(api.get(url, params={"policy": "viewer"}), 400, "validation_error", "policy")


def test_formula_text_is_inert(tenant: Tenant, contacts: dict[str, Any]) -> None:
    api = tenant.admin
    seg = everyone(api)
    fieldset = api.post(
        f"/segments/v2/{api.bucket}/fieldset",
        json={"name": "Names", "fields": ["first_name", "last_name", "notes", "tags"]},
    )
    assert fieldset.status_code == 201, fieldset.text
    rows = csv_rows(api, seg["uid"], template="Names")
    eve = next(r for r in rows if r["last_name"] == "Eve")
    assert eve["first_name"] == '\'=HYPERLINK("http://evil")'
    assert eve["notes"] == "'+1 555 0100"
    ada = next(r for r in rows if r["last_name"] == "Lovelace")
    assert ada["first_name"] == "Ada" and ada["tags"] == "donor, vip"
