"""More requests at once than a process has connections or threads: every one is answered,
none waits for a pool's or a lock's timeout (`web.middleware.Admission`), and only a few
run at once unless they are slow; when no
connection comes free after all, the answer is a 503 in SPEC 9's shape, not a 500; and a
process gives its freed heap back once quiet (`web.middleware.GiveBackWhenQuiet`)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from starlette.types import Receive, Scope, Send

from fold.auth.service import create_key
from fold.db.engine import connections, unit_of_work
from fold.web.app import create_app
from fold.web.middleware import Admission, GiveBackWhenQuiet
from tests.cli.test_serve import serving
from tests.conftest import Database, settings_for


def admin_key(database: Database, bucket: str) -> str:
    with unit_of_work(database.sessions) as session:
        key: str = create_key(session, bucket=bucket, policy="admin", name="burst").key
    return key


async def burst(base: str, key: str, bucket: str, segment: str, n: int) -> list[int]:
    """n requests at once, half creating people, half counting them."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base, limits=limits, headers=headers, timeout=300
    ) as client:

        async def one(i: int) -> int:
            if i % 2:
                url = f"/segments/v2/{bucket}/segment/{segment}/count"
                return (await client.get(url)).status_code
            made = await client.post(f"/api/v2/{bucket}/person/", json={"first_name": f"P{i}"})
            return made.status_code

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def test_a_burst_past_the_pool_is_answered_in_full(database: Database, tmp_path: Path) -> None:
    bucket = f"burst{secrets.token_hex(3)}"
    key = admin_key(database, bucket)
    env = {**os.environ, "FOLD_DATABASE_URL": database.url, "FOLD_DATA_DIR": str(tmp_path)}
    env.pop("FOLD_REDIS_URL", None)
    # Three requests for every connection the server's pool can lend.
    n = 3 * connections(database.engine)
    with serving(tmp_path, env) as (_, base):
        made = httpx.post(
            f"{base}/segments/v2/{bucket}/create",
            json={"name": "Everyone", "resource_type": "person"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert made.status_code == 201, made.text
        codes = asyncio.run(burst(base, key, bucket, made.json()["uid"], n))
        count = httpx.get(
            f"{base}/segments/v2/{bucket}/segment/{made.json()['uid']}/count",
            headers={"Authorization": f"Bearer {key}"},
        ).json()
    assert sorted(set(codes)) == [200, 201], codes
    assert codes.count(201) == (n + 1) // 2
    assert count["count"] == codes.count(201)


def test_admission_lets_in_what_the_pool_can_serve() -> None:
    inside = 0
    most = 0
    answered = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal inside, most, answered
        inside += 1
        most = max(most, inside)
        await anyio.sleep(0.01)
        inside -= 1
        answered += 1

    gate = Admission(app, connections=lambda: 5, running=50)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            for _ in range(50):
                tasks.start_soon(gate, {"type": "http"}, None, None)
        await gate({"type": "lifespan"}, None, None)  # not an HTTP request: not counted

    anyio.run(main)
    assert (most, answered) == (5, 51)


def test_quick_requests_run_a_few_at_a_time_first_come_first_served() -> None:
    inside = 0
    most = 0
    entered: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        entered.append(scope["n"])
        await anyio.sleep(0.005)
        inside -= 1

    gate = Admission(app, connections=lambda: 20, running=3, long_after=60)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            for n in range(40):
                tasks.start_soon(gate, {"type": "http", "n": n}, None, None)
                await anyio.sleep(0)  # each arrives after the one before

    anyio.run(main)
    assert most == 3
    assert entered == list(range(40))


def test_a_slow_request_gives_its_lane_back() -> None:
    release = anyio.Event()
    quick_done = anyio.Event()
    slow_in = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            slow_in.set()
            await release.wait()
        elif scope["path"] == "/fails":
            raise RuntimeError("the endpoint failed")

    gate = Admission(app, connections=lambda: 5, running=1, long_after=0.05)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(gate, {"type": "http", "path": "/slow"}, None, None)
            await slow_in.wait()

            async def quick() -> None:
                await gate({"type": "http", "path": "/quick"}, None, None)
                quick_done.set()

            tasks.start_soon(quick)
            # The one lane is the slow request's until it has run long_after: then the
            # quick request runs while the slow one is still working.
            with anyio.fail_after(60):
                await quick_done.wait()
            assert not release.is_set()
            release.set()
        # A request that failed gave its lane back too: the next one gets in.
        with pytest.raises(RuntimeError):
            await gate({"type": "http", "path": "/fails"}, None, None)
        with anyio.fail_after(60):
            await gate({"type": "http", "path": "/quick"}, None, None)

    anyio.run(main)


def test_no_free_connection_is_a_503(database: Database) -> None:
    bucket = f"pool{secrets.token_hex(3)}"
    key = admin_key(database, bucket)
    engine: Any = create_engine(database.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        app = create_app(settings_for(database), engine)
        with TestClient(app, raise_server_exceptions=False) as client, engine.connect():
            response = client.get(
                f"/api/v2/{bucket}/person/", headers={"Authorization": f"Bearer {key}"}
            )
    finally:
        engine.dispose()
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "unavailable"
    assert response.headers["retry-after"] == "1"
    assert "Traceback" not in response.text


def test_the_heap_is_given_back_once_the_process_is_quiet() -> None:
    trims: list[float] = []
    release = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") == "/slow":
            await release.wait()

    gate = GiveBackWhenQuiet(app, trim=lambda: trims.append(time.monotonic()), after=0.01)

    async def main() -> None:
        await gate({"type": "http", "path": "/"}, None, None)
        while not trims:  # quiet after that request: trimmed
            await anyio.sleep(0.01)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(gate, {"type": "http", "path": "/slow"}, None, None)
            while gate.in_flight == 0:
                await anyio.sleep(0)
            await gate({"type": "http", "path": "/"}, None, None)
            # A quiet spell broken by a request, or one with a request still in flight,
            # gives nothing back.
            gate._quiet(gate.started - 1)
            gate._quiet(gate.started)
            assert len(trims) == 1
            release.set()
        while len(trims) < 2:
            await anyio.sleep(0.01)

    anyio.run(main)
    assert len(trims) == 2
