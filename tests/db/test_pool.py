"""PostgreSQL's pool checks a connection that sat unused (the server may have dropped it)
and takes one used a moment ago as it is: a ping is a round trip per request."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from fold.db import engine as engines
from tests.conftest import Database


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_dropped_idle_connection_is_replaced_unseen(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.name != "postgresql":
        pytest.skip("PostgreSQL's connection pool")
    engine = engines.make_engine(database.url)
    try:
        first = backend_pid(engine)
        assert backend_pid(engine) == first  # used a moment ago: taken again, unchecked
        with database.engine.connect() as other:
            # Waits (up to 10 s) until that backend has gone.
            other.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": first})
            other.commit()
        monkeypatch.setattr(engines, "PING_AFTER_IDLE", 0.0)  # it has sat long enough
        assert backend_pid(engine) != first
    finally:
        engine.dispose()
