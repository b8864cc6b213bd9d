"""Load test: many clients of mixed reads and writes against a real `fold serve` while bulk
jobs start every few seconds. Reports latency percentiles, server errors and whether every
acknowledged write is there afterwards. Not part of `make test` (it takes a few minutes).

    .venv/bin/python scripts/loadtest.py                          # SQLite in a temp dir
    .venv/bin/python scripts/loadtest.py --database postgresql://postgres@127.0.0.1/fold_load

Exit status 1 when any request answered 5xx, failed to connect, or an acknowledged write
is missing."""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.created: dict[str, str] = {}  # uid -> first_name the server acknowledged
        self.patched: dict[str, str] = {}  # uid -> last nickname acknowledged

    def record(self, kind: str, seconds: float, status: int, detail: str = "") -> None:
        with self.lock:
            self.times.setdefault(kind, []).append(seconds)
            self.statuses[status] += 1
            if status >= 500 or status == 0:
                self.failures.append(f"{kind}: {status} {detail[:200]}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


def client_loop(
    base: str,
    bucket: str,
    key: str,
    stop: float,
    stats: Stats,
    n: int,
    clients: int,
    seed_uids: list[str],
) -> None:
    rng = random.Random(n)
    headers = {"Authorization": f"Bearer {key}"}
    api = f"/api/v2/{bucket}"
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        segments = http.get(f"/segments/v2/{bucket}/all").json()["segments"]
        segment_uids = [s["uid"] for s in segments] or [""]
        i = 0
        while time.monotonic() < stop:
            i += 1
            roll = rng.random()
            started = time.monotonic()
            try:
                if roll < 0.25:
                    kind = "create"
                    name = f"load-{n}-{i}"
                    r = http.post(f"{api}/person/", json={"first_name": name, "tags": ["load"]})
                    if r.status_code == 201:
                        with stats.lock:
                            stats.created[r.json()["uid"]] = name
                elif roll < 0.40:
                    kind = "patch"
                    # Each client changes its own records, so the last change it was told
                    # succeeded is the one that must be there (bulk jobs change them too).
                    uid = rng.choice(seed_uids[n::clients])
                    nickname = f"n{n}-{i}"
                    r = http.patch(f"{api}/person/{uid}/", json={"nickname": nickname})
                    if r.status_code == 200:
                        with stats.lock:
                            stats.patched[uid] = nickname
                elif roll < 0.60:
                    kind = "count"
                    uid = rng.choice(segment_uids)
                    r = http.get(f"/segments/v2/{bucket}/segment/{uid}/count")
                elif roll < 0.75:
                    kind = "page"
                    uid = rng.choice(segment_uids)
                    r = http.get(f"/segments/v2/{bucket}/segment/{uid}/all", params={"page": 2})
                elif roll < 0.85:
                    kind = "list"
                    r = http.get(f"{api}/person/", params={"tags": "load", "page_size": 10})
                elif roll < 0.95:
                    kind = "read"
                    r = http.get(f"{api}/person/{rng.choice(seed_uids)}/")
                else:
                    kind = "preview"
                    rules = [{"field": "first_name", "operator": "starts_with", "value": "A"}]
                    r = http.post(
                        f"/segments/v2/{bucket}/preview",
                        json={"resource_type": "person", "rules": rules},
                    )
                stats.record(kind, time.monotonic() - started, r.status_code, r.text)
            except httpx.HTTPError as exc:
                stats.record("transport", time.monotonic() - started, 0, repr(exc))


def bulk_loop(
    base: str, bucket: str, key: str, stop: float, every: float, stats: Stats, segment: str
) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"}
    jobs: list[str] = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        n = 0
        while time.monotonic() < stop:
            n += 1
            started = time.monotonic()
            r = http.post(
                f"/segments/v2/{bucket}/segment/{segment}/action",
                json={"action": "add_tag", "value": f"bulk{n}", "description": "load test"},
            )
            stats.record("bulk_start", time.monotonic() - started, r.status_code, r.text)
            if r.status_code < 300:
                jobs.append("/api/v2" + r.json()["sheep_event"])
            time.sleep(max(0.0, every - (time.monotonic() - started)))
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="FOLD_DATABASE_URL (default: SQLite, temp dir)")
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--bulk-every", type=float, default=10)
    parser.add_argument("--people", type=int, default=5000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fold-load-"))
    env = {
        **os.environ,
        "FOLD_DATA_DIR": str(work),
        "FOLD_DATABASE_URL": args.database or f"sqlite:///{work / 'fold.db'}",
        "FOLD_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    env.pop("FOLD_REDIS_URL", None)
    bucket = f"load-{random.randrange(10**6)}"
    fold = str(BIN / "fold")
    subprocess.run([fold, "migrate"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [fold, "keys", "create", "--bucket", bucket, "--policy", "admin", "--name", "load"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (work / "server.log").open("w")
    server = subprocess.Popen(
        [fold, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {key}", "content-type": "application/x-ndjson"}
        lines = "".join(
            json.dumps({"first_name": f"{'ABCDEFGH'[i % 8]}seed{i}", "tags": ["seed"]}) + "\n"
            for i in range(args.people)
        )
        seeded = httpx.post(
            f"{base}/api/v2/{bucket}/person/import", content=lines, headers=headers, timeout=300
        )
        seeded.raise_for_status()
        auth = {"Authorization": f"Bearer {key}"}
        seed_page = httpx.get(
            f"{base}/api/v2/{bucket}/person/", params={"page_size": 1000}, headers=auth
        ).json()
        seed_uids = [r["uid"] for r in seed_page["results"]]
        segment = httpx.post(
            f"{base}/segments/v2/{bucket}/create",
            json={"name": "Seeded", "resource_type": "person",
                  "rules": [{"field": "tags", "operator": "equals", "value": "seed"}]},
            headers=auth,
        ).json()["uid"]  # fmt: skip

        stats = Stats()
        stop = time.monotonic() + args.seconds
        threads = [
            threading.Thread(
                target=client_loop,
                args=(base, bucket, key, stop, stats, n, args.clients, seed_uids),
            )
            for n in range(args.clients)
        ]
        jobs: list[str] = []
        bulk = threading.Thread(
            target=lambda: jobs.extend(
                bulk_loop(base, bucket, key, stop, args.bulk_every, stats, segment)
            )
        )
        began = time.monotonic()
        for thread in [*threads, bulk]:
            thread.start()
        for thread in [*threads, bulk]:
            thread.join()
        elapsed = time.monotonic() - began

        # Every acknowledged write must be there; every job must finish.
        lost = 0
        with httpx.Client(base_url=base, headers=auth, timeout=60) as http:
            for uid, name in stats.created.items():
                r = http.get(f"/api/v2/{bucket}/person/{uid}/")
                lost += r.status_code != 200 or r.json().get("first_name") != name
            for uid, nickname in stats.patched.items():
                r = http.get(f"/api/v2/{bucket}/person/{uid}/")
                lost += r.status_code != 200 or r.json().get("nickname") != nickname
            deadline = time.monotonic() + 300
            unfinished = list(jobs)
            while unfinished and time.monotonic() < deadline:
                states = [http.get(j).json().get("status") for j in unfinished]
                unfinished = [
                    j for j, s in zip(unfinished, states, strict=True) if s not in ("completed",)
                ]
                if unfinished:
                    time.sleep(1)
    finally:
        server.terminate()
        server.wait(30)
        log.close()

    every = [t for times in stats.times.values() for t in times]
    errors = sum(n for status, n in stats.statuses.items() if status >= 500 or status == 0)
    report = {
        "database": env["FOLD_DATABASE_URL"].split(":", 1)[0],
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "requests": len(every),
        "per_second": round(len(every) / elapsed, 1),
        "p50_ms": round(percentile(every, 0.50) * 1000),
        "p95_ms": round(percentile(every, 0.95) * 1000),
        "p99_ms": round(percentile(every, 0.99) * 1000),
        "by_kind_p95_ms": {
            k: round(percentile(v, 0.95) * 1000) for k, v in sorted(stats.times.items())
        },
        "statuses": dict(sorted(stats.statuses.items())),
        "server_errors": errors,
        "writes_acknowledged": len(stats.created) + len(stats.patched),
        "writes_lost": lost,
        "bulk_jobs": len(jobs),
        "bulk_jobs_unfinished": len(unfinished),
        "first_failures": stats.failures[:5],
        "server_log": str(work / "server.log"),
    }
    print(json.dumps(report, indent=2))
    return 1 if errors or lost or unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
