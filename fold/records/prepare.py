"""Import rows made ready for writing: checked, cleaned and — in case they turn out to be
new records — given their uid, derived fields and JSON. With `FOLD_IMPORT_WORKERS` (1 by
default) this runs in a separate process on the next batch while this process writes the
current one, so an import uses two cores.

Whether a row is new is only known once the database is asked; a row that matches an
existing record (or an earlier row of the file) is derived again from its merged document
by the writer, and what was made ready for it is not used.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from fold.audit.diff import clean_diff
from fold.db.bulk import dumps
from fold.errors import Problem
from fold.fields.display import display_value, search_text, unique_key
from fold.fields.schema import TypeSchema
from fold.ids import is_uid, new_uid
from fold.records.document import clean_document

log = logging.getLogger("fold.records")

Row = tuple[int, Any]


@dataclass
class Ready:
    line: int
    problems: list[Problem] = field(default_factory=list)
    given_uid: str | None = None
    data: dict[str, Any] | None = None
    key: str | None = None
    # As a new record: the uid it gets unless the row names one, and what it stores.
    uid: str = ""
    display: str = ""
    search: str = ""
    data_json: str = ""
    diff_json: str = ""


def ready_rows(rows: list[Row], schema: TypeSchema, bucket: str) -> list[Ready]:
    """Each row checked and cleaned; the good ones derived and encoded as new records."""
    out = []
    for line, raw in rows:
        if isinstance(raw, Problem):
            out.append(Ready(line, [raw]))
            continue
        if not isinstance(raw, dict):
            out.append(Ready(line, [Problem("a row must be a JSON object")]))
            continue
        given_uid = raw.get("uid")
        if given_uid is not None and not (isinstance(given_uid, str) and is_uid(given_uid)):
            out.append(Ready(line, [Problem("uid must be 24 hex characters", "uid")]))
            continue
        data, problems = clean_document(raw, schema, bucket)
        if problems:
            out.append(Ready(line, problems))
            continue
        uid = given_uid or new_uid()
        shown = display_value(schema, data, uid)
        out.append(
            Ready(
                line,
                given_uid=given_uid,
                data=data,
                key=unique_key(schema, data),
                uid=uid,
                display=shown,
                search=search_text(schema, data, shown),
                data_json=dumps(data),
                diff_json=dumps(clean_diff(None, data)),
            )
        )
    return out


@dataclass
class _Options:
    workers: int = 1


OPTIONS = _Options()
_pool: Executor | None = None
_pool_lock = threading.Lock()


def configure(*, workers: int) -> None:
    OPTIONS.workers = workers


def _executor() -> Executor | None:
    global _pool
    if OPTIONS.workers < 1 or (os.cpu_count() or 1) < 2:
        return None
    with _pool_lock:
        if _pool is None:
            # "spawn": a fresh interpreter, never a fork of a threaded server.
            context = multiprocessing.get_context("spawn")
            _pool = ProcessPoolExecutor(
                max_workers=OPTIONS.workers,
                mp_context=context,
                initializer=_watch_parent,
                initargs=(os.getpid(),),
            )
        return _pool


def shutdown() -> None:
    """Stop the worker processes; the server calls this when it stops."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _watch_parent(parent: int) -> None:
    """In a worker process: exit when the server that started it is gone, however it went
    (a SIGKILL leaves no chance to shut the pool down)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="fold-parent-watch", daemon=True).start()


def _forget_pool(broken: Executor) -> None:
    global _pool
    with _pool_lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def preparer(
    schema: TypeSchema, bucket: str, *, in_process: bool
) -> Callable[[list[Row]], Callable[[], list[Ready]]]:
    """submit(batch) -> a function that waits for the batch's Ready rows. Work goes to the
    worker process when there is one; if it fails, the batch is made ready here."""
    executor = None if in_process else _executor()

    def submit(batch: list[Row]) -> Callable[[], list[Ready]]:
        if executor is None:
            done = ready_rows(batch, schema, bucket)
            return lambda: done
        try:
            future = executor.submit(ready_rows, batch, schema, bucket)
        except (BrokenProcessPool, RuntimeError):
            _forget_pool(executor)
            done = ready_rows(batch, schema, bucket)
            return lambda: done

        def wait() -> list[Ready]:
            try:
                return future.result()
            except BrokenProcessPool:
                log.warning("the import worker process stopped; preparing rows here instead")
                _forget_pool(executor)
                return ready_rows(batch, schema, bucket)

        return wait

    return submit


def as_stored(ready: Ready) -> dict[str, Any]:
    """Derived fields of a new record from its Ready row."""
    return {"display_value": ready.display, "search_text": ready.search, "unique_key": ready.key}
