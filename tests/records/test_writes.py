"""One record's writes in plain SQL (fold.records.writes): what they store, the change
clock they carry, and a session that read the record before seeing the change."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from fold.auth.policies import Caller
from fold.buckets.service import ensure_bucket
from fold.db.engine import unit_of_work
from fold.db.models import AuditEntry, Record
from fold.errors import Conflict
from fold.records import clock, service
from tests.conftest import Database


def caller_in(db: Database) -> Caller:
    bucket = f"w{secrets.token_hex(4)}"
    with unit_of_work(db.sessions) as session:
        ensure_bucket(session, bucket)
    return Caller(bucket=bucket, policy="admin", user_uri=f"/{bucket}/user/t/")


def test_a_create_and_a_patch_store_the_row_its_clock_and_audit(database: Database) -> None:
    caller = caller_in(database)
    with unit_of_work(database.sessions) as session:
        made = service.create(
            session, caller=caller, resource_type="person", body={"email": "a@x.org"}
        )
        assert clock.wrote(session, caller.bucket)
    with unit_of_work(database.sessions) as session:
        before = clock.current(session.connection(), caller.bucket)
    with unit_of_work(database.sessions) as session:
        out = service.patch(
            session, caller=caller, resource_type="person", uid=made["uid"],
            body={"first_name": "Ann"},
        )  # fmt: skip
    assert out["first_name"] == "Ann" and out["display_value"] == "Ann"
    with unit_of_work(database.sessions) as session:
        dialect = session.get_bind().dialect.name
        changed = session.scalars(
            select(Record.uid).where(
                Record.bucket == caller.bucket, clock.changed_since(dialect, before)
            )
        ).all()
        assert changed == [made["uid"]]
        row = session.get(Record, (caller.bucket, "person", made["uid"]))
        assert row is not None and row.data == {"email": "a@x.org", "first_name": "Ann"}
        messages = session.scalars(
            select(AuditEntry.message)
            .where(AuditEntry.bucket == caller.bucket)
            .order_by(AuditEntry.uid)
        ).all()
        assert messages == ["Created", "Changed"]


def test_a_taken_key_names_its_holder_and_writes_nothing(database: Database) -> None:
    caller = caller_in(database)
    with unit_of_work(database.sessions) as session:
        held = service.create(
            session, caller=caller, resource_type="person", body={"email": "a@x.org"}
        )
    with pytest.raises(Conflict, match=held["uri"]), unit_of_work(database.sessions) as session:
        service.create(session, caller=caller, resource_type="person", body={"email": "a@x.org"})
    with unit_of_work(database.sessions) as session:
        count = session.scalars(select(Record.uid).where(Record.bucket == caller.bucket)).all()
        assert count == [held["uid"]]


def test_a_record_read_before_a_change_in_the_same_session_is_read_again(
    database: Database,
) -> None:
    caller = caller_in(database)
    with unit_of_work(database.sessions) as session:
        made = service.create(session, caller=caller, resource_type="person", body={})
    with unit_of_work(database.sessions) as session:
        held = session.get(Record, (caller.bucket, "person", made["uid"]))
        assert held is not None and "first_name" not in held.data
        service.patch(
            session, caller=caller, resource_type="person", uid=made["uid"],
            body={"first_name": "Ann"},
        )  # fmt: skip
        assert held.data["first_name"] == "Ann"
        again = service.get(session, caller=caller, resource_type="person", uid=made["uid"])
        assert again["first_name"] == "Ann"
