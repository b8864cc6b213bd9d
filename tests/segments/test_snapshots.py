"""Membership snapshots: who entered and who left, as_of reads, schedules on the queue
engine and retention (SPEC 12). Expected members come from the Python twin of the rules
over the records as they were at each moment."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from fold.columns.index import ColumnIndex
from fold.db.engine import make_engine, unit_of_work
from fold.db.models import Record, SegmentSnapshot
from fold.ids import make_uri
from fold.jobs.queue import Queue
from fold.records.service import record_out
from fold.rules.python import matches
from fold.rules.sqlite import FUNCTIONS as SQLITE_FUNCTIONS
from fold.segments import numbers, repository, snapshots
from fold.segments.members import lists_lookup, segment_filter, stored_types
from fold.segments.tasks import run_snapshots
from fold.timefmt import format_datetime, parse_datetime
from tests.conftest import Api, Database, Tenant, assert_error, sessions_for, settings_for
from tests.jobs.test_resume import REDIS_URL, redis_up
from tests.segments.conftest import make_segment, people, seg_url

__all__ = ["people"]

ACTIVE = {"field": "membership_status", "operator": "equals", "value": "active"}


def twin(tenant: Tenant, uid: str) -> set[str]:
    """The segment's members now, by the Python twin over every record of its type."""
    with unit_of_work(tenant.db.sessions) as session:
        row = repository.get(session, bucket=tenant.bucket, uid=uid)
        assert row is not None
        node = segment_filter(session, row)
        lists = lists_lookup(session, tenant.bucket)
        records = session.scalars(
            select(Record).where(
                Record.bucket == tenant.bucket,
                Record.resource_type.in_(stored_types(row.resource_type)),
            )
        ).all()
        return {
            make_uri(r.bucket, r.resource_type, r.uid)
            for r in records
            if r.record_state == "active" and matches(node, record_out(r), lists)
        }


