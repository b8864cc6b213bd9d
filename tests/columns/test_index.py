"""The column index answers segment counts and pages exactly as SQL does, and sees every
write — from every write path, from other processes — in the very next count."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from fold.auth.policies import Caller
from fold.columns import index
from fold.columns import store as column_store
from fold.columns.index import ColumnIndex, Options
from fold.db.engine import make_engine, make_sessionmaker, unit_of_work
from fold.db.models import Record
from fold.db.queries import count
from fold.paging import Paging
from fold.records import clock
from fold.records import service as records
from fold.rules.compile import normalise, rules_filter
from fold.rules.filter import Node
from fold.rules.sqlite import FUNCTIONS as SQLITE_FUNCTIONS
from fold.segments.index_or_sql import count_and_page, count_selected
from fold.segments.members import make_context, page, selection
from tests.conftest import Database, Tenant, sessions_for
from tests.jobs.conftest import job, start
from tests.segments.conftest import make_segment, seg_url

NDJSON = {"content-type": "application/x-ndjson"}
SURNAMES = ["Young", "Adams", "adams", "Évans", "Brown", None, "Zhou", "Brown", "Ng", "O'Neil"]


def person(i: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "first_name": f"P{i:02d}",
        "email": f"p{i}@example.org",
        "tags": ["donor"] if i % 3 == 0 else ["volunteer"],
        "joined": f"20{10 + i % 15}-0{1 + i % 9}-1{i % 9}",
    }
    if SURNAMES[i % len(SURNAMES)] is not None:
        body["last_name"] = SURNAMES[i % len(SURNAMES)]
    return {**body, **extra}


@pytest.fixture
def crowd(tenant: Tenant) -> Tenant:
    body = "\n".join(json.dumps(person(i)) for i in range(40))
    result = tenant.admin.post("/person/import", content=body, headers=NDJSON).json()
    assert result["created"] == 40, result
    return tenant


def caller(tenant: Tenant) -> Caller:
    return Caller(bucket=tenant.bucket, policy="admin", user_uri="/test/")


def node_for(db: Database, bucket: str, rules: list[dict[str, Any]], kind: str = "person") -> Node:
    with unit_of_work(db.sessions) as session:
        ctx = make_context(session, bucket=bucket, resource_type=kind)
        normalised, problems = normalise(rules, ctx)
        assert not problems
        return rules_filter(normalised, ctx)


def held(tenant: Tenant) -> bool:
    """Whether the application's column index holds the tenant's people."""
    columns: ColumnIndex = tenant.admin.client.app.state.columns  # type: ignore[attr-defined]
    return columns.holds(tenant.db.engine, tenant.bucket, "person")


def by_index(
    db: Database, bucket: str, node: Node, *, sort: str | None = None, q: str | None = None,
    paging: Paging = Paging(1, 25), columns: ColumnIndex | None = None, kind: str = "person",
) -> tuple[int, list[str]]:  # fmt: skip
    sessions = db.sessions if columns is None else sessions_for(db.engine, columns)
    with unit_of_work(sessions) as session:
        schema = make_context(session, bucket=bucket, resource_type=kind).schema
        total, rows = count_and_page(
            session, bucket=bucket, resource_type=kind, node=node, q=q, schema=schema,
            sort=sort, paging=paging,
        )  # fmt: skip
        return total, [r.uid for r in rows]


def by_sql(
    db: Database, bucket: str, node: Node, *, sort: str | None = None, q: str | None = None,
    paging: Paging = Paging(1, 25), kind: str = "person",
) -> tuple[int, list[str]]:  # fmt: skip
    with unit_of_work(db.sessions) as session:
        schema = make_context(session, bucket=bucket, resource_type=kind).schema
        stmt = selection(bucket, kind, node, q)
        return count(session, stmt), [r.uid for r in page(session, stmt, schema, sort, paging)]


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Limits small enough that a test bucket reaches them."""
    monkeypatch.setattr(index, "MAX_PAGE_END", 12)
    monkeypatch.setattr(index, "MAX_DIRTY", 6)
    monkeypatch.setattr(index, "FEW_ROWS", 0)
    yield


