"""The per-bucket settings store: administrators only, encrypted at rest, secrets never in
an answer or a log line, every bad option named at once."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import BucketSetting
from fold.settings import crypto
from tests.conftest import Tenant, assert_error

SMTP = {
    "host": "mail.example.org",
    "port": 2525,
    "username": "fold",
    "password": "hunter2-very-secret",
    "from_address": "office@example.org",
}


def url(mt: Tenant, section: str = "") -> str:
    return f"/settings/v1/{mt.bucket}" + (f"/{section}" if section else "")


def test_set_and_read_without_the_secret(mt: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    api = mt.admin
    with caplog.at_level(logging.DEBUG):
        response = api.put(url(mt, "smtp"), json=SMTP)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["values"]["host"] == "mail.example.org" and body["values"]["port"] == 2525
    assert body["values"]["security"] == "starttls"
    assert body["secrets_set"] == {"password": True}
    for answer in (response, api.get(url(mt, "smtp")), api.get(url(mt))):
        assert answer.status_code == 200
        assert "hunter2" not in answer.text
    assert "hunter2" not in caplog.text

    with unit_of_work(mt.db.sessions) as session:
        sealed = session.scalar(
            select(BucketSetting.sealed).where(BucketSetting.bucket == mt.bucket)
        )
    assert sealed and "hunter2" not in sealed and "mail.example.org" not in sealed

    # PATCH changes only what is sent; the password stays.
    patched = api.patch(url(mt, "smtp"), json={"port": "587"}).json()
    assert patched["values"]["port"] == 587 and patched["secrets_set"] == {"password": True}
    cleared = api.delete(url(mt, "smtp")).json()
    assert cleared["configured"] is False


def test_only_administrators(mt: Tenant) -> None:
    for api in (mt.editor, mt.viewer):
        assert_error(api.get(url(mt, "smtp")), 403, "permission_denied")
        assert_error(api.put(url(mt, "smtp"), json=SMTP), 403, "permission_denied")


def test_bad_options_are_named(mt: Tenant) -> None:
    api = mt.admin
    body = assert_error(
        api.put(
            url(mt, "smtp"),
            json={"host": "h", "port": "abc", "from_address": "nope", "colour": "red"},
        ),
        400,
        "validation_error",
    )
    params = {p["param"] for p in body["errors"]}
    assert params == {"port", "from_address", "colour"}
    assert_error(api.get(url(mt, "fax")), 404, "not_found", "section")
    assert_error(api.put(url(mt, "sms"), json={"base_url": "ftp://x"}), 400, "validation_error")


def test_sealing_needs_the_same_key(tmp_path: object) -> None:
    one = Settings(database_url="sqlite://", secret_key="key-number-one")
    two = Settings(database_url="sqlite://", secret_key="two")
    sealed = crypto.seal(one, b"secret")
    assert crypto.open_sealed(one, sealed) == b"secret"
    with pytest.raises(crypto.InvalidToken):
        crypto.open_sealed(two, sealed)
    assert "key-number-one" not in repr(one)


def test_a_key_file_is_made_when_none_is_set(tmp_path: object) -> None:
    from pathlib import Path

    where = Path(str(tmp_path))
    settings = Settings(database_url="sqlite://", data_dir=str(where))
    sealed = crypto.seal(settings, b"x")
    key = where / "secret.key"
    assert key.exists() and oct(key.stat().st_mode)[-3:] == "600"
    assert crypto.open_sealed(settings, sealed) == b"x"


def test_settings_saved_under_another_key_fail_messages_loudly(mt: Tenant) -> None:
    from fold.db.models import BucketSetting

    api = mt.admin
    assert api.put(url(mt, "smtp"), json=SMTP).status_code == 200
    other = Settings(database_url="sqlite://", secret_key="a-different-key")
    with unit_of_work(mt.db.sessions) as session:
        row = session.get(BucketSetting, (mt.bucket, "smtp"))
        assert row is not None
        row.sealed = crypto.seal(other, b"{}")
    described = api.get(url(mt, "smtp")).json()
    assert described["configured"] is True and "cannot be decrypted" in described["error"]
    person = {"first_name": "A", "email": "a@example.org"}
    assert api.post("/person/", json=person).status_code == 201
    template = api.post(
        f"/messages/v1/{mt.bucket}/templates",
        json={"name": "T", "channel": "email", "subject": "s", "text_body": "t"},
    ).json()
    segment = api.post(
        f"/segments/v2/{mt.bucket}/create", json={"name": "All", "resource_type": "person"}
    ).json()
    receipt = api.post(
        f"/segments/v2/{mt.bucket}/segment/{segment['uid']}/action",
        json={"action": "send-templated-email", "value": template["uid"], "description": "x"},
    ).json()
    job = api.get(f"/sheep_event/{receipt['sheep_event'].split('/')[-2]}/").json()
    assert job["failed"] == 1 and "cannot be decrypted" in job["errors"][0]["reason"]
    # Setting them again, under the current key, mends it.
    assert api.put(url(mt, "smtp"), json=SMTP).json()["configured"] is True
    assert "error" not in api.get(url(mt, "smtp")).json()


def test_the_command_line(mt: Tenant, tmp_path: object) -> None:
    import os
    import subprocess
    import sys

    from tests.messages.conftest import SECRET

    env = {
        **os.environ,
        "FOLD_DATABASE_URL": mt.db.url,
        "FOLD_DATA_DIR": str(tmp_path),
        "FOLD_SECRET_KEY": SECRET,
    }
    fold = [sys.executable, "-m", "fold.cli.main", "settings"]
    done = subprocess.run(
        [*fold, "set", mt.bucket, "smtp", "host=smtp.example.org", "password=-",
         "from_address=office@example.org"],
        env=env, input="pw-from-stdin\n", capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "password = (set, hidden)" in done.stdout and "pw-from-stdin" not in done.stdout
    shown = subprocess.run(
        [*fold, "show", mt.bucket], env=env, capture_output=True, text=True, check=True
    )
    assert "host = smtp.example.org" in shown.stdout and "pw-from-stdin" not in shown.stdout
    # The API (same database and key) sees what the CLI set, and not the secret either.
    answer = mt.admin.get(url(mt, "smtp"))
    assert answer.json()["values"]["host"] == "smtp.example.org"
    assert "pw-from-stdin" not in answer.text
    bad = subprocess.run(
        [*fold, "set", mt.bucket, "smtp", "port=abc"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "port" in bad.stderr and "Traceback" not in bad.stderr
