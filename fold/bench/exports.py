"""Export throughput: rows per second and memory of each format on a bucket of N people.

Each format runs in a fresh process, so its peak memory is its own: the figure reported
is how far the process grew while exporting (peak resident set minus the resident set
just before), beside the peak itself."""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fold.auth.policies import Caller
from fold.columns.index import ColumnIndex, Options
from fold.config import Settings
from fold.db.engine import make_engine, make_sessionmaker, unit_of_work
from fold.demo.generate import DemoPlan
from fold.demo.load import load_demo, record_count
from fold.exports.run import FORMATS
from fold.records import clock

BENCH_USER = "/system/user/bench/"
SEGMENT = "All people"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(url: str, bucket: str, fmt: str, folder: str, answer: Any) -> None:
    """In a child process: one export to a file, timed, with its memory."""
    from fold.exports.service import export_to_file

    factory = ColumnIndex(Options.from_settings(Settings.from_env())).attach(
        clock.install(make_sessionmaker(make_engine(url)))
    )
    caller = Caller(bucket, "admin", BENCH_USER)
    path = Path(folder) / f"bench.{fmt}"
    before = rss_mb()
    started = time.perf_counter()
    with path.open("wb") as out:
        counts = export_to_file(
            factory, caller=caller, segment_ref=SEGMENT, fmt=fmt, template=None, params={},
            out=out,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    answer.send(
        {
            "format": fmt,
            "records": counts.read,
            "rows": counts.rows,
            "seconds": round(seconds, 2),
            "records_per_second": round(counts.read / seconds),
            "rows_per_second": round(counts.rows / seconds),
            "rss_before_mb": round(before),
            "peak_rss_mb": round(peak),
            "growth_mb": round(peak - before),
            "file_mb": round(path.stat().st_size / 1_048_576, 1),
        }
    )
    path.unlink()


def ensure_demo(
    factory: sessionmaker[Session], bucket: str, people: int, say: Callable[[str], None]
) -> None:
    with unit_of_work(factory) as session:
        existing = record_count(session, bucket)
    if existing:
        return
    say(f"making {people:,} demo people in {bucket}")
    load_demo(factory, bucket=bucket, plan=DemoPlan(people=people, today=date(2026, 11, 1)))


def run(
    factory: sessionmaker[Session],
    url: str,
    *,
    people: int,
    bucket: str | None,
    formats: tuple[str, ...],
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    bucket = bucket or f"bench-exports-{people}"
    ensure_demo(factory, bucket, people, say)
    spawn = multiprocessing.get_context("spawn")
    results = []
    with tempfile.TemporaryDirectory(prefix="fold-bench-") as folder:
        for fmt in formats:
            assert fmt in FORMATS
            mine, theirs = spawn.Pipe(duplex=False)
            child = spawn.Process(target=measure, args=(url, bucket, fmt, folder, theirs))
            child.start()
            result: dict[str, Any] = mine.recv()
            child.join()
            results.append(result)
            say(
                f"{fmt:>7}: {result['records']:,} records → {result['rows']:,} rows in "
                f"{result['seconds']:.1f} s = {result['records_per_second']:,} records/s "
                f"({result['rows_per_second']:,} rows/s); "
                f"memory +{result['growth_mb']} MB (peak {result['peak_rss_mb']} MB); "
                f"file {result['file_mb']} MB"
            )
    say(f"database: {factory.kw['bind'].dialect.name}, pid {os.getpid()}")
    return results