def snapshot(api: Api, uid: str) -> dict[str, Any]:
    response = api.post(seg_url(api, uid, "/snapshots"))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def changes(api: Api, uid: str, **params: Any) -> tuple[set[str], set[str], dict[str, Any]]:
    """Every entered and left URI, read a page of 2 at a time."""
    entered: set[str] = set()
    left: set[str] = set()
    page, body = 1, {}
    while True:
        response = api.get(
            seg_url(api, uid, "/changes"), params={**params, "page": page, "page_size": 2}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        for result in body["results"]:
            target = entered if result["change"] == "entered" else left
            assert result["uri"] not in target
            target.add(result["uri"])
        if page >= body["pages"]:
            break
        page += 1
    assert (len(entered), len(left)) == (body["entered"], body["left"])
    return entered, left, body


def person(api: Api, **fields: Any) -> str:
    response = api.post("/person/", json=fields)
    assert response.status_code == 201, response.text
    uri: str = response.json()["uri"]
    return uri


def path(uri: str) -> str:
    _, _, resource_type, uid = uri.rstrip("/").split("/")
    return f"/{resource_type}/{uid}/"


class TestChanges:
    def test_entered_and_left_match_the_twin(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        ada, bob, cat, dan = (people[n]["uri"] for n in ("Ada", "Bob", "Cat", "Dan"))
        uid = make_segment(
            api, segment_type="hybrid", rules=[ACTIVE], uris_include=[dan], uris_exclude=[cat]
        )["uid"]
        first = twin(tenant, uid)
        assert first == {ada, dan}
        s1 = snapshot(api, uid)
        assert s1["count"] == 2 and s1["trigger"] == "manual"

        # Bob enters, Ada is deleted, Dan (listed) is deleted, Eve is new, Fay comes and goes.
        assert api.patch(path(bob), json={"membership_status": "active"}).status_code == 200
        assert api.delete(path(ada)).status_code == 200
        assert api.delete(path(dan)).status_code == 200
        eve = person(api, first_name="Eve", membership_status="active")
        fay = person(api, first_name="Fay", membership_status="active")
        assert api.delete(path(fay)).status_code == 200
        second = twin(tenant, uid)
        assert second == {bob, eve}
        s2 = snapshot(api, uid)

        entered, left, body = changes(api, uid, since=s1["uid"], until=s2["uid"])
        assert (entered, left) == (second - first, first - second)
        assert body["since"] == {"snapshot": s1["uid"], "taken": s1["taken"]}
        assert body["until"]["snapshot"] == s2["uid"]

        # Restores bring Ada and Dan back; Bob lapses; Gus is new (never in a snapshot).
        assert api.post(f"{path(ada)}restore").status_code == 200
        assert api.post(f"{path(dan)}restore").status_code == 200
        assert api.patch(path(bob), json={"membership_status": "lapsed"}).status_code == 200
        gus = person(api, first_name="Gus", membership_status="active")
        third = twin(tenant, uid)
        assert third == {ada, dan, eve, gus}

        entered, left, body = changes(api, uid, since=s2["uid"])
        assert (entered, left) == (third - second, second - third)
        assert gus in entered and body["until"]["now"] is True
        entered, left, _ = changes(api, uid, since=s1["taken"])
        assert (entered, left) == (third - first, first - third)
        s3 = snapshot(api, uid)
        assert changes(api, uid, since=s1["uid"], until=s3["taken"])[:2] == (
            third - first,
            first - third,
        )
        # A time between two snapshots reads the earlier one.
        between = format_datetime(parse_datetime(s2["taken"]) - timedelta(microseconds=1))
        assert (
            changes(api, uid, since=between, until=s2["uid"])[2]["since"]["snapshot"] == (s1["uid"])
        )
        only_left = api.get(
            seg_url(api, uid, "/changes"), params={"since": s1["uid"], "change": "left"}
        ).json()
        assert {r["uri"] for r in only_left["results"]} == first - third
        assert all(r["change"] == "left" for r in only_left["results"])
        listed = api.get(seg_url(api, uid, "/snapshots")).json()
        assert [s["uid"] for s in listed["snapshots"]] == [s3["uid"], s2["uid"], s1["uid"]]
        assert [s["count"] for s in listed["snapshots"]] == [4, 2, 2]

    def test_as_of_equals_the_replay(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.editor
        uid = make_segment(api, rules=[ACTIVE])["uid"]
        before = api.get(seg_url(api, uid, "/count"), params={"as_of": "2000-01-01"})
        body = assert_error(before, 400, "validation_error", "as_of")
        assert "first snapshot" in body["description"]
        replay = twin(tenant, uid)
        s1 = snapshot(api, uid)
        for name in ("Hal", "Ivy", "Jo"):
            person(tenant.admin, first_name=name, membership_status="active")
        assert tenant.admin.delete(path(people["Ada"]["uri"])).status_code == 200
        s2 = snapshot(api, uid)
        later = twin(tenant, uid)
        assert len(later) == 4

        between = format_datetime(parse_datetime(s2["taken"]) - timedelta(microseconds=1))
        for when, snap, expected in ((between, s1, replay), (s2["taken"], s2, later)):
            counted = api.get(seg_url(api, uid, "/count"), params={"as_of": when}).json()
            assert counted["count"] == len(expected)
            assert counted["as_of"] == {"snapshot": snap["uid"], "taken": snap["taken"]}
            page = api.get(seg_url(api, uid, "/all"), params={"as_of": when, "page_size": 1000})
            assert page.status_code == 200, page.text
            # When the answer was computed, as every count and page says (SPEC 12).
            for answer in (counted, page.json()):
                assert parse_datetime(answer["computed_at"]) >= parse_datetime(snap["taken"])
            assert {r["uri"] for r in page.json()["results"]} == expected
            assert page.json()["total"] == len(expected)
            assert page.json()["as_of"]["snapshot"] == snap["uid"]
        # Ada is deleted now, yet the first snapshot lists her, with her display value.
        old = api.get(seg_url(api, uid, "/all"), params={"as_of": s1["uid"]}).json()
        assert "Ada Lovelace" in {r["display_value"] for r in old["results"]}
        paged = api.get(
            seg_url(api, uid, "/all"), params={"as_of": s2["uid"], "page": 2, "page_size": 3}
        ).json()
        assert len(paged["results"]) == 1 and paged["pages"] == 2
        verbose = api.get(
            seg_url(api, uid, "/all"), params={"as_of": s1["uid"], "verbose": "true"}
        ).json()
        assert all("record_state" in r for r in verbose["results"])

    def test_a_contact_segment_spans_people_and_organisations(self, tenant: Tenant) -> None:
        api = tenant.admin
        org = api.post("/organisation/", json={"name": "Acme", "tags": ["vip"]}).json()["uri"]
        one = person(api, first_name="Kim", tags=["vip"])
        uid = make_segment(
            api, resource_type="contact", rules=[{"field": "tags", "operator": "equals",
                                                  "value": "vip"}]
        )["uid"]  # fmt: skip
        s1 = snapshot(api, uid)
        assert s1["count"] == 2
        assert api.patch(path(org), json={"tags": []}).status_code == 200
        other = api.post("/organisation/", json={"name": "Bolt", "tags": ["vip"]}).json()["uri"]
        entered, left, _ = changes(api, uid, since=s1["uid"])
        assert (entered, left) == ({other}, {org})
        assert twin(tenant, uid) == {one, other}

    def test_bad_inputs(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        uid = make_segment(api, rules=[ACTIVE])["uid"]
        other = make_segment(api, name="other")["uid"]
        url = seg_url(api, uid, "/changes")
        assert_error(api.get(url), 400, "validation_error", "since")
        assert_error(api.get(url, params={"since": "yesterday"}), 400, "validation_error", "since")
        assert_error(api.get(url, params={"since": "2020-01-01"}), 400, "validation_error", "since")
        s1 = snapshot(api, uid)
        foreign = snapshot(api, other)
        assert_error(api.get(url, params={"since": foreign["uid"]}), 404, "not_found")
        s2 = snapshot(api, uid)
        response = api.get(url, params={"since": s2["uid"], "until": s1["uid"]})
        assert_error(response, 400, "validation_error", "until")
        response = api.get(url, params={"since": s1["uid"], "change": "moved"})
        assert_error(response, 400, "validation_error", "change")
        response = api.get(seg_url(api, uid, "/all"), params={"as_of": s1["uid"], "q": "ada"})
        assert_error(response, 400, "validation_error", "q")
        response = api.get(seg_url(api, uid, "/count"), params={"as_of": "soon"})
        assert_error(response, 400, "validation_error", "as_of")
        viewer = tenant.viewer
        assert_error(viewer.post(seg_url(viewer, uid, "/snapshots")), 403, "permission_denied")
        assert viewer.get(seg_url(viewer, uid, "/snapshots")).status_code == 200
        assert_error(api.post(seg_url(api, "f" * 24, "/snapshots")), 404, "not_found")

    def test_another_bucket_sees_nothing(self, api: Api, other_tenant: Tenant) -> None:
        uid = make_segment(api)["uid"]
        s1 = snapshot(api, uid)
        other = other_tenant.admin
        assert_error(other.get(seg_url(other, uid, "/snapshots")), 404, "not_found")
        response = other.get(seg_url(other, uid, "/changes"), params={"since": s1["uid"]})
        assert_error(response, 404, "not_found")


class TestSchedule:
    def test_schedule_is_read_and_checked(self, tenant: Tenant) -> None:
        api = tenant.editor
        uid = make_segment(api)["uid"]
        url = seg_url(api, uid, "/snapshots/schedule")
        assert api.get(url).json()["schedule"] is None
        body = assert_error(
            api.put(url, json={"schedule": "every tuesday", "keep_last": 0}),
            400,
            "validation_error",
            "schedule",
        )
        assert [e["param"] for e in body["errors"]] == ["schedule", "keep_last"]
        assert_error(api.put(url, json={"schedule": "61 * * * *"}), 400, "validation_error")
        assert_error(tenant.viewer.put(url, json={"schedule": "daily"}), 403, "permission_denied")
        set_ = api.put(url, json={"schedule": "weekly", "keep_days": 30})
        assert set_.status_code == 200, set_.text
        assert set_.json()["schedule"] == "weekly" and set_.json()["keep_days"] == 30
        assert set_.json()["next_run"] is not None  # the first is taken at the next check
        off = api.put(url, json={"schedule": "none"}).json()
        assert off["schedule"] is None and off["next_run"] is None

    @pytest.mark.parametrize("queue_kind", ["sqlite", "redis"])
    def test_a_scheduled_snapshot_runs_on_the_queue_engine(
        self, tenant: Tenant, database: Database, tmp_path: Path, queue_kind: str
    ) -> None:
        if queue_kind == "redis" and not redis_up():
            pytest.skip("no Redis")
        api = tenant.admin
        uid = make_segment(api, name="Scheduled")["uid"]
        url = seg_url(api, uid, "/snapshots/schedule")
        assert api.put(url, json={"schedule": "* * * * *"}).status_code == 200
        settings = settings_for(
            database,
            queue="auto",
            data_dir=str(tmp_path),
            redis_url=REDIS_URL if queue_kind == "redis" else None,
        )
        queue = Queue(settings, database.engine)
        if queue_kind == "redis":
            queue.huey.flush()
        consumer = queue.consumer(workers=1, embedded=True)
        consumer.start()
        try:
            deadline = time.monotonic() + 90
            listed: dict[str, Any] = {}
            while time.monotonic() < deadline:
                listed = api.get(seg_url(api, uid, "/snapshots")).json()
                if listed["total"]:
                    break
                time.sleep(0.2)
        finally:
            consumer.stop(graceful=True)
        assert listed["total"] == 1, listed
        assert listed["snapshots"][0]["trigger"] == "schedule"
        assert listed["snapshots"][0]["user"] == "/system/user/scheduler/"
        schedule = api.get(url).json()
        assert parse_datetime(schedule["next_run"]) > parse_datetime(
            listed["snapshots"][0]["taken"]
        )
        assert parse_datetime(schedule["next_run"]).second == 0

    def test_a_due_schedule_is_taken_once_and_a_deleted_segment_skipped(
        self, tenant: Tenant, database: Database
    ) -> None:
        api = tenant.admin
        live = make_segment(api, name="live")["uid"]
        gone = make_segment(api, name="gone")["uid"]
        for uid in (live, gone):
            url = seg_url(api, uid, "/snapshots/schedule")
            assert api.put(url, json={"schedule": "daily"}).status_code == 200
        assert api.delete(seg_url(api, gone)).status_code == 200
        run_snapshots(database.sessions)
        run_snapshots(database.sessions)  # nothing is due any more
        listed = api.get(seg_url(api, live, "/snapshots")).json()
        assert listed["total"] == 1
        assert listed["snapshots"][0]["trigger"] == "schedule"
        next_run = api.get(seg_url(api, live, "/snapshots/schedule")).json()["next_run"]
        assert next_run.endswith("T00:00:00.000000")
        assert api.post(seg_url(api, gone, "/restore")).status_code == 200
        assert api.get(seg_url(api, gone, "/snapshots")).json()["total"] == 0

    def test_retention_prunes_on_the_periodic_run(self, tenant: Tenant, database: Database) -> None:
        api = tenant.admin
        uid = make_segment(api)["uid"]
        taken = [snapshot(api, uid)["uid"] for _ in range(4)]
        with unit_of_work(database.sessions) as session:
            session.execute(
                update(SegmentSnapshot)
                .where(SegmentSnapshot.bucket == tenant.bucket, SegmentSnapshot.uid == taken[3])
                .values(taken=SegmentSnapshot.taken - timedelta(days=10))
            )
        url = seg_url(api, uid, "/snapshots/schedule")
        assert api.put(url, json={"keep_last": 2, "keep_days": 7}).status_code == 200
        run_snapshots(database.sessions)
        left = [s["uid"] for s in api.get(seg_url(api, uid, "/snapshots")).json()["snapshots"]]
        # The ten-day-old one goes by age; of the rest, the newest two stay.
        assert left == [taken[2], taken[1]]


class TestNumbers:
    def test_numbers_given_by_another_process_are_read(
        self, tenant: Tenant, database: Database, people: dict[str, Any]
    ) -> None:
        """A second engine stands for another process: each numbers new members in turn,
        and each reads what the other gave before numbering more."""
        api = tenant.admin
        uid = make_segment(api)["uid"]
        s1 = snapshot(api, uid)
        other_engine = make_engine(database.url, sqlite_functions=SQLITE_FUNCTIONS)
        other_sessions = sessions_for(other_engine, ColumnIndex())  # its own column index
        try:
            newcomer = person(api, first_name="Lee")
            with unit_of_work(other_sessions) as session:
                row = repository.get(session, bucket=tenant.bucket, uid=uid)
                assert row is not None
                s2 = snapshots.take(session, row=row, trigger="manual", user_uri="/x/")
                s2_uid = s2.uid
            later = person(api, first_name="May")
            s3 = snapshot(api, uid)  # this process must read Lee's number before giving May's
            assert s3["count"] == 6
            entered, left, _ = changes(api, uid, since=s1["uid"], until=s3["uid"])
            assert (entered, left) == ({newcomer, later}, set())
            entered, _, _ = changes(api, uid, since=s2_uid, until=s3["uid"])
            assert entered == {later}
            with unit_of_work(other_sessions) as session:
                known = numbers.numbering(session, tenant.bucket)
                assert known.known == 6
                assert len(set(known.uid_by_n)) == 6
        finally:
            other_engine.dispose()