class TestWritesAreInTheNextCount:
    def test_every_write_path(self, crowd: Tenant) -> None:
        api = crowd.admin
        donors = make_segment(api, name="Donors", rules=[rule("tags", "equals", "donor")])
        url = seg_url(api, donors["uid"], "/count")

        def donors_now() -> int:
            return int(api.get(url).json()["count"])

        assert donors_now() == 14
        assert held(crowd)

        made = api.post("/person/", json=person(99, tags=["donor"])).json()
        assert donors_now() == 15
        assert api.patch(f"/person/{made['uid']}/", json={"tags": ["x"]}).status_code == 200
        assert donors_now() == 14
        assert api.put(f"/person/{made['uid']}/", json=person(99)).status_code == 200
        assert donors_now() == 15
        assert api.delete(f"/person/{made['uid']}/").status_code == 200
        assert donors_now() == 14
        assert api.post(f"/person/{made['uid']}/restore").status_code == 200
        assert donors_now() == 15

        # Import: one new donor, one existing person (matched by email) made a donor.
        body = "\n".join(
            [json.dumps(person(100, tags=["donor"])), json.dumps(person(1, tags=["donor"]))]
        )
        result = api.post("/person/import", content=body, headers=NDJSON).json()
        assert (result["created"], result["updated"]) == (1, 1), result
        assert donors_now() == 17

        # A job: everyone who volunteers becomes a donor too.
        volunteers = make_segment(api, name="Vol", rules=[rule("tags", "equals", "volunteer")])
        started = start(api, volunteers["uid"], action="add_tag", value="donor")
        assert job(api, started["sheep_event"])["status"] == "completed"
        assert donors_now() == 42  # everyone

    def test_more_rows_than_one_query_reads(
        self, crowd: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A catch-up reads a few changed rows in one query and more than FEW_CHANGED in
        batches: both are in the next count."""
        monkeypatch.setattr(column_store, "FEW_CHANGED", 2)
        api = crowd.admin
        donors = make_segment(api, name="Donors", rules=[rule("tags", "equals", "donor")])
        url = seg_url(api, donors["uid"], "/count")
        assert api.get(url).json()["count"] == 14
        assert api.post("/person/", json=person(99, tags=["donor"])).status_code == 201
        assert api.get(url).json()["count"] == 15
        body = "\n".join(json.dumps(person(100 + i, tags=["donor"])) for i in range(5))
        assert api.post("/person/import", content=body, headers=NDJSON).json()["created"] == 5
        assert api.get(url).json()["count"] == 20

    def test_another_process_writes(self, crowd: Tenant, database: Database) -> None:
        node = node_for(database, crowd.bucket, [rule("first_name", "starts_with", "Other")])
        assert by_index(database, crowd.bucket, node)[0] == 0
        # What another server process would hold.
        other = make_engine(database.url, sqlite_functions=SQLITE_FUNCTIONS)
        try:
            with unit_of_work(sessions_for(other)) as session:
                records.create(
                    session, caller=caller(crowd), resource_type="person",
                    body={"first_name": "Other", "last_name": "Process"},
                )  # fmt: skip
        finally:
            other.dispose()
        assert by_index(database, crowd.bucket, node)[0] == 1

    def test_own_transaction_sees_its_own_write(self, crowd: Tenant, database: Database) -> None:
        node = node_for(database, crowd.bucket, [rule("first_name", "exact", "Mine")])
        assert by_index(database, crowd.bucket, node)[0] == 0
        with unit_of_work(database.sessions) as session:
            records.create(
                session, caller=caller(crowd), resource_type="person", body={"first_name": "Mine"}
            )
            session.flush()
            mine = count_selected(session, bucket=crowd.bucket, resource_type="person", node=node)
            assert mine == 1
            session.rollback()
        assert by_index(database, crowd.bucket, node)[0] == 0

    def test_counts_while_others_write(self, crowd: Tenant, database: Database) -> None:
        node = node_for(database, crowd.bucket, [rule("tags", "equals", "donor")])
        failures: list[BaseException] = []
        done = threading.Event()

        def count_until_done() -> None:
            try:
                while not done.is_set():
                    by_index(database, crowd.bucket, node)
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=count_until_done) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            for i in range(12):
                crowd.admin.post("/person/", json=person(500 + i, tags=["donor"]))
        finally:
            done.set()
            for thread in threads:
                thread.join(30)
        assert failures == []
        assert by_index(database, crowd.bucket, node) == by_sql(database, crowd.bucket, node)
        assert by_index(database, crowd.bucket, node)[0] == 14 + 12

    def test_clock_stamps_each_transaction_once(self, crowd: Tenant, database: Database) -> None:
        with database.engine.connect() as connection:
            start_at = clock.current(connection, crowd.bucket)
            since = clock.changed_since(connection.dialect.name, start_at)
        body = "\n".join(json.dumps(person(200 + i)) for i in range(3))
        crowd.admin.post("/person/import", content=body, headers=NDJSON)
        with unit_of_work(database.sessions) as session:
            stamped = session.scalars(
                select(Record.version).where(Record.bucket == crowd.bucket, since)
            ).all()
        assert len(stamped) == 3 and len(set(stamped)) == 1
        if database.name == "sqlite":  # the counter: one bump for the import's transaction
            assert stamped == [start_at.upto + 1] * 3


def rule(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


class TestPagesAgreeWithSql:
    SORTS = (None, "-last_name", "first_name", "-joined", "tags", "created", "display_value")

    def test_every_page_of_every_sort(
        self, crowd: Tenant, database: Database, small_pages: None
    ) -> None:
        node = node_for(database, crowd.bucket, [rule("email", "starts_with", "p")])
        for sort in self.SORTS:
            for number in range(1, 6):
                paging = Paging(number, 7)
                assert by_index(database, crowd.bucket, node, sort=sort, paging=paging) == by_sql(
                    database, crowd.bucket, node, sort=sort, paging=paging
                ), (sort, number)

    def test_pages_after_writes_that_move_records(
        self, crowd: Tenant, database: Database, small_pages: None
    ) -> None:
        api = crowd.admin
        node = node_for(database, crowd.bucket, [rule("email", "starts_with", "p")])
        assert by_index(database, crowd.bucket, node) == by_sql(database, crowd.bucket, node)
        moved = api.get("/person/", params={"page_size": 5}).json()["results"]
        for n, row in enumerate(moved):
            api.patch(f"/person/{row['uid']}/", json={"last_name": f"Aaa{n}"})
        api.post("/person/", json=person(300, last_name="Aardvark"))
        api.delete(f"/person/{moved[0]['uid']}/")
        for writes in range(3):  # under, at and over MAX_DIRTY rows written since
            for number in (1, 2, 3):
                paging = Paging(number, 4)
                assert by_index(database, crowd.bucket, node, paging=paging) == by_sql(
                    database, crowd.bucket, node, paging=paging
                ), (writes, number)
            api.post("/person/", json=person(310 + writes, last_name="Aab"))
            api.post("/person/", json=person(320 + writes, last_name="Zz"))

    def test_search_within_a_segment(
        self, crowd: Tenant, database: Database, small_pages: None
    ) -> None:
        api = crowd.admin
        node = node_for(database, crowd.bucket, [rule("tags", "equals", "volunteer")])
        for q in ("brown", "p1 brown", "ADAMS", "zz", " "):
            assert by_index(database, crowd.bucket, node, q=q) == by_sql(
                database, crowd.bucket, node, q=q
            ), q
        # The word index is kept in step with writes.
        before = by_sql(database, crowd.bucket, node, q="brown")[0]
        made = api.post("/person/", json=person(401, last_name="Brownlow")).json()
        assert by_index(database, crowd.bucket, node, q="brown")[0] == before + 1
        api.patch(f"/person/{made['uid']}/", json={"last_name": "Green"})
        assert by_index(database, crowd.bucket, node, q="brown") == by_sql(
            database, crowd.bucket, node, q="brown"
        )


class TestLimits:
    def test_off_and_evicted_stores_answer_the_same(
        self, crowd: Tenant, other_tenant: Tenant, database: Database
    ) -> None:
        other_tenant.admin.post("/person/", json=person(1))
        node = node_for(database, crowd.bucket, [rule("tags", "or_list", ["donor", "x"])])
        expected = by_sql(database, crowd.bucket, node)
        assert by_index(database, crowd.bucket, node) == expected
        small = ColumnIndex(Options(enabled=True, max_records=5))
        assert by_index(database, crowd.bucket, node, columns=small) == expected
        assert small.holds(database.engine, crowd.bucket, "person")
        other = node_for(database, other_tenant.bucket, [])
        by_index(database, other_tenant.bucket, other, columns=small)
        assert not small.holds(database.engine, crowd.bucket, "person")
        assert by_index(database, crowd.bucket, node, columns=small) == expected
        off = ColumnIndex(Options(enabled=False))
        assert by_index(database, crowd.bucket, node, columns=off) == expected
        assert not off.holds(database.engine, crowd.bucket, "person")
        small.forget(database.engine)
        assert not small.holds(database.engine, crowd.bucket, "person")

    def test_contact_segments_come_from_one_store_of_both_types(
        self, crowd: Tenant, database: Database, small_pages: None
    ) -> None:
        api = crowd.admin
        orgs = [
            api.post("/organisation/", json={"name": f"Org {i}", "tags": ["donor"]}).json()
            for i in range(6)
        ]
        seg = make_segment(
            api, name="Contacts", resource_type="contact", rules=[rule("tags", "equals", "donor")]
        )
        assert api.get(seg_url(api, seg["uid"], "/count")).json()["count"] == 20
        columns: ColumnIndex = api.client.app.state.columns  # type: ignore[attr-defined]
        assert columns.holds(database.engine, crowd.bucket, "organisation+person")
        bucket = crowd.bucket
        rules = [
            [rule("tags", "equals", "donor")],
            [rule("display_value", "starts_with", "Org")],
            [],
        ]

        def agree() -> None:
            for rule_list in rules:
                node = node_for(database, bucket, rule_list, kind="contact")
                for sort in (None, "-display_value", "email"):
                    for number in (1, 2, 3):
                        paging = Paging(number, 7)
                        got = by_index(
                            database, bucket, node, sort=sort, paging=paging, kind="contact"
                        )
                        want = by_sql(
                            database, bucket, node, sort=sort, paging=paging, kind="contact"
                        )
                        assert got == want, (rule_list, sort, number)
                assert by_index(database, bucket, node, q="org 1", kind="contact") == by_sql(
                    database, bucket, node, q="org 1", kind="contact"
                )

        agree()
        # Writes of either type move rows in and out, and through the display-value order.
        api.patch(f"/organisation/{orgs[0]['uid']}/", json={"name": "Aardvark Org"})
        api.patch(f"/organisation/{orgs[1]['uid']}/", json={"tags": []})
        api.post("/person/", json=person(77, tags=["donor"], first_name="Zed"))
        api.delete(f"/organisation/{orgs[2]['uid']}/")
        assert api.get(seg_url(api, seg["uid"], "/count")).json()["count"] == 19
        agree()


class TestOwnership:
    def test_two_indexes_in_one_process_share_nothing(
        self, crowd: Tenant, database: Database
    ) -> None:
        node = node_for(database, crowd.bucket, [rule("tags", "equals", "donor")])
        first, second = ColumnIndex(), ColumnIndex()
        assert by_index(database, crowd.bucket, node, columns=first)[0] == 14
        assert first.holds(database.engine, crowd.bucket, "person")
        assert not second.holds(database.engine, crowd.bucket, "person")

    def test_sessions_that_do_not_stamp_the_clock_cannot_use_it(self, database: Database) -> None:
        with pytest.raises(ValueError, match="change clock"):
            ColumnIndex().attach(make_sessionmaker(database.engine))
