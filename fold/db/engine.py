"""Engines and sessions. SQLite gets WAL and a busy timeout; PostgreSQL uses psycopg 3."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from fold.config import Settings
from fold.errors import Unavailable

log = logging.getLogger("fold.db")
SQLITE_CACHE_KIB = 200_000  # each connection's page cache
SCAN_CACHE_KIB = 16_000  # while one reads a whole table through (small_cache)
# SQL functions a SQLite connection is given: name -> (number of arguments, function).
SqliteFunctions = Mapping[str, tuple[int, Callable[..., Any]]]

# The last guard against poison: SQLite would store NaN as JSON text its own functions
# refuse to read. Inputs refuse them first (fold.jsontext), naming the field. PostgreSQL's
# jsonb refuses NaN itself, and a serializer of our own there would replace psycopg's fast
# JSON dumper (measured: bulk jobs several times slower).
json_serializer = json.JSONEncoder(allow_nan=False).encode


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and point them at psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@dataclass(frozen=True)
class Limits:
    """How long one statement may run and how long a write may wait for a lock, in seconds
    (None: unbounded). `fold serve` bounds both; the CLI's own work (migrations, imports)
    does not."""

    statement: float | None = None
    lock: float = 30.0


def server_limits(settings: Settings) -> Limits:
    """The bounds of the server's queries: FOLD_STATEMENT_TIMEOUT, FOLD_LOCK_TIMEOUT."""
    return Limits(statement=settings.statement_timeout, lock=settings.lock_timeout)


WRITE = {"fold_begin": "BEGIN IMMEDIATE"}
"""Execution options of a session that will write: on SQLite it takes the write lock when it
begins, so writers queue for it (up to the lock limit) instead of failing part-way through
when a read snapshot cannot be upgraded."""


