"""The `fold` command: keys, users, import and demo against the test databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fold.cli.main import cli
from tests.conftest import Database, make_tenant


def run(database: Database, *args: str) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, list(args), env={"FOLD_DATABASE_URL": database.url})


class TestKeys:
    def test_create_prints_the_key_alone_last_and_revoke_disables_it(
        self, database: Database, app_client: object
    ) -> None:
        created = run(database, "keys", "create", "--bucket", "cli-keys", "--policy", "editor")
        assert created.exit_code == 0, created.output
        key = created.output.strip().splitlines()[-1]
        assert key.startswith("fold_") and " " not in key
        from fastapi.testclient import TestClient

        assert isinstance(app_client, TestClient)
        headers = {"Authorization": f"Bearer {key}"}
        assert app_client.get("/api/v2/cli-keys/person/", headers=headers).status_code == 200
        revoked = run(database, "keys", "revoke", key)
        assert revoked.exit_code == 0, revoked.output
        assert app_client.get("/api/v2/cli-keys/person/", headers=headers).status_code == 401

    def test_bad_inputs_exit_with_a_message(self, database: Database) -> None:
        bad_bucket = run(database, "keys", "create", "--bucket", "Bad Bucket", "--policy", "admin")
        assert bad_bucket.exit_code == 2 and "bucket name" in bad_bucket.output
        missing = run(database, "keys", "revoke", "fold_nope")
        assert missing.exit_code == 2 and "No such key" in missing.output
        assert "Traceback" not in bad_bucket.output + missing.output

    def test_users_add(self, database: Database) -> None:
        result = run(
            database,
            "users",
            "add",
            "cli-user",
            "--bucket",
            "cli-users",
            "--policy",
            "viewer",
            "--password",
            "long-enough",
        )
        assert result.exit_code == 0, result.output
        short = run(
            database,
            "users",
            "add",
            "cli-user",
            "--bucket",
            "cli-users",
            "--policy",
            "viewer",
            "--password",
            "short",
        )
        assert short.exit_code == 2 and "8 characters" in short.output


class TestImport:
    def test_imports_ndjson_with_bad_rows(
        self, database: Database, app_client: object, tmp_path: Path
    ) -> None:
        from fastapi.testclient import TestClient

        assert isinstance(app_client, TestClient)
        tenant = make_tenant(app_client, database)
        lines = [json.dumps({"email": f"p{i}@x.org", "first_name": f"P{i}"}) for i in range(2500)]
        lines[10] = '{"email": "bad@x.org", "date_of_birth": "never"}'
        lines[20] = "not json"
        path = tmp_path / "people.ndjson"
        path.write_text("\n".join(lines) + "\n")
        result = run(database, "import", tenant.bucket, "person", str(path))
        assert result.exit_code == 1, result.output
        assert "2,500 rows" in result.output and "2,498 created" in result.output
        assert "rows/s" in result.output
        assert "line 11 [date_of_birth]" in result.output and "line 21" in result.output
        total = tenant.admin.get("/person/").json()["total"]
        assert total == 2498
        again = run(database, "import", tenant.bucket, "person", str(path))
        assert "2,498 updated" in again.output

    def test_csv_and_unknown_type(self, database: Database, tmp_path: Path) -> None:
        path = tmp_path / "orgs.csv"
        path.write_text("name,address.locality\nRiverside Trust,Leeds\n")
        ok = run(database, "import", "cli-csv", "organisation", str(path))
        assert ok.exit_code == 0 and "1 created" in ok.output
        bad = run(database, "import", "cli-csv", "wizard", str(path))
        assert bad.exit_code == 2 and "resource type" in bad.output


class TestDemo:
    @pytest.mark.parametrize("people", [300])
    def test_demo_fills_a_bucket_and_refuses_a_full_one(
        self, database: Database, people: int
    ) -> None:
        first = run(
            database, "demo", "--bucket", "cli-demo", "--people", str(people), "--seed", "7"
        )
        assert first.exit_code == 0, first.output
        assert f"{people} person" in first.output
        again = run(database, "demo", "--bucket", "cli-demo", "--people", "10")
        assert again.exit_code == 2 and "already holds" in again.output
        quiet = run(database, "demo", "--bucket", "cli-demo", "--if-empty")
        assert quiet.exit_code == 0 and "leaving it" in quiet.output


class TestPostcodes:
    def test_load_replaces_the_table_and_reports_bad_rows(
        self, database: Database, tmp_path: Path
    ) -> None:
        from fold.db.engine import unit_of_work
        from fold.segments.repository import postcode

        path = tmp_path / "postcodes.csv"
        path.write_text(
            "postcode,lat,lng\nSW1A 1AA,51.501,-0.142\nN1 9GU,51.536,-0.103\nbad,999,0\n"
        )
        result = run(database, "postcodes", "load", "cli-pc", str(path))
        assert (
            result.exit_code == 1
            and "loaded 2 postcodes" in result.output
            and "line 4" in result.output
        )
        with unit_of_work(database.sessions) as session:
            assert postcode(session, bucket="cli-pc", code="sw1a1aa") == (51.501, -0.142)
        path.write_text("postcode,lat,lng\nE8 1AA,51.54,-0.06\n")
        assert run(database, "postcodes", "load", "cli-pc", str(path)).exit_code == 0
        with unit_of_work(database.sessions) as session:
            assert postcode(session, bucket="cli-pc", code="SW1A 1AA") is None


class TestWebhookSecret:
    def test_sets_a_generated_or_given_secret(self, database: Database) -> None:
        from fold.db.engine import unit_of_work
        from fold.db.models import Bucket

        made = run(database, "webhook-secret", "cli-hooks")
        assert made.exit_code == 0, made.output
        secret = made.output.strip().splitlines()[-1]
        with unit_of_work(database.sessions) as session:
            bucket = session.get(Bucket, "cli-hooks")
            assert bucket is not None and bucket.webhook_secret == secret and len(secret) >= 32
        short = run(database, "webhook-secret", "cli-hooks", "--secret", "short")
        assert short.exit_code == 2 and "16 to 200" in short.output


class TestKeyReuseAndList:
    def test_save_reuses_a_live_key_and_list_shows_keys_without_secrets(
        self, database: Database, tmp_path: Path
    ) -> None:
        kept = tmp_path / "var" / "make-run.key"
        args = ["keys", "create", "--bucket", "cli-reuse", "--policy", "admin", "--name", "run"]
        first = run(database, *args, "--save", str(kept))
        assert first.exit_code == 0, first.output
        key = first.output.strip().splitlines()[-1]
        assert kept.read_text().strip() == key and (kept.stat().st_mode & 0o777) == 0o600
        again = run(database, *args, "--save", str(kept))
        assert again.exit_code == 0 and again.output.strip().splitlines()[-1] == key
        listed = run(database, "keys", "list", "--bucket", "cli-reuse")
        assert listed.exit_code == 0, listed.output
        lines = listed.output.strip().splitlines()
        assert len(lines) == 1 and "cli-reuse:admin" in lines[0] and "live" in lines[0]
        assert key not in listed.output
        assert run(database, "keys", "revoke", key).exit_code == 0
        fresh = run(database, *args, "--save", str(kept))
        new_key = fresh.output.strip().splitlines()[-1]
        assert new_key != key and kept.read_text().strip() == new_key
        assert "revoked" in run(database, "keys", "list", "--bucket", "cli-reuse").output


def test_keys_are_made_while_a_server_writes(database: Database, tmp_path: Path) -> None:
    """A command that reads and then writes waits its turn while something else commits
    (a running server): on SQLite a deferred transaction overtaken between its read and its
    write would fail at once with "database is locked"."""
    import threading

    from fold.auth.service import create_key
    from fold.db.engine import unit_of_work
    from tests.conftest import sessions_for

    stop = threading.Event()
    writes = [0]

    def server() -> None:  # commits as often as it can, as a busy server does
        factory = sessions_for(database.engine, writes=True)
        while not stop.is_set():
            with unit_of_work(factory) as session:
                create_key(session, bucket="cli-busy-server", policy="viewer", name="server")
            writes[0] += 1

    writer = threading.Thread(target=server)
    writer.start()
    try:
        while writes[0] < 3:  # the writer is going
            threading.Event().wait(0.01)
        results = [
            run(database, "keys", "create", "--bucket", f"cli-busy-{i}", "--policy", "viewer")
            for i in range(12)
        ]
    finally:
        stop.set()
        writer.join()
    for result in results:
        assert result.exit_code == 0, result.output
