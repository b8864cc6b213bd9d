"""`fold serve` stopped with SIGTERM takes its import worker processes with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from fold.auth.service import create_key
from fold.db import migrate
from fold.db.engine import make_engine, make_sessionmaker, unit_of_work


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(predicate: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextmanager
def serving(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[tuple[Any, str]]:
    """`fold serve` in a process of its own on a free port, once it answers; killed after
    the block if it has not stopped. Its output goes to `serve.log`."""
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    command = [sys.executable, "-m", "fold.cli.main", "serve", "--port", str(port), *args]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/health").status_code == 200
            except httpx.HTTPError:
                return server.poll() is not None

        wait_until(healthy, 90, "the server to answer")
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        yield server, base
    finally:
        if server.poll() is None:
            server.kill()
        log.close()


def database_with_key(tmp_path: Path, bucket: str) -> tuple[str, dict[str, str]]:
    """A migrated SQLite database under `tmp_path` holding an admin key of `bucket`: the
    key, and the environment of a `fold serve` on it (embedded queue, no Redis)."""
    url = f"sqlite:///{tmp_path / 'fold.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with unit_of_work(make_sessionmaker(engine)) as session:
        key = create_key(session, bucket=bucket, policy="admin", name="t").key
    engine.dispose()
    env = {**os.environ, "FOLD_DATABASE_URL": url, "FOLD_DATA_DIR": str(tmp_path)}
    env.pop("FOLD_REDIS_URL", None)
    return key, env


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="import workers need two cores")
def test_sigterm_stops_the_import_workers(tmp_path: Path) -> None:
    key, env = database_with_key(tmp_path, "serve")
    env["FOLD_IMPORT_WORKERS"] = "1"
    with serving(tmp_path, env) as (server, base):
        answer = httpx.post(
            f"{base}/api/v2/serve/person/import",
            content=b'{"first_name": "Ann"}\n',
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
            timeout=60,
        )
        assert answer.status_code == 200 and answer.json()["created"] == 1, answer.text
        workers = children_of(server.pid)
        assert workers, "the import ran with no worker process"
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        wait_until(lambda: not any(alive(p) for p in workers), 30, "the workers to stop")


def test_several_processes_serve_one_port_and_count_exactly(tmp_path: Path) -> None:
    """`fold serve --workers 2`: two processes answer on the port; a write answered by
    one is in the very next count, whichever answers it; jobs run in a process of their
    own beside them."""
    from fold.auth.policies import Caller
    from fold.records.clock import install
    from fold.segments import service as segments

    url = f"sqlite:///{tmp_path / 'fold.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with unit_of_work(install(make_sessionmaker(engine))) as session:
        key = create_key(session, bucket="many", policy="admin", name="t").key
        caller = Caller(bucket="many", policy="admin", user_uri="/system/user/test/")
        rule = {"field": "last_name", "operator": "exact", "value": "Many"}
        params = {"name": "the many", "resource_type": "person", "rules": [rule]}
        segment = segments.create(session, caller=caller, params=params)[0]["uid"]
    engine.dispose()
    env = {**os.environ, "FOLD_DATABASE_URL": url, "FOLD_DATA_DIR": str(tmp_path)}
    env.pop("FOLD_REDIS_URL", None)
    headers = {"Authorization": f"Bearer {key}"}
    with serving(tmp_path, env, "--workers", "2") as (server, base):
        # Two serving processes and one running jobs.
        wait_until(lambda: len(children_of(server.pid)) == 3, 60, "three processes")
        count_url = f"{base}/segments/v2/many/segment/{segment}/count"
        for n in range(1, 13):
            # A new connection each time, so either process may answer either request.
            made = httpx.post(
                f"{base}/api/v2/many/person/", json={"last_name": "Many"}, headers=headers
            )
            assert made.status_code == 201, made.text
            assert httpx.get(count_url, headers=headers).json()["count"] == n
        action = httpx.post(
            f"{base}/segments/v2/many/segment/{segment}/action",
            json={"action": "add_tag", "value": "many", "description": "tag the many"},
            headers=headers,
        )
        assert action.status_code in (200, 201), action.text
        job_url = base + "/api/v2" + action.json()["sheep_event"]

        def finished() -> bool:
            status = httpx.get(job_url, headers=headers).json()["status"]
            return status not in ("created", "running", "queued")

        wait_until(finished, 60, "the job to finish")
        assert httpx.get(job_url, headers=headers).json()["status"] == "completed"
        server.send_signal(signal.SIGTERM)
        server.wait(60)


def test_a_dead_serving_process_is_replaced_and_a_killed_parent_leaves_none(
    tmp_path: Path,
) -> None:
    """The processes of `fold serve --workers 2` are forked from one parent: one killed is
    started again and the port keeps answering; the parent killed (no chance to stop
    them), they stop themselves."""
    key, env = database_with_key(tmp_path, "forked")
    headers = {"Authorization": f"Bearer {key}"}
    with serving(tmp_path, env, "--workers", "2", "--no-worker") as (server, base):
        wait_until(lambda: len(children_of(server.pid)) == 2, 60, "two serving processes")
        first = children_of(server.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: len(children_of(server.pid)) == 2 and victim not in children_of(server.pid),
            60,
            "a process in place of the killed one",
        )
        for _ in range(6):  # a new connection each time: either process may answer
            answer = httpx.get(f"{base}/api/v2/forked/person/", headers=headers)
            assert answer.status_code == 200, answer.text
        assert "exited (SIGKILL)" in (tmp_path / "serve.log").read_text()
        serving_now = children_of(server.pid)
        server.kill()
        server.wait(30)
        wait_until(
            lambda: not any(alive(p) for p in serving_now), 30, "the orphans to stop themselves"
        )


def established_on(port: int, pids: set[int]) -> dict[int, int]:
    """How many TCP connections to `port` each process holds open."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(f"socket:[{fields[9]}]")
    held = {}
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        held[pid] = sum(1 for fd in fds.iterdir() if _link(fd) in inodes)
    return held


