"""`fold xero set` keeps the settings (the secret from standard input, never echoed), and
`fold bench xero` raises invoices in the stand-in end to end."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fold.cli.main import cli

TENANT = "3f0a3c2e-1b7d-4f55-9c1e-0d6a2b9e8f11"


def test_xero_set(tmp_path: Path) -> None:
    env = {
        "FOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "FOLD_DATA_DIR": str(tmp_path),
        "FOLD_SECRET_KEY": "cli-secret-key",
    }
    args = ["xero", "set", "demo", "client_id=ABC", "client_secret=-", f"tenant_id={TENANT}"]
    result = CliRunner().invoke(cli, args, env=env, input="the-client-secret\n")
    assert result.exit_code == 0, result.output
    assert "client_secret = (set, hidden)" in result.output
    assert (
        f"tenant_id = {TENANT}" in result.output and "default_account_code = 200" in result.output
    )
    assert "the-client-secret" not in result.output
    shown = CliRunner().invoke(cli, ["settings", "show", "demo", "xero"], env=env)
    assert "client_id = ABC" in shown.output and "the-client-secret" not in shown.output
    bad = CliRunner().invoke(cli, ["xero", "set", "demo", "tenant_id=nope"], env=env)
    assert bad.exit_code != 0 and "tenant_id" in bad.output


def test_bench_xero(tmp_path: Path) -> None:
    env = {"FOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "FOLD_DATA_DIR": str(tmp_path)}
    output = tmp_path / "xero.json"
    args = ["bench", "xero", "--contacts", "40", "--paced", "0", "--output", str(output)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    (run,) = report["runs"]
    assert (run["status"], run["invoices"], run["failed"]) == ("completed", 40, 0)
    assert run["invoices_per_second"] > 0
    assert "invoices/s" in result.output
