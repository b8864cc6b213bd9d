"""`fold bench`: the segment suite on a bucket of N people, timed through the service
layer and over HTTP, beside two references on the same data: the plain JSON-path scan
on the same database, and DuckDB over the same records in typed columns."""

from __future__ import annotations

import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from fold.auth.policies import Caller
from fold.auth.service import create_key
from fold.bench.suite import CASES, HELPERS, Case
from fold.bench.tools import dev_tool
from fold.columns.index import CATALOGUE_AT_LEAST
from fold.columns.persist import Snapshots
from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import Record, Segment
from fold.db.queries import count as count_rows
from fold.demo.generate import DemoPlan
from fold.demo.load import load_demo, record_count
from fold.ids import make_uri
from fold.records import service as records
from fold.records.bulk import import_rows, ndjson_rows
from fold.records.clock import stamp as stamp_clock
from fold.rules.sql import to_sql
from fold.segments import reads
from fold.segments import service as segments
from fold.segments.members import base_query, segment_filter

Say = Callable[[str], None]
# Sections every `fold bench` runs; "jobs" (and tenants, by count) only when asked for.
LIGHT_SECTIONS = frozenset({"pages", "warm", "processes", "writers"})
ALL_SECTIONS = LIGHT_SECTIONS | {"jobs"}
USER = "/system/user/bench/"


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm the caches once
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p50(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)], 2)


def ensure_bucket(
    factory: sessionmaker[Session], bucket: str, people: int, seed: int, say: Say
) -> None:
    with unit_of_work(factory) as session:
        have = record_count(session, bucket)
    if have:
        say(f"reusing bucket {bucket} ({have:,} records)")
        return
    say(f"making bucket {bucket} with {people:,} people (fold demo)")
    load_demo(factory, bucket=bucket, plan=DemoPlan(people=people, seed=seed, today=date.today()))


def make_segments(factory: sessionmaker[Session], bucket: str, say: Say) -> dict[str, Segment]:
    """The suite's segments, made afresh in the bucket (old bench segments are deleted)."""
    caller = Caller(bucket=bucket, policy="admin", user_uri=USER)
    made: dict[str, Segment] = {}
    with unit_of_work(factory) as session:
        for old in session.scalars(
            select(Segment).where(Segment.bucket == bucket, Segment.name.like("bench: %"))
        ):
            session.delete(old)
        session.flush()
        include_uids = session.scalars(
            select(Record.uid)
            .where(Record.bucket == bucket, Record.resource_type == "person")
            .order_by(Record.uid.desc())
            .limit(1000)
        ).all()
        helpers: dict[str, str] = {}
        for name, (resource_type, rules) in HELPERS.items():
            out, _ = segments.create(
                session,
                caller=caller,
                params={"name": f"bench: {name}", "resource_type": resource_type, "rules": rules},
            )
            helpers[f"helper:{name}"] = make_uri(bucket, "segment", out["uid"])
        for case in CASES:
            params: dict[str, Any] = {
                "name": f"bench: {case.name}",
                "resource_type": "person",
                "segment_type": case.segment_type,
            }
            rules = [_with_helpers(r, helpers) for r in case.rules]
            if case.refs:
                uris = [make_uri(bucket, "segment", made[r].uid) for r in case.refs]
                rules = [{"field": "segment", "operator": "or_list", "value": uris}]
            params["rules"] = rules
            if case.includes:
                params["uris_include"] = [
                    make_uri(bucket, "person", u) for u in include_uids[: case.includes]
                ]
            if case.parent:
                params["parent_segment"] = make_uri(bucket, "segment", made[case.parent].uid)
            out, _ = segments.create(session, caller=caller, params=params)
            made[case.name] = session.get(Segment, (bucket, out["uid"]))  # type: ignore[assignment]
    return made


def _with_helpers(value: Any, helpers: dict[str, str]) -> Any:
    """A rule with each `helper:<name>` replaced by that helper segment's URI."""
    if isinstance(value, str):
        return helpers.get(value, value)
    if isinstance(value, list):
        return [_with_helpers(v, helpers) for v in value]
    if isinstance(value, dict):
        return {k: _with_helpers(v, helpers) for k, v in value.items()}
    return value


