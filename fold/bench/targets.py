"""The million-record targets (issue 18) as `fold bench` sections, each figure printed
beside its target: warm start, processes, deep pages and sorts, contact segments, bulk
jobs, writers, the import rate and many tenants.

The light sections run on every `fold bench`; bulk jobs (`--jobs`) and tenants
(`--tenants N`) change or make a lot of data and run only when asked for."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fold.auth.policies import Caller
from fold.auth.service import create_key
from fold.bench.client import KeepAlive
from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import Job, Segment
from fold.demo.generate import DemoPlan
from fold.demo.load import load_demo, record_count
from fold.ids import new_uid
from fold.jobs import service as jobs
from fold.jobs.runner import begin_job, run_job
from fold.segments import reads
from fold.segments import service as segments

Say = Callable[[str], None]
USER = "/system/user/bench/"
DEEP_PAGE = 2_000  # page 2,000 of 25 rows (scaled down when the bucket is smaller)
PAGE_SIZE = 25
SORTS = ("", "first_name", "-joined", "created", "-last_updated", "address.postal_code", "email")


@dataclass
class Target:
    section: str
    name: str
    goal: str  # as the issue states it
    measured: float | None
    unit: str
    holds: bool | None  # None: not run (see note)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def at_most(
    section: str, name: str, limit: float, measured: float | None, unit: str, note: str = ""
) -> Target:
    goal = f"<= {limit:g} {unit}"
    holds = None if measured is None else measured <= limit
    return Target(
        section, name, goal, None if measured is None else round(measured, 2), unit, holds, note
    )


def at_least(
    section: str, name: str, floor: float, measured: float | None, unit: str, note: str = ""
) -> Target:
    goal = f">= {floor:,g} {unit}"
    holds = None if measured is None else measured >= floor
    return Target(
        section, name, goal, None if measured is None else round(measured, 2), unit, holds, note
    )


def not_run(section: str, name: str, goal: str, unit: str, note: str) -> Target:
    return Target(section, name, goal, None, unit, None, note)


def table(targets: list[Target]) -> list[str]:
    lines = [f"{'section':>16} {'target':<44}{'goal':>20}{'measured':>14}  holds"]
    for t in targets:
        measured = "-" if t.measured is None else f"{t.measured:,.2f} {t.unit}"
        holds = "not run" if t.holds is None else ("yes" if t.holds else "NO")
        note = f"  ({t.note})" if t.note else ""
        lines.append(f"{t.section:>16} {t.name:<44}{t.goal:>20}{measured:>14}  {holds}{note}")
    return lines


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(0.95 * len(ordered) + 0.5) - 1))]


def ms(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def fetch(client: httpx.Client, url: str, headers: dict[str, str]) -> Any:
    return client.get(url, headers=headers).raise_for_status().json()


def repeat(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()
    return [ms(fn) for _ in range(runs)]


# --- segments the sections use ---------------------------------------------------------


def extra_segments(factory: sessionmaker[Session], bucket: str) -> dict[str, Segment]:
    """Everyone (deep pages, sorts, bulk jobs) and a contact segment, made afresh."""
    caller = Caller(bucket=bucket, policy="admin", user_uri=USER)
    specs: dict[str, dict[str, Any]] = {
        "everyone": {"resource_type": "person", "rules": []},
        "contacts in leeds": {
            "resource_type": "contact",
            "rules": [
                {"field": "address.locality", "operator": "equals", "value": "leeds"},
                {"field": "email_opt_out", "operator": "equals", "value": False},
            ],
        },
        "contacts tagged": {
            "resource_type": "contact",
            "rules": [{"field": "tags", "operator": "or_list", "value": ["partner", "volunteer"]}],
        },
    }
    made: dict[str, Segment] = {}
    with unit_of_work(factory) as session:
        for name, spec in specs.items():
            out, _ = segments.create(
                session, caller=caller, params={"name": f"bench: {name}", **spec}
            )
            made[name] = session.get(Segment, (bucket, out["uid"]))  # type: ignore[assignment]
    return made


# --- deep pages, every sort, contact segments (service layer, this process) -------------


def pages_and_contacts(
    factory: sessionmaker[Session], bucket: str, people: int, made: dict[str, Segment], runs: int
) -> tuple[list[Target], dict[str, Any]]:
    caller = Caller(bucket=bucket, policy="admin", user_uri=USER)
    deep = max(1, min(DEEP_PAGE, people // PAGE_SIZE - 1))
    details: dict[str, Any] = {"deep_page": deep, "sorts": {}, "contacts": {}}
    worst_deep, worst_first = 0.0, 0.0
    with unit_of_work(factory) as session:
        everyone = session.get(Segment, (bucket, made["everyone"].uid))
        assert everyone is not None
        for sort in SORTS:
            params = {"page_size": PAGE_SIZE, **({"sort": sort} if sort else {})}
            top = partial(reads.segment_records, session, caller, everyone, {**params, "page": 1})
            far = partial(
                reads.segment_records, session, caller, everyone, {**params, "page": deep}
            )
            first = ms(top)
            page1 = repeat(top, runs)
            paged = repeat(far, runs)
            details["sorts"][sort or "(default)"] = {
                "first_ms": round(first, 1),
                "page_1_p50_ms": round(p50(page1), 2),
                f"page_{deep}_p50_ms": round(p50(paged), 2),
            }
            worst_first = max(worst_first, p50(page1))
            worst_deep = max(worst_deep, p50(paged))
        worst_contact = 0.0
        for name in ("contacts in leeds", "contacts tagged"):
            row = session.get(Segment, (bucket, made[name].uid))
            assert row is not None
            counted = reads.segment_count(session, caller, row)["count"]
            last = max(1, min(deep, counted // PAGE_SIZE))
            counts = repeat(partial(reads.segment_count, session, caller, row), runs)
            top = partial(reads.segment_records, session, caller, row, {"page_size": PAGE_SIZE})
            far = partial(
                reads.segment_records, session, caller, row, {"page_size": PAGE_SIZE, "page": last}
            )
            pages = repeat(top, runs)
            deep_contact = repeat(far, max(3, runs // 2))
            details["contacts"][name] = {
                "count": counted,
                "count_p50_ms": round(p50(counts), 2),
                "page_p50_ms": round(p50(pages), 2),
                "deep_page_p50_ms": round(p50(deep_contact), 2),
            }
            worst_contact = max(worst_contact, p50(counts), p50(pages), p50(deep_contact))
    note = f"page {deep} of {PAGE_SIZE}" if deep != DEEP_PAGE else ""
    targets = [
        at_most(
            "deep pages",
            f"page {deep}, slowest of {len(SORTS)} sorts, p50",
            50,
            worst_deep,
            "ms",
            note,
        ),
        at_most("sorts", f"page 1, slowest of {len(SORTS)} sorts, p50", 50, worst_first, "ms"),
        at_most("contacts", "contact segment count/page, slowest p50", 50, worst_contact, "ms"),
    ]
    return targets, details


# --- servers ----------------------------------------------------------------------------


def rollup_mb(pid: int) -> dict[str, float]:
    """A process's memory from /proc/<pid>/smaps_rollup, in MB: `Pss` (pages shared with
    other processes count by their share), `Pss_Anon` (its heap: private unless forked),
    `Pss_File` (mapped files: the snapshots, the libraries)."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            out[name] = int(rest.split()[0]) / 1024
    return out


