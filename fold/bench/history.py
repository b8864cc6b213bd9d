"""Times membership snapshots of a big segment and `changes` between two of them, on the
database FOLD_DATABASE_URL names:

    python -m fold.bench.history --bucket demo --segment "All people" --change 10000

It takes a first snapshot (on a bucket never snapshotted, it numbers every member; else
this process reads the numbers), deletes `--change` members, takes a second and a third
(the steady case: numbers known), times `changes` between the first two and since the
first until now, then restores the deleted members and drops its snapshots. The numbers
it gave stay (they are meant to)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from fold.columns.index import ColumnIndex, Options
from fold.config import Settings
from fold.db.engine import make_engine, make_sessionmaker, unit_of_work
from fold.db.models import Record, Segment, SegmentSnapshot
from fold.records import clock
from fold.records.clock import stamp
from fold.segments import snapshots
from fold.segments.members import count_selected, segment_filter, stored_types


def _segment(session: Session, bucket: str, name: str) -> Segment:
    row = session.scalars(
        select(Segment).where(Segment.bucket == bucket, Segment.name == name)
    ).first()
    if row is None:
        raise SystemExit(f"no segment named {name!r} in {bucket}")
    return row


def _set_state(
    session: Session, bucket: str, resource_type: str, uids: list[str], state: str
) -> None:
    version = stamp(session, bucket)
    for start in range(0, len(uids), 5000):
        session.execute(
            update(Record)
            .where(
                Record.bucket == bucket,
                Record.resource_type == resource_type,
                Record.uid.in_(uids[start : start + 5000]),
            )
            .values(record_state=state, version=version)
        )


def run(bucket: str, name: str, change: int) -> dict[str, Any]:
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    sessions = ColumnIndex(Options.from_settings(settings)).attach(
        clock.install(make_sessionmaker(engine))
    )
    out: dict[str, Any] = {"database": engine.dialect.name}
    with unit_of_work(sessions) as session:
        row = _segment(session, bucket, name)
        started = time.perf_counter()
        out["count"] = count_selected(
            session,
            bucket=bucket,
            resource_type=row.resource_type,
            node=segment_filter(session, row),
        )
        out["first_count_s"] = round(time.perf_counter() - started, 3)
    taken: list[str] = []
    victims: list[str] = []
    resource_type = stored_types(row.resource_type)[0]
    for label in ("first_snapshot", "second_snapshot", "third_snapshot"):
        if label == "second_snapshot":
            with unit_of_work(sessions) as session:
                victims = list(
                    session.scalars(
                        select(Record.uid)
                        .where(
                            Record.bucket == bucket,
                            Record.resource_type == resource_type,
                            Record.record_state == "active",
                        )
                        .limit(change)
                    )
                )
                _set_state(session, bucket, resource_type, victims, "deleted")
        started = time.perf_counter()
        with unit_of_work(sessions) as session:
            row = _segment(session, bucket, name)
            snap = snapshots.take(
                session, row=row, trigger="manual", user_uri="/system/user/bench/"
            )
            taken.append(snap.uid)
            out[label] = {"count": snap.count, "bytes": len(snap.members)}
        out[label]["seconds"] = round(time.perf_counter() - started, 3)
    for label, params in (
        ("changes_between", {"since": taken[0], "until": taken[1], "page_size": 25}),
        ("changes_until_now", {"since": taken[0], "page_size": 25}),
    ):
        with unit_of_work(sessions) as session:
            row = _segment(session, bucket, name)
            started = time.perf_counter()
            answer = snapshots.changes(session, row, params)
            out[label] = {
                "seconds": round(time.perf_counter() - started, 3),
                "entered": answer["entered"],
                "left": answer["left"],
            }
    with unit_of_work(sessions) as session:
        _set_state(session, bucket, resource_type, victims, "active")
        session.execute(
            delete(SegmentSnapshot).where(
                SegmentSnapshot.bucket == bucket, SegmentSnapshot.uid.in_(taken)
            )
        )
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", default="demo")
    parser.add_argument("--segment", default="All people")
    parser.add_argument("--change", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(run(args.bucket, args.segment, args.change), indent=2))


if __name__ == "__main__":
    main()