@dataclass
class Server:
    base: str
    pid: int


@contextmanager
def server_process(settings: Settings, workers: int = 1) -> Iterator[Server]:
    """`fold serve` in a process of its own, reached over real HTTP, so that its memory is
    the server's alone (this process also holds DuckDB's copy of the records); `workers`:
    its --workers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "FOLD_DATABASE_URL": settings.database_url,
        "FOLD_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    command = [sys.executable, "-m", "fold.cli.main", "serve", "--no-worker", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"fold serve exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("fold serve did not start")
            time.sleep(0.2)
        yield Server(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def peak_rss_mb(pid: int) -> int:
    """The process's peak resident memory (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return 0


def children(pid: int) -> list[int]:
    """The process's children (Linux), e.g. the workers of `fold serve --workers N`."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


DUCK_COLUMNS = {
    "uid": "VARCHAR",
    "first_name": "VARCHAR",
    "last_name": "VARCHAR",
    "locality": "VARCHAR",
    "postal_code": "VARCHAR",
    "membership_status": "VARCHAR",
    "joined": "DATE",
    "date_of_birth": "DATE",
    "tags": "VARCHAR[]",
    "source": "VARCHAR",
    "email_opt_out": "BOOLEAN",
    "lat": "DOUBLE",
    "lng": "DOUBLE",
    "search_text": "VARCHAR",
}


def typed_row(uid: str, data: dict[str, Any], search: str) -> dict[str, Any]:
    address, geo = data.get("address") or {}, data.get("geo") or {}
    return {
        "uid": uid,
        "first_name": data.get("first_name"),
        "last_name": data.get("last_name"),
        "locality": address.get("locality"),
        "postal_code": address.get("postal_code"),
        "membership_status": data.get("membership_status"),
        "joined": data.get("joined"),
        "date_of_birth": data.get("date_of_birth"),
        "tags": data.get("tags") or [],
        "source": data.get("source"),
        "email_opt_out": data.get("email_opt_out"),
        "lat": geo.get("lat"),
        "lng": geo.get("lng"),
        "search_text": search,
    }


def _duckdb() -> Any:
    return dev_tool("duckdb", "fold bench (DuckDB is the reference time)")


def duckdb_people(factory: sessionmaker[Session], bucket: str, included: list[str]) -> Any:
    """The bucket's people in DuckDB, in typed columns (a benchmark-only reference)."""
    connection = _duckdb().connect()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "people.ndjson"
        with path.open("w") as out, unit_of_work(factory) as session:
            rows = session.execute(
                select(Record.uid, Record.data, Record.search_text).where(
                    Record.bucket == bucket,
                    Record.resource_type == "person",
                    Record.record_state == "active",
                )
            )
            for uid, data, search in rows:
                out.write(json.dumps(typed_row(uid, data, search)) + "\n")
        columns = ", ".join(f"{name}: '{kind}'" for name, kind in DUCK_COLUMNS.items())
        connection.execute(
            f"CREATE TABLE people AS SELECT * FROM read_json(?, columns={{{columns}}})",
            [str(path)],
        )
    related_tables(connection, factory, bucket)
    connection.execute("CREATE TABLE included (uid VARCHAR)")
    connection.executemany("INSERT INTO included VALUES (?)", [[u] for u in included])
    return connection


RELATED_TABLES = {
    "payments": ("payment", {"contact": "VARCHAR", "amount": "DOUBLE", "date": "DATE",
                             "status": "VARCHAR", "gift_aid": "BOOLEAN"}),
    "memberships": ("membership", {"contact": "VARCHAR", "status": "VARCHAR",
                                   "end_date": "DATE", "amount": "DOUBLE"}),
}  # fmt: skip