AT_REST = 1.0
"""Seconds the bench lets a server stay idle before reading its memory: a serving process
gives its freed heap back once quiet for 0.2 s (`web.middleware.GiveBackWhenQuiet`), so
this is its memory between bursts, which is what a process keeps."""


def rollups_at_rest(pids: list[int]) -> list[dict[str, float]]:
    time.sleep(AT_REST)
    return [rollup_mb(pid) for pid in pids]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def warm_start(
    settings: Settings,
    server_process: Callable[..., Any],
    bucket: str,
    key: str,
    suite: dict[str, Segment],
    factory: sessionmaker[Session],
) -> tuple[list[Target], dict[str, Any], float]:
    """A restarted server: the first count of each suite segment, then a rule on a path no
    rule has used. Answers the targets, details, and that one server's PSS once warm."""
    headers = {"Authorization": f"Bearer {key}"}
    fresh_path = f"bench_unused_{new_uid()[:8]}"
    caller = Caller(bucket=bucket, policy="admin", user_uri=USER)
    with unit_of_work(factory) as session:
        out, _ = segments.create(
            session,
            caller=caller,
            params={
                "name": f"bench: fresh field {fresh_path}",
                "resource_type": "person",
                "rules": [{"field": fresh_path, "operator": "equals", "value": "x"}],
            },
        )
        fresh_uid = out["uid"]
    firsts: dict[str, float] = {}
    with server_process(settings) as server, httpx.Client(timeout=600) as client:
        base = server.base
        for name, segment in suite.items():
            url = f"{base}/segments/v2/{bucket}/segment/{segment.uid}/count"
            firsts[name] = round(ms(partial(fetch, client, url, headers)), 1)
        url = f"{base}/segments/v2/{bucket}/segment/{fresh_uid}/count"
        fresh = ms(partial(fetch, client, url, headers))
        alone = rollups_at_rest([server.pid])[0]
    one = alone.get("Pss", 0.0)
    slowest = max(firsts.values()) if firsts else 0.0
    targets = [
        at_most("warm start", "first count after restart, slowest segment", 1000, slowest, "ms"),
        at_most("warm start", "first count on a never-used field", 1000, fresh, "ms"),
    ]
    details = {
        "first_count_ms": firsts, "fresh_field_ms": round(fresh, 1),
        "pss_anon_mb": round(alone.get("Pss_Anon", 0.0), 1),
        "pss_file_mb": round(alone.get("Pss_File", 0.0), 1),
    }  # fmt: skip
    return targets, details, one