def _sqlite_pragmas(limits: Limits, functions: SqliteFunctions) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        # SQLAlchemy's `begin` event below sends BEGIN itself, deferred or IMMEDIATE.
        dbapi_connection.isolation_level = None
        for name, (arity, function) in functions.items():
            dbapi_connection.create_function(name, arity, function, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(limits.lock * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()
        if limits.statement is not None:
            # SQLite has no statement timeout: a progress handler, called every few thousand
            # steps of its virtual machine, interrupts a statement past its deadline.
            deadline = record.info["fold_deadline"] = [math.inf]
            dbapi_connection.set_progress_handler(
                lambda: 1 if time.monotonic() > deadline[0] else 0, 20_000
            )

    return on_connect


class WriteQueue:
    """The writers of one process, first come first served. SQLite's own busy handler
    polls with sleeps of up to 100 ms, so a writer can lose to a job's next batch again and
    again; here the next writer in line is woken as soon as the lock is released. Other
    processes still meet SQLite's lock (and its busy timeout)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._line: deque[object] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        me = object()
        deadline = time.monotonic() + timeout
        with self._changed:
            self._line.append(me)
            while self._held or self._line[0] is not me:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._line.remove(me)
                    self._changed.notify_all()
                    return False
                self._changed.wait(remaining)
            self._line.popleft()
            self._held = True
            return True

    def release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()


def _sqlite_events(engine: Engine, limits: Limits, functions: SqliteFunctions) -> None:
    event.listen(engine, "connect", _sqlite_pragmas(limits, functions))
    writers = WriteQueue()

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        statement = connection.get_execution_options().get("fold_begin", "BEGIN")
        if statement != "BEGIN":
            if not writers.acquire(limits.lock):
                raise Unavailable("The database is busy with other writes; try again shortly.")
            connection.info["fold_writer"] = True
        try:
            connection.exec_driver_sql(statement)
        except BaseException:
            end(connection)
            raise

    def end(connection: Connection, *_args: Any) -> None:
        if connection.info.pop("fold_writer", False):
            writers.release()

    event.listen(engine, "commit", end)
    event.listen(engine, "rollback", end)

    # A connection that goes back to the pool never keeps its place (e.g. one invalidated
    # before its transaction ended).
    def on_reset(_dbapi: Any, record: Any, _state: Any) -> None:
        _release_record(record, writers)

    event.listen(engine, "reset", on_reset)

    if limits.statement is None:
        return
    statement = limits.statement

    @event.listens_for(engine, "before_cursor_execute")
    def start(connection: Connection, *_args: Any) -> None:
        if deadline := connection.info.get("fold_deadline"):
            deadline[0] = time.monotonic() + statement

    def stop(connection: Connection) -> None:
        if deadline := connection.info.get("fold_deadline"):
            deadline[0] = math.inf

    event.listen(engine, "after_cursor_execute", lambda connection, *_: stop(connection))

    def on_error(context: Any) -> None:
        if context.connection is not None:
            stop(context.connection)

    event.listen(engine, "handle_error", on_error)


def _release_record(record: Any, writers: WriteQueue) -> None:
    if record.info.pop("fold_writer", False):
        writers.release()


# Connections an engine keeps, and how many more it opens for a while under load.
# PostgreSQL: as many kept as requests commonly in flight (16 writers): one opened and
# closed again for each request beyond them costs the database a new backend each time.
POOLS = {"sqlite": (8, 10), "postgresql": (20, 20)}


def connections(engine: Engine) -> int:
    """How many connections `engine` lends at once, at most (`make_engine`'s pools)."""
    size, overflow = POOLS.get(engine.dialect.name, (5, 10))  # SQLAlchemy's defaults
    return size + overflow


def make_engine(
    url: str, limits: Limits | None = None, *, sqlite_functions: SqliteFunctions | None = None
) -> Engine:
    """An engine for `url`. On SQLite each connection gets `sqlite_functions`: what SQL
    compiled by the layers above calls and SQLite lacks (`rules.sqlite.FUNCTIONS`)."""
    limits = limits or Limits()
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        size, overflow = POOLS["sqlite"]
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": limits.lock},
            pool_size=size,
            max_overflow=overflow,
            json_serializer=json_serializer,
        )
        _sqlite_events(engine, limits, sqlite_functions or {})
        return engine
    options = f"-c lock_timeout={int(limits.lock * 1000)}"
    if limits.statement is not None:
        options += f" -c statement_timeout={int(limits.statement * 1000)}"
    size, overflow = POOLS["postgresql"]
    engine = create_engine(
        url, pool_size=size, max_overflow=overflow, connect_args={"options": options}
    )
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE = 1.0
"""Seconds a pooled PostgreSQL connection sat unused before it is checked on checkout."""


def _ping_when_idle(engine: Engine) -> None:
    """`pool_pre_ping`'s check (a server restarted since: the connection is replaced, the
    request never sees it), but only for a connection that sat in the pool a while. Under
    load every connection was in use a moment ago, and a ping is a round trip per request.
    (A server lost within the last second fails the requests that meet it, as it fails those
    in flight; the pool then replaces every connection.)"""

    @event.listens_for(engine, "checkin")
    def checkin(_dbapi: Any, record: Any) -> None:
        record.info["fold_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("fold_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return  # just opened, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error:
            raise DisconnectionError("the pooled connection is gone") from None


def busy_reason(exc: DBAPIError) -> str | None:
    """ "lock" when a lock was not had in time (SQLite's busy wait, PostgreSQL's
    lock_timeout), "timeout" when a statement ran past its limit (SQLite's progress handler,
    PostgreSQL's statement_timeout); None for any other database error."""
    message = str(exc.orig).lower()
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if "database is locked" in message or "database table is locked" in message:
        return "lock"
    if sqlstate == "55P03":
        return "lock"
    if message.startswith("interrupted") or sqlstate == "57014":
        return "timeout"
    return None


def make_sessionmaker(engine: Engine, *, writes: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine`; `writes` for work that writes (SQLite: BEGIN IMMEDIATE)."""
    bind = engine.execution_options(**WRITE) if writes else engine
    return sessionmaker(bind, expire_on_commit=False, autoflush=False)


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
def small_cache(reader: Session | Connection) -> Iterator[None]:
    """A long read of a whole table (an export, a column index's store or catalogue)
    through a small SQLite page cache, so the reading process does not grow by the 200 MB
    cache the connection keeps for queries (its own memory, never shared with another)."""
    dialect = reader.get_bind().dialect if isinstance(reader, Session) else reader.dialect
    if dialect.name != "sqlite":
        yield
        return
    reader.execute(text(f"PRAGMA cache_size=-{SCAN_CACHE_KIB}"))
    try:
        yield
    finally:
        reader.execute(text(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}"))


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
