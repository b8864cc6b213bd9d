"""Writing generated demo rows into a bucket, in committed batches."""

from __future__ import annotations

import gc
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fold.buckets.service import ensure_bucket
from fold.db.bulk import analyze, insert_rows
from fold.db.engine import unit_of_work
from fold.db.models import Postcode, Record
from fold.demo.generate import DemoPlan, Generator, Row
from fold.errors import Conflict
from fold.fields.builtin import BUILTIN
from fold.records.bulk import insert_clean

BATCH = 5000
DEMO_USER = "/system/user/demo/"


def record_count(session: Session, bucket: str) -> int:
    return session.scalar(select(func.count()).where(Record.bucket == bucket)) or 0


def load_demo(
    factory: sessionmaker[Session],
    *,
    bucket: str,
    plan: DemoPlan,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Fill an empty bucket; answers how many records of each type were made."""
    with unit_of_work(factory) as session:
        ensure_bucket(session, bucket)
        existing = record_count(session, bucket)
    if existing:
        raise Conflict(
            f"Bucket '{bucket}' already holds {existing} records; demo data goes into an "
            "empty bucket (choose another with --bucket)."
        )
    counts: dict[str, int] = {}
    people = 0
    batch: list[Row] = []

    def flush() -> None:
        with unit_of_work(factory) as session:
            insert_clean(
                session,
                bucket=bucket,
                user_uri=DEMO_USER,
                message="Demo data",
                rows=batch,
                schemas=BUILTIN,
            )
        batch.clear()

    # Creating millions of small objects: the cyclic collector would only slow it down.
    gc.disable()
    try:
        generator = Generator(bucket, plan)
        for row in generator.rows():
            batch.append(row)
            counts[row[0]] = counts.get(row[0], 0) + 1
            if row[0] == "person":
                people += 1
            if len(batch) >= BATCH:
                flush()
                if progress is not None:
                    progress(people, plan.people)
        if batch:
            flush()
        if progress is not None:
            progress(people, plan.people)
        with unit_of_work(factory) as session:
            rows = [
                {"bucket": bucket, "postcode": code.replace(" ", ""), "lat": lat, "lng": lng}
                for code, (lat, lng) in generator.postcodes.items()
            ]
            insert_rows(session, Postcode.__table__, rows)  # type: ignore[arg-type]
            analyze(session, "records", "audit_entries", "postcodes")
    finally:
        gc.enable()
    counts["postcode"] = len(generator.postcodes)
    return counts