def processes(
    settings: Settings,
    server_process: Callable[..., Any],
    bucket: str,
    key: str,
    suite: dict[str, Segment],
    one_pss: float,
    count: int = 4,
) -> tuple[list[Target], dict[str, Any]]:
    """`fold serve --workers count`, each of its serving processes having counted every
    suite segment: the PSS of all its processes (the parent's included) beside one
    single-process server's."""
    from fold.bench.segments import children

    headers = {"Authorization": f"Bearer {key}"}
    with server_process(settings, workers=count) as server:
        serving = children(server.pid)
        rounds = 0
        # Which process accepts a connection is the kernel's choice: count every segment
        # over 2 x count concurrent connections a round, until each process has mapped
        # the snapshots (its resident memory near the largest one's).
        while rounds < 10:
            rounds += 1
            _count_concurrently(server.base, bucket, headers, suite, 2 * count)
            resident = [rss_mb(pid) for pid in serving]
            if min(resident) >= 0.8 * max(resident):
                break
        pids = [server.pid, *serving]
        rollups = rollups_at_rest(pids)
        rss = [round(rss_mb(pid), 1) for pid in pids]
    each = [round(r.get("Pss", 0.0), 1) for r in rollups]
    ratio = sum(each) / max(one_pss, 1.0)
    targets = [
        at_most(
            "processes", f"fold serve --workers {count}: memory / one server's", 1.5, ratio, "x"
        )
    ]
    return targets, {
        "one_server_pss_mb": round(one_pss, 1), "pss_mb": each, "rss_mb": rss,
        "pss_anon_mb": [round(r.get("Pss_Anon", 0.0), 1) for r in rollups],
        "pss_file_mb": [round(r.get("Pss_File", 0.0), 1) for r in rollups],
        "processes": "parent first, then each serving process", "warm_rounds": rounds,
    }  # fmt: skip