def related_tables(connection: Any, factory: sessionmaker[Session], bucket: str) -> None:
    """The bucket's payments and memberships in DuckDB, each with its contact's uid, for
    the related cases' joins."""
    for table, (resource_type, columns) in RELATED_TABLES.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{table}.ndjson"
            with path.open("w") as out, unit_of_work(factory) as session:
                rows = session.execute(
                    select(Record.data).where(
                        Record.bucket == bucket,
                        Record.resource_type == resource_type,
                        Record.record_state == "active",
                    )
                )
                for (data,) in rows:
                    row = {name: data.get(name) for name in columns}
                    contact = row["contact"]
                    prefix = f"/{bucket}/person/"
                    ok = isinstance(contact, str) and contact.startswith(prefix)
                    row["contact"] = contact[len(prefix) :].rstrip("/") if ok else None
                    out.write(json.dumps(row) + "\n")
            spec = ", ".join(f"{name}: '{kind}'" for name, kind in columns.items())
            connection.execute(
                f"CREATE TABLE {table} AS SELECT * FROM read_json(?, columns={{{spec}}})",
                [str(path)],
            )


def measure_case(
    factory: sessionmaker[Session],
    caller: Caller,
    segment: Segment,
    case: Case,
    runs: int,
    client: httpx.Client,
    base: str,
    key: str,
    duck: Any,
) -> dict[str, Any]:
    params = {"q": case.q} if case.q else {}
    with unit_of_work(factory) as session:
        row = session.get(Segment, (segment.bucket, segment.uid))
        assert row is not None

        def count() -> int:
            if case.q:
                return int(
                    reads.segment_records(session, caller, row, {**params, "page_size": 1})["total"]
                )
            return int(reads.segment_count(session, caller, row)["count"])

        def first_page() -> Any:
            return reads.segment_records(session, caller, row, {**params, "page_size": 25})

        started = time.perf_counter()
        total = count()  # the first: builds what this segment needs (store, columns)
        first = (time.perf_counter() - started) * 1000
        counts = timed(count, runs)
        pages = timed(first_page, max(3, runs // 2))
        node = segment_filter(session, row)

        def json_scan() -> Any:
            stmt = base_query(row.bucket, row.resource_type).where(to_sql(node, bucket=row.bucket))
            return count_rows(session, stmt)

        # Without references (--no-references) the JSON scan and DuckDB read as 0.
        scans = timed(json_scan, max(3, runs // 2)) if duck is not None else [0.0]
    url = f"{base}/segments/v2/{segment.bucket}/segment/{segment.uid}"
    headers = {"Authorization": f"Bearer {key}"}
    # A search is counted through its first page of one; `count` takes no parameters.
    count_params: dict[str, Any] = {**params, "page_size": 1} if case.q else {}
    http_path = f"{url}/all" if case.q else f"{url}/count"
    http_counts = timed(
        lambda: client.get(http_path, params=count_params, headers=headers).raise_for_status(),
        max(3, runs // 2),
    )
    http_pages = timed(
        lambda: client.get(
            f"{url}/all", params={**params, "page_size": 25}, headers=headers
        ).raise_for_status(),
        max(3, runs // 2),
    )
    query = f"SELECT count(*) FROM people WHERE {case.duckdb}"
    if duck is not None:
        duck_count = duck.execute(query).fetchone()[0]
        ducks = timed(lambda: duck.execute(query).fetchone(), runs)
    else:
        duck_count, ducks = total, [0.0]
    return {
        "segment": case.name, "count": total, "duckdb_count": duck_count,
        "first_count_ms": round(first, 1),
        "count_p50_ms": p50(counts), "count_p95_ms": p95(counts), "first_page_p50_ms": p50(pages),
        "http_count_p50_ms": p50(http_counts), "http_first_page_p50_ms": p50(http_pages),
        "json_scan_p50_ms": p50(scans), "duckdb_p50_ms": p50(ducks),
        "speedup_over_json_scan": round(p50(scans) / max(p50(counts), 0.01), 1),
        "ratio_to_duckdb": 0.0 if duck is None else round(p50(counts) / max(p50(ducks), 0.01), 2),
    }  # fmt: skip


COLUMNS = (
    ("count", "n", 9),
    ("count_p50_ms", "count p50", 10),
    ("count_p95_ms", "p95", 8),
    ("first_page_p50_ms", "page p50", 9),
    ("http_count_p50_ms", "http count", 11),
    ("http_first_page_p50_ms", "http page", 10),
    ("json_scan_p50_ms", "json-scan", 10),
    ("duckdb_p50_ms", "duckdb", 8),
    ("speedup_over_json_scan", "x scan", 8),
    ("ratio_to_duckdb", "/duckdb", 9),
)


def header() -> str:
    return f"{'segment (times in ms)':>30}" + "".join(
        f"{title:>{width}}" for _, title, width in COLUMNS
    )


def line(measured: dict[str, Any]) -> str:
    cells = []
    for key, _, width in COLUMNS:
        value = measured[key]
        cells.append(f"{value:>{width},}" if isinstance(value, int) else f"{value:>{width}.1f}")
    return f"{measured['segment']:>30}" + "".join(cells)


def write_costs(
    factory: sessionmaker[Session], bucket: str, runs: int, watched: Segment
) -> dict[str, Any]:
    """Create and patch p50, the next count after each patch (the index catching up with
    the write), and the import rate into the big bucket."""
    caller = Caller(bucket=bucket, policy="admin", user_uri=USER)
    stamp = time.time_ns()
    creates, patches, next_counts, bumps = [], [], [], []
    for i in range(runs):
        started = time.perf_counter()
        with unit_of_work(factory) as session:
            made = records.create(
                session,
                caller=caller,
                resource_type="person",
                body={
                    "first_name": "Write",
                    "last_name": f"Cost{i}",
                    "email": f"write{stamp}-{i}@bench.test",
                    "tags": ["bench"],
                },
            )
        creates.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        with unit_of_work(factory) as session:
            records.patch(
                session,
                caller=caller,
                resource_type="person",
                uid=made["uid"],
                body={"tags": ["bench", "patched"]},
            )
        patches.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        with unit_of_work(factory) as session:
            row = session.get(Segment, (watched.bucket, watched.uid))
            assert row is not None
            reads.segment_count(session, caller, row)
        next_counts.append((time.perf_counter() - started) * 1000)
        # What the change clock alone adds to a write: one bump in its own transaction.
        started = time.perf_counter()
        with unit_of_work(factory) as session:
            stamp_clock(session, bucket)
        bumps.append((time.perf_counter() - started) * 1000)
    import_rate(factory, bucket, f"{stamp}-warm", rows=1_000)  # starts the import worker
    rates = [import_rate(factory, bucket, f"{stamp}-{attempt}") for attempt in range(3)]
    return {
        "create_p50_ms": p50(creates), "patch_p50_ms": p50(patches),
        "count_after_write_p50_ms": p50(next_counts),
        "clock_bump_p50_ms": p50(bumps),
        "import_rows": IMPORT_ROWS, "import_records_per_second": round(statistics.median(rates)),
        "import_records_per_second_runs": [round(r) for r in rates],
    }  # fmt: skip


IMPORT_ROWS = 20_000


def import_rate(
    factory: sessionmaker[Session], bucket: str, tag: str, rows: int = IMPORT_ROWS
) -> float:
    """Records per second for one import of `rows` new people into the bucket."""
    from fold.fields.service import schema_for

    lines = [
        json.dumps(
            {
                "email": f"import{tag}-{i}@bench.test",
                "first_name": "Imported",
                "last_name": f"N{i}",
                "tags": ["bench"],
            }
        )
        for i in range(rows)
    ]
    started = time.perf_counter()
    with unit_of_work(factory) as session:
        result = import_rows(
            session,
            bucket=bucket,
            user_uri=USER,
            schema=schema_for(session, bucket=bucket, resource_type="person"),
            rows=ndjson_rows(lines),
        )
    assert result.created == rows, result.as_dict()
    return result.rows / (time.perf_counter() - started)


def database_bytes(engine: Engine) -> int:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return int(connection.scalar(text("SELECT pg_database_size(current_database())")) or 0)
        pages = connection.scalar(text("PRAGMA page_count")) or 0
        size = connection.scalar(text("PRAGMA page_size")) or 0
        return int(pages * size)


def clock_index_bytes(engine: Engine) -> int | None:
    """What the change clock adds on disk: the (bucket, type, version) index."""
    query = (
        "SELECT pg_relation_size('ix_records_version')"
        if engine.dialect.name == "postgresql"
        else "SELECT SUM(pgsize) FROM dbstat WHERE name = 'ix_records_version'"
    )
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text(query)) or 0)
    except Exception:  # SQLite built without the dbstat table
        return None


def catalogues_made(
    settings: Settings, buckets: Collection[str], timeout: float
) -> tuple[float, int]:
    """Seconds until the running server has saved the catalogue of every store of `buckets`
    (the ones it read; of `CATALOGUE_AT_LEAST` rows or more, as the others get none) on
    disk (at most `timeout`), and how many still have none then. A store saved meanwhile
    by a process without its catalogue goes without one until it is next read
    (docs/columns.md); stores of other buckets (the tenants') are not waited for."""
    directory = settings.columns_directory()
    if directory is None:
        return 0.0, 0
    snapshots = Snapshots(directory)
    started = time.monotonic()
    while (
        missing := snapshots.uncatalogued(buckets, at_least=CATALOGUE_AT_LEAST)
    ) and time.monotonic() - started < timeout:
        time.sleep(0.5)
    return time.monotonic() - started, missing


def run(
    factory: sessionmaker[Session],
    engine: Engine,
    settings: Settings,
    *,
    people: int,
    other_people: int,
    runs: int,
    seed: int,
    say: Say,
    bucket: str | None = None,
    only: tuple[str, ...] = (),
    sections: frozenset[str] = LIGHT_SECTIONS,
    writers_seconds: float = 5.0,
    writers_workers: int = 1,
    tenants: int = 0,
    tenant_people: int = 4_000,
    tenants_seconds: float = 60.0,
    tenants_workers: int = 1,
    references: bool = True,
) -> dict[str, Any]:
    """`only`: time just the cases whose names contain one of these (no write costs; the
    target sections are those in `sections`). `references=False` skips the JSON-path scan
    and DuckDB."""
    from fold.bench import targets as t

    if references:
        _duckdb()  # before minutes of loading: say now if it is missing
    bucket = bucket or f"bench-{people}"
    other = f"bench-other-{other_people}"
    ensure_bucket(factory, bucket, people, seed, say)
    ensure_bucket(factory, other, other_people, seed + 1, say)
    made = make_segments(factory, bucket, say)
    extra = t.extra_segments(factory, bucket)
    caller = Caller(bucket=bucket, policy="admin", user_uri=USER)
    with unit_of_work(factory) as session:
        key = create_key(session, bucket=bucket, policy="admin", name="fold bench").key
        included = list(
            session.scalars(
                select(Record.uid)
                .where(Record.bucket == bucket, Record.resource_type == "person")
                .order_by(Record.uid.desc())
                .limit(1000)
            ).all()
        )
    if references:
        say("loading the DuckDB reference")
    duck = duckdb_people(factory, bucket, included) if references else None
    results = []
    say(header())
    with server_process(settings) as server, httpx.Client(timeout=600) as client:
        for case in CASES:
            if only and not any(part in case.name for part in only):
                continue
            measured = measure_case(
                factory, caller, made[case.name], case, runs, client, server.base, key, duck
            )
            results.append(measured)
            say(line(measured))
        server_rss = peak_rss_mb(server.pid)
        if "warm" in sections and results and not only:
            # A server that has been up a while: its store's catalogue made and saved
            # (fold.columns.catalogue), which a restart then opens.
            waited, missing = catalogues_made(settings, [bucket], timeout=60 + people / 1000)
            say(f"the server made its stores' catalogues within {waited:.0f} s of the suite's end"
                + (f" ({missing} store(s) still without one)" if missing else ""))  # fmt: skip

    def geo(key: str) -> float | None:
        if not results:  # `only` matched no case
            return None
        logs = [math.log(max(r[key], 0.01)) for r in results]
        return round(math.exp(statistics.mean(logs)), 2)

    goals: list[t.Target] = []
    details: dict[str, Any] = {}
    suite = {case.name: made[case.name] for case in CASES}
    if "pages" in sections:
        say("deep pages, sorts and contact segments")
        found, details["pages"] = t.pages_and_contacts(factory, bucket, people, extra, runs)
        goals += found
        for text_line in t.table(found)[1:]:  # as soon as measured
            say(text_line)
    one_pss = 0.0
    if "warm" in sections:
        say("warm start: a restarted server")
        found, details["warm_start"], one_pss = t.warm_start(
            settings, server_process, bucket, key, suite, factory
        )
        goals += found
        for text_line in t.table(found)[1:]:  # as soon as measured
            say(text_line)
    if "processes" in sections and one_pss:
        say("processes: four servers on the same bucket")
        found, details["processes"] = t.processes(
            settings, server_process, bucket, key, suite, one_pss
        )
        goals += found
        for text_line in t.table(found)[1:]:  # as soon as measured
            say(text_line)
    if "writers" in sections:
        say(f"writers: 16 clients for {writers_seconds:g} s, {writers_workers} server process(es)")
        found, details["writers"] = t.writers(
            settings, server_process, factory, bucket, key, seconds=writers_seconds,
            workers=writers_workers,
        )  # fmt: skip
        goals += found
        for text_line in t.table(found)[1:]:  # as soon as measured
            say(text_line)
    if "jobs" in sections:
        say("bulk jobs on every person of the bucket")
        found, details["jobs"] = t.bulk_jobs(factory, settings, bucket, extra["everyone"], say)
        goals += found
        for text_line in t.table(found)[1:]:  # as soon as measured
            say(text_line)
    elif not only:
        goals.append(t.not_run("bulk jobs", "add_tag, set-single-field records/s", ">= 25,000 /s",
                               "/s", "run with --jobs"))  # fmt: skip
    costs = {} if only else write_costs(factory, bucket, max(20, runs * 3), made[CASES[0].name])
    if costs:
        goals.append(
            t.at_least(
                "import", "import records/s", 20_000, costs["import_records_per_second"], "/s"
            )
        )
    if tenants:
        say(
            f"tenants: {tenants} buckets of {tenant_people:,} people, "
            f"{tenants_workers} server process(es)"
        )
        found, details["tenants"] = t.tenants(
            factory, settings, server_process, count=tenants, people=tenant_people,
            seconds=tenants_seconds, clients=20, say=say, workers=tenants_workers,
        )  # fmt: skip
        goals += found
        for text_line in t.table(found)[1:]:  # as soon as measured
            say(text_line)
    elif not only:
        goals.append(t.not_run("tenants", "500 x 4,000 people, 20 clients, p95", "<= 100 ms",
                               "ms", "run with --tenants 500"))  # fmt: skip
    for text_line in t.table(goals):
        say(text_line)
    compared = bool(results) and references  # --no-references: nothing to compare with
    summary = {
        "count_p50_geomean_ms": geo("count_p50_ms"),
        "duckdb_p50_geomean_ms": geo("duckdb_p50_ms") if compared else None,
        "json_scan_p50_geomean_ms": geo("json_scan_p50_ms") if compared else None,
        "ratio_to_duckdb": (
            round((geo("count_p50_ms") or 0) / (geo("duckdb_p50_ms") or 1), 2) if compared else None
        ),
        "speedup_over_json_scan_min": (
            round(min(r["json_scan_p50_ms"] / max(r["count_p50_ms"], 0.01) for r in results), 2)
            if compared
            else None
        ),
        "server_peak_rss_mb": server_rss,
        "bench_process_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
        "database_bytes": database_bytes(engine),
        "clock_index_bytes": clock_index_bytes(engine),
        **costs,
    }
    mismatched = [
        r["segment"]
        for r in results
        if r["count"] != r["duckdb_count"] and not r["segment"].startswith(("hybrid", "q search"))
    ]
    return {
        "database": engine.dialect.name, "people": people, "other_people": other_people,
        "runs": runs, "cpu_count": os.cpu_count(), "results": results, "summary": summary,
        "count_mismatches_with_duckdb": mismatched,
        "targets": [g.as_dict() for g in goals], "sections": details,
    }  # fmt: skip
