"""`fold serve` stopped with SIGTERM takes its import worker processes with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="import workers need two cores")
def test_sigterm_stops_the_import_workers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fold.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with unit_of_work(make_sessionmaker(engine)) as session:
        key = create_key(session, bucket="serve", policy="admin", name="t").key
    engine.dispose()
    port = free_port()
    env = {**os.environ, "FOLD_DATABASE_URL": url, "FOLD_DATA_DIR": str(tmp_path)}
    env["FOLD_IMPORT_WORKERS"] = "1"
    env.pop("FOLD_REDIS_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "fold.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/health").status_code == 200
            except httpx.HTTPError:
                return server.poll() is not None

        wait_until(healthy, 60, "the server to answer")
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
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
    finally:
        if server.poll() is None:
            server.kill()
        log.close()