def _count_concurrently(
    base: str, bucket: str, headers: dict[str, str], suite: dict[str, Segment], each: int
) -> None:
    failed: list[BaseException] = []

    def count_all() -> None:
        try:
            for segment in suite.values():
                url = f"{base}/segments/v2/{bucket}/segment/{segment.uid}/count"
                # A new connection each time, so that any process may take it.
                httpx.get(url, headers=headers, timeout=600).raise_for_status()
        except Exception as exc:
            failed.append(exc)

    threads = [threading.Thread(target=count_all) for _ in range(each)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]


# --- writers ----------------------------------------------------------------------------


def writers(
    settings: Settings,
    server_process: Callable[..., Any],
    factory: sessionmaker[Session],
    bucket: str,
    key: str,
    *,
    clients: int = 16,
    seconds: float = 5.0,
    checks: int = 10,
    workers: int = 1,
) -> tuple[list[Target], dict[str, Any]]:
    """`clients` threads creating and patching people in one bucket over HTTP for `seconds`
    against a server of `workers` processes; then each creates `checks` more, counting its
    own segment after each: the count must include the write just answered (whichever
    process answered it)."""
    headers = {"Authorization": f"Bearer {key}"}
    run_tag = new_uid()[:8]
    caller = Caller(bucket=bucket, policy="admin", user_uri=USER)
    watch: list[str] = []
    with unit_of_work(factory) as session:
        for i in range(clients):
            out, _ = segments.create(
                session,
                caller=caller,
                params={
                    "name": f"bench: writer {run_tag}-{i}",
                    "resource_type": "person",
                    "rules": [
                        {"field": "last_name", "operator": "exact", "value": f"W{run_tag}-{i}"}
                    ],
                },
            )
            watch.append(out["uid"])
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    mismatches = [0]
    lock = threading.Lock()
    with server_process(settings, workers) as server:
        base = server.base

        def work(i: int, stop_at: float) -> None:
            made = 0
            with KeepAlive(base, headers) as client:

                def create(n: int) -> str:
                    email = f"w{run_tag}-{i}-{n}@bench.test"
                    body = {"first_name": "Writer", "last_name": f"W{run_tag}-{i}",
                            "email": email, "tags": ["writer"]}  # fmt: skip
                    started = time.perf_counter()
                    answer = client.call("POST", f"/api/v2/{bucket}/person/", body)
                    latencies[i].append((time.perf_counter() - started) * 1000)
                    return str(answer["uid"])

                try:
                    n = 0
                    while time.perf_counter() < stop_at:
                        uid = create(n)
                        n += 1
                        started = time.perf_counter()
                        client.call(
                            "PATCH",
                            f"/api/v2/{bucket}/person/{uid}/",
                            {"tags": ["writer", "patched"]},
                        )
                        latencies[i].append((time.perf_counter() - started) * 1000)
                    made = n
                    for _ in range(checks):
                        create(made)
                        made += 1
                        url = f"/segments/v2/{bucket}/segment/{watch[i]}/count"
                        seen = client.call("GET", url)["count"]
                        if seen != made:
                            with lock:
                                mismatches[0] += 1
                except Exception as exc:  # reported, never hidden
                    with lock:
                        errors.append(f"client {i}: {exc}")

        threads = []
        started = time.perf_counter()
        stop_at = started + seconds
        for i in range(clients):
            thread = threading.Thread(target=work, args=(i, stop_at))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
    timed = [v for per in latencies for v in per]
    # Only the timed phase: writes in it over its length (the checks come after).
    rate = sum(1 for per in latencies for _ in per) / max(seconds, 0.001)
    rate -= clients * checks / max(seconds, 0.001)
    note = f"{len(errors)} errors" if errors else ""
    targets = [
        at_least("writers", f"{clients} clients create+patch, writes/s", 500, rate, "/s", note),
        at_most("writers", f"{clients} clients, write p95", 50, p95(timed), "ms"),
        at_most(
            "writers",
            "writes missing from the next count",
            0,
            float(mismatches[0]),
            "",
            f"{clients * checks} checked",
        ),
    ]
    details = {
        "clients": clients, "seconds": seconds, "workers": workers, "writes": len(timed),
        "p50_ms": round(p50(timed), 2),
        "p95_ms": round(p95(timed), 2), "errors": errors[:10], "checked": clients * checks,
        "missing_from_next_count": mismatches[0],
    }  # fmt: skip
    return targets, details


