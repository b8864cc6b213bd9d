"""Engines and sessions. SQLite gets WAL and a busy timeout; PostgreSQL uses psycopg 3."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("fold.db")

# The last guard against poison: SQLite would store NaN as JSON text its own functions
# refuse to read. Inputs refuse them first (fold.jsontext), naming the field.
json_serializer = functools.partial(json.dumps, allow_nan=False)


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and point them at psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_regexp(pattern: str, flags: str, value: Any) -> int:
    from fold.rules.ops import regex_search

    return 1 if regex_search(pattern, flags, value) else 0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # `$regex` in rules: SQLite has no regular expressions of its own, so it uses Python's,
    # exactly as the rules' Python twin does.
    dbapi_connection.create_function("fold_regexp", 3, _sqlite_regexp, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-200000")
    cursor.close()


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            json_serializer=json_serializer,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, json_serializer=json_serializer
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once `session` commits; never if it rolls back. Jobs are sent to the
    queue this way, so no worker sees a job whose transaction did not happen."""
    session.info.setdefault("after_commit", []).append(callback)


def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop("after_commit", []):
        try:
            callback()
        except Exception:
            # The work it announces is recorded; whoever reads it later (job recovery)
            # picks it up.
            log.exception("an after-commit step failed")


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises.
    Services never commit; this (or the request's session) does."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        session.info.pop("after_commit", None)
        raise
    finally:
        session.close()
    _run_after_commit(session)
