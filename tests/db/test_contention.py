"""Writes under contention: writers queue for the write lock, a lock not had in time is a
503 with Retry-After, and a query past its time limit is stopped, on both databases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from fold.db.engine import Limits, busy_reason, make_engine
from fold.web.app import create_app
from tests.conftest import Database, assert_error, make_tenant, settings_for

SLOW_QUERY = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
    "SELECT count(*) FROM n"
)


@contextmanager
def write_lock_held(database: Database) -> Iterator[None]:
    """Another connection holds the write lock on the records until the block ends."""
    engine = make_engine(database.url)
    with engine.connect() as connection:
        if database.name == "sqlite":
            connection.exec_driver_sql("COMMIT")  # leave SQLAlchemy's deferred BEGIN
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(text("LOCK TABLE records IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


@pytest.fixture
def short_locks(database: Database) -> Iterator[TestClient]:
    """A server whose writes wait at most half a second for a lock."""
    settings = settings_for(database, lock_timeout=0.5, statement_timeout=5.0)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    engine: Engine = app.state.engine
    engine.dispose()


def test_a_lock_not_had_in_time_is_a_503(database: Database, short_locks: TestClient) -> None:
    api = make_tenant(short_locks, database).admin
    with write_lock_held(database):
        started = time.monotonic()
        response = api.post("/person/", json={"first_name": "Ada"})
        assert time.monotonic() - started < 5
    body = assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"].isdigit()
    assert "try again" in body["description"]
    assert api.post("/person/", json={"first_name": "Ada"}).status_code == 201


def test_writers_queue_instead_of_failing(database: Database, app_client: TestClient) -> None:
    tenant = make_tenant(app_client, database)
    api = tenant.admin
    people = [api.post("/person/", json={"first_name": f"P{i}"}).json() for i in range(40)]
    segment = api.post(
        f"/segments/v2/{api.bucket}/create", json={"name": "All", "resource_type": "person"}
    ).json()
    answers: list[int] = []

    def writer(n: int) -> None:
        for i in range(8):
            person = people[(n * 8 + i) % len(people)]
            response = api.patch(f"/person/{person['uid']}/", json={"nickname": f"w{n}-{i}"})
            answers.append(response.status_code)
            answers.append(api.post("/person/", json={"first_name": f"N{n}-{i}"}).status_code)

    def bulk() -> None:
        for i in range(3):
            response = api.post(
                f"/segments/v2/{api.bucket}/segment/{segment['uid']}/action",
                json={"action": "add_tag", "value": f"bulk{i}", "description": "contention"},
            )
            answers.append(response.status_code)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    threads.append(threading.Thread(target=bulk))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers and all(status in (200, 201, 202) for status in answers), answers
    listed = api.get("/person/", params={"page_size": 1000}).json()
    assert listed["total"] == 40 + 6 * 8


def test_a_query_past_its_time_limit_is_stopped(database: Database) -> None:
    engine = make_engine(database.url, Limits(statement=0.3, lock=1.0))
    started = time.monotonic()
    with pytest.raises(DBAPIError) as caught, engine.connect() as connection:
        connection.execute(text(SLOW_QUERY))
    assert time.monotonic() - started < 5
    assert busy_reason(caught.value) == "timeout"
    with engine.connect() as connection:  # the connection is usable again
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_a_timed_out_query_answers_503(database: Database, monkeypatch: Any) -> None:
    from fold.segments import reads

    def slow(*args: Any, **kwargs: Any) -> Any:
        engine = make_engine(database.url, Limits(statement=0.2))
        try:
            with engine.connect() as connection:
                connection.execute(text(SLOW_QUERY))
        finally:
            engine.dispose()

    monkeypatch.setattr(reads, "preview", slow)
    app = create_app(settings_for(database), database.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        api = make_tenant(client, database).viewer
        response = api.post(f"/segments/v2/{api.bucket}/preview", json={"resource_type": "person"})
    assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"].isdigit()


def test_writers_of_a_process_are_served_in_order() -> None:
    from fold.db.engine import WriteQueue

    line = WriteQueue()
    assert line.acquire(1)
    served: list[int] = []

    def writer(n: int) -> None:
        assert line.acquire(10)
        served.append(n)
        line.release()

    threads = []
    for n in range(5):
        threads.append(threading.Thread(target=writer, args=(n,)))
        threads[-1].start()
        time.sleep(0.05)  # each is in line before the next comes
    line.release()
    for thread in threads:
        thread.join()
    assert served == [0, 1, 2, 3, 4]
    assert line.acquire(1)
    started = time.monotonic()
    assert line.acquire(0.2) is False  # a place not had in time is given up
    assert 0.15 < time.monotonic() - started < 2
    line.release()