# --- bulk jobs --------------------------------------------------------------------------


class NoQueue:
    def send_after_commit(self, session: Session, bucket: str, uid: str) -> None:
        return None


def bulk_jobs(
    factory: sessionmaker[Session],
    settings: Settings,
    bucket: str,
    segment: Segment,
    say: Say,
    batch_size: int = 2500,
) -> tuple[list[Target], dict[str, Any]]:
    """add_tag and set-single-field on every person, then the undo of each: records per
    second end to end (freeze, batches, audit entries, undo notes) and the freeze alone."""
    caller = Caller(bucket=bucket, policy="admin", user_uri=USER)
    tag = f"bench-{new_uid()[:6]}"
    plan: list[tuple[str, dict[str, Any]]] = [
        ("add_tag", {"value": tag}),
        ("set-single-field", {"field": "bench_note", "value": tag}),
    ]
    details: list[dict[str, Any]] = []
    targets: list[Target] = []

    def timed_job(uid: str, name: str) -> dict[str, Any]:
        started = time.perf_counter()
        begin_job(factory, settings, bucket, uid)
        frozen = time.perf_counter() - started
        status = run_job(factory, settings, bucket, uid)
        seconds = time.perf_counter() - started
        with unit_of_work(factory) as session:
            job = session.get(Job, (bucket, uid))
            assert job is not None
            done, total = job.succeeded, job.total
        out = {"job": name, "status": status, "records": done, "total": total,
               "freeze_seconds": round(frozen, 2), "seconds": round(seconds, 2),
               "records_per_second": round(total / max(seconds, 1e-6))}  # fmt: skip
        say(f"{name:>24}: {total:,} records in {seconds:.1f} s = {out['records_per_second']:,}/s "
            f"(freeze {frozen:.2f} s, {status})")  # fmt: skip
        return out

    started_jobs = []
    for action, params in plan:
        with unit_of_work(factory) as session:
            receipt = jobs.start_action(
                session, caller=caller, uid=segment.uid,
                params={"action": action, "description": f"bench {action}",
                        "batch_size": batch_size, **params},
                queue=NoQueue(), settings=settings,  # type: ignore[arg-type]
            )  # fmt: skip
        uid = receipt["sheep_event"].split("/")[-2]
        result = timed_job(uid, action)
        details.append(result)
        started_jobs.append(uid)
        targets.append(
            at_least("bulk jobs", f"{action} records/s", 25_000, result["records_per_second"], "/s")
        )
        targets.append(at_most("bulk jobs", f"{action} freeze", 2, result["freeze_seconds"], "s"))
    for uid, (action, _) in zip(reversed(started_jobs), reversed(plan), strict=True):
        with unit_of_work(factory) as session:
            receipt = jobs.undo(session, caller=caller, uid=uid, queue=NoQueue())  # type: ignore[arg-type]
        undo_uid = receipt["uid"]
        result = timed_job(undo_uid, f"undo {action}")
        details.append(result)
    return targets, {"jobs": details}


# --- many tenants -----------------------------------------------------------------------