def _link(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def test_keep_alive_clients_end_up_spread_over_the_processes(tmp_path: Path) -> None:
    """Twelve clients that keep their connections open, all taken by one of two serving
    processes (the other stopped meanwhile): the crowded one asks clients to reconnect
    until neither holds more than its share and one."""
    import http.client

    key, env = database_with_key(tmp_path, "spread")
    headers = {"Authorization": f"Bearer {key}"}
    with serving(tmp_path, env, "--workers", "2", "--no-worker") as (server, base):
        wait_until(lambda: len(children_of(server.pid)) == 2, 60, "two serving processes")
        first, second = sorted(children_of(server.pid))
        port = int(base.rsplit(":", 1)[1])
        clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(12)]

        def ask(client: http.client.HTTPConnection) -> None:
            client.request("GET", "/api/v2/spread/person/", headers=headers)
            answer = client.getresponse()
            answer.read()
            assert answer.status == 200

        os.kill(second, signal.SIGSTOP)
        try:
            for client in clients:
                client.connect()
            wait_until(
                lambda: established_on(port, {first, second}) == {first: 12, second: 0},
                60,
                "the running process to accept all twelve",
            )
        finally:
            os.kill(second, signal.SIGCONT)

        def all_connected() -> dict[int, int]:
            for client in clients:
                if client.sock is None:  # closed after a "Connection: close": reopen
                    client.connect()
            wait_until(
                lambda: sum(established_on(port, {first, second}).values()) == 12,
                60,
                "every client to be accepted",
            )
            return established_on(port, {first, second})

        rounds = 0
        while max((held := all_connected()).values()) > 7:
            rounds += 1
            assert rounds <= 200, held
            for client in clients:
                ask(client)
        assert rounds > 0 and min(held.values()) >= 5, held
        for client in clients:
            client.close()
