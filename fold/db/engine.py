"""Engines and sessions. SQLite gets WAL and a busy timeout; PostgreSQL uses psycopg 3."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("fold.db")
SQLITE_CACHE_KIB = 200_000  # each connection's page cache
SCAN_CACHE_KIB = 16_000  # while one reads a whole table through (small_cache)


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
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


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
def small_cache(session: Session) -> Iterator[None]:
    """A long read of a whole table (an export) through a small SQLite page cache, so the
    reading process does not grow by the 200 MB cache the connection keeps for queries."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    session.execute(text(f"PRAGMA cache_size=-{SCAN_CACHE_KIB}"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}"))


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