def tenants(
    factory: sessionmaker[Session],
    settings: Settings,
    server_process: Callable[..., Any],
    *,
    count: int,
    people: int,
    seconds: float,
    clients: int,
    say: Say,
    workers: int = 1,
) -> tuple[list[Target], dict[str, Any]]:
    """`count` buckets of `people` each; `clients` threads count and page random segments
    of random buckets for `seconds`, against a server of `workers` processes. p95, errors,
    and the server's peak memory (each process's: every one keeps its own column index)."""
    from fold.bench.segments import children, peak_rss_mb

    rules = [
        [{"field": "address.locality", "operator": "equals", "value": "leeds"}],
        [{"field": "tags", "operator": "or_list", "value": ["volunteer", "donor"]}],
        [{"field": "membership_status", "operator": "equals", "value": "active"},
         {"field": "email_opt_out", "operator": "equals", "value": False}],
    ]  # fmt: skip
    targets_of: list[tuple[str, str, str]] = []  # bucket, key, segment uid
    for i in range(count):
        bucket = f"bench-tenant-{people}-{i}"
        with unit_of_work(factory) as session:
            have = record_count(session, bucket)
        if not have:
            load_demo(
                factory,
                bucket=bucket,
                plan=DemoPlan(people=people, seed=1000 + i, today=date.today()),
            )
        caller = Caller(bucket=bucket, policy="admin", user_uri=USER)
        with unit_of_work(factory) as session:
            old = session.scalars(
                select(Segment).where(Segment.bucket == bucket, Segment.name.like("bench: %"))
            ).all()
            uids = [s.uid for s in old]
            if not uids:
                for j, rule_set in enumerate(rules):
                    out, _ = segments.create(
                        session, caller=caller,
                        params={"name": f"bench: tenant {j}", "resource_type": "person",
                                "rules": rule_set},
                    )  # fmt: skip
                    uids.append(out["uid"])
            key = create_key(session, bucket=bucket, policy="admin", name="fold bench").key
        targets_of.extend((bucket, key, uid) for uid in uids)
        if (i + 1) % 50 == 0:
            say(f"tenants: {i + 1} of {count} buckets ready")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    with server_process(settings, workers=workers) as server:
        base = server.base

        def work(seed: int, stop_at: float) -> None:
            rng = random.Random(seed)
            mine: list[float] = []
            with KeepAlive(base, {}) as client:
                while time.perf_counter() < stop_at:
                    bucket, key, uid = rng.choice(targets_of)
                    url = f"/segments/v2/{bucket}/segment/{uid}"
                    url += "/count" if rng.random() < 0.5 else "/all"
                    client.headers = {"Authorization": f"Bearer {key}"}
                    started = time.perf_counter()
                    try:
                        client.call("GET", url)
                    except Exception as exc:
                        with lock:
                            errors.append(str(exc))
                        continue
                    mine.append((time.perf_counter() - started) * 1000)
            with lock:
                latencies.extend(mine)

        stop_at = time.perf_counter() + seconds
        threads = [threading.Thread(target=work, args=(i, stop_at)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # With workers, the supervisor holds no store: each worker's own peak.
        peaks = [peak_rss_mb(p) for p in (children(server.pid) if workers > 1 else [server.pid])]
    targets = [
        at_most(
            "tenants",
            f"{count} x {people:,} people, {clients} clients, {workers} process(es), p95",
            100,
            p95(latencies),
            "ms",
        ),
        at_most("tenants", "errors", 0, float(len(errors)), ""),
    ]
    details = {
        "buckets": count, "people_each": people, "clients": clients, "seconds": seconds,
        "requests": len(latencies), "p50_ms": round(p50(latencies), 2),
        "p95_ms": round(p95(latencies), 2),
        "errors": errors[:10], "server_processes": workers,
        "server_peak_rss_mb": max(peaks, default=0), "server_peak_rss_mb_each": peaks,
        "columns_max_records": settings.columns_max_records,
    }  # fmt: skip
    return targets, details


def iter_sections(spec: str) -> Iterator[str]:
    for part in spec.split(","):
        if part.strip():
            yield part.strip()
