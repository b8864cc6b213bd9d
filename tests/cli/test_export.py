"""`fold export`: the API's columns and GDPR rules, to a file, with a progress bar."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
import pypdf

from tests.cli.test_cli import run
from tests.conftest import Tenant
from tests.exports.conftest import contacts, everyone

__all__ = ["contacts"]


def test_each_format_to_a_file(tmp_path: Path, tenant: Tenant, contacts: dict[str, Any]) -> None:
    seg = everyone(tenant.admin, name="Members 2026")
    target = tmp_path / "out.csv"
    result = run(tenant.db, "export", tenant.bucket, seg["uid"], "--format", "csv",
                 "--out", str(target))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 rows" in result.output and "3 who opted out of all" in result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert sorted(r["display_value"].split()[-1] for r in rows) == ["Eve", "Ford", "Lovelace"]
    assert not list(tmp_path.glob("*.part"))

    by_name = tmp_path / "out.xlsx"
    result = run(tenant.db, "export", tenant.bucket, "Members 2026", "--format", "xlsx",
                 "--out", str(by_name), "--gdpr-channel", "sms")  # fmt: skip
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(by_name).worksheets[0]
    assert sheet.max_row == 1 + 5  # Doe opted out of SMS

    labels = tmp_path / "labels.pdf"
    result = run(tenant.db, "export", tenant.bucket, seg["uid"], "--format", "labels",
                 "--out", str(labels), "--gdpr-bypass-reason", "AGM notice")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = pypdf.PdfReader(labels).pages[0].extract_text()
    assert "3 High St" in text  # Clarke opted out of post; the bypass let her through
    assert "1 who opted out included by bypass" in result.output
    audit = tenant.admin.get(f"/audit/v2/{tenant.bucket}/segment/{seg['uid']}/audit").json()
    entries = audit if isinstance(audit, list) else audit["audit"]
    assert any("AGM notice" in e["message"] for e in entries)


def test_bad_inputs_exit_with_a_message(
    tmp_path: Path, tenant: Tenant, contacts: dict[str, Any]
) -> None:
    everyone(tenant.admin)
    missing = run(tenant.db, "export", tenant.bucket, "No such segment", "--format", "pdf",
                  "--out", str(tmp_path / "x.pdf"))  # fmt: skip
    assert missing.exit_code == 2 and "No segment named" in missing.output
    fieldset = run(tenant.db, "export", tenant.bucket, "Mailing list", "--format", "xlsx",
                   "--template", "nope", "--out", str(tmp_path / "x.xlsx"))  # fmt: skip
    assert fieldset.exit_code == 2 and "template" in fieldset.output
    assert not (tmp_path / "x.xlsx").exists() and not (tmp_path / "x.pdf").exists()
    assert "Traceback" not in missing.output + fieldset.output
