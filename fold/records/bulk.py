"""Bulk upsert of many records: the import endpoint, `fold import` and `fold demo`.

Rows are matched on `uid` when given, else on the type's unique field (a person's email),
and written in batches with one query per kind of work, so a large file imports at
thousands of rows a second. A bad row is reported with its line number; good rows stay.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fold import jsontext
from fold.audit.service import Change, entry_row, record_writes
from fold.db.bulk import SQLITE_DATETIME, Encoded, dumps, insert_rows, no_cycle_collection
from fold.db.models import AuditEntry, Record
from fold.errors import Problem
from fold.fields.display import unique_key
from fold.fields.schema import TypeSchema
from fold.records import repository
from fold.records.clock import stamp
from fold.records.document import merge_patch
from fold.records.prepare import Ready, as_stored, preparer
from fold.records.service import derived
from fold.timefmt import utcnow

# Core statements: executemany straight to the driver, without the ORM's per-row work.
RECORDS: Table = Record.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
UPDATE_BY_KEY = (
    update(RECORDS)
    .where(
        RECORDS.c.bucket == bindparam("k_bucket"),
        RECORDS.c.resource_type == bindparam("k_type"),
        RECORDS.c.uid == bindparam("k_uid"),
    )
    .values(
        data=bindparam("data"),
        last_updated=bindparam("last_updated"),
        display_value=bindparam("display_value"),
        search_text=bindparam("search_text"),
        unique_key=bindparam("unique_key"),
        version=bindparam("version"),
    )
)
UPDATE_WITH_STATE = UPDATE_BY_KEY.values(record_state=bindparam("record_state"))
MAX_REPORTED_ERRORS = 1000
BATCH_SIZE = 1000

Row = tuple[int, Any]


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, line: int, problems: list[Problem]) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            first = problems[0]
            self.errors.append(
                {
                    "row": line,
                    "error": "; ".join(p.description for p in problems),
                    "param": first.param,
                }
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "failed": self.failed,
            "errors": self.errors,
            "errors_truncated": self.failed > len(self.errors),
        }


def ndjson_rows(lines: Iterable[str]) -> Iterator[Row]:
    """(line number, parsed object or Problem) for each non-blank line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, jsontext.loads(line)
        except jsontext.JsonRefused as exc:
            yield number, exc.problem
        except json.JSONDecodeError as exc:
            yield number, Problem(f"line {number} is not JSON: {exc.msg}")


def csv_rows(lines: Iterable[str]) -> Iterator[Row]:
    """(line number, object) for each CSV row; headers may be dotted paths."""
    reader = csv.DictReader(lines)
    try:
        for row in reader:
            if None in row:
                yield (
                    reader.line_num,
                    Problem(f"line {reader.line_num} has more cells than headers"),
                )
                continue
            cells = {k: v for k, v in row.items() if k is not None and v != ""}
            refused = (jsontext.text_problem(k + v, k) for k, v in cells.items())
            problem = next((p for p in refused if p is not None), None)
            yield reader.line_num, problem or cells
    except csv.Error as exc:
        yield reader.line_num, Problem(f"line {reader.line_num} is not valid CSV: {exc}")


def rows_from_text(text: str, fmt: str) -> Iterator[Row]:
    lines = io.StringIO(text)
    return csv_rows(lines) if fmt == "csv" else ndjson_rows(lines)


@dataclass
class _Target:
    uid: str
    data: dict[str, Any]
    key: str | None
    state: str
    is_new: bool
    ready: Ready | None = None  # what was made ready for it, if it is new

    def as_ready(self) -> bool:
        """Whether the record is still exactly what was made ready (not merged since)."""
        return self.ready is not None and self.ready.data is self.data and self.is_new


class BatchWriter:
    """Writes one batch of rows in one savepoint; falls back row by row on a conflict."""

    def __init__(
        self, session: Session, *, bucket: str, user_uri: str, schema: TypeSchema, message: str
    ) -> None:
        self.session = session
        self.bucket = bucket
        self.user_uri = user_uri
        self.schema = schema
        self.message = message

    def write(self, batch: list[Ready], result: ImportResult) -> None:
        result.rows += len(batch)
        try:
            with self.session.begin_nested():
                created, updated, failures = self._write(batch)
        except IntegrityError:
            if len(batch) == 1:
                result.fail(
                    batch[0].line, [Problem("conflicts with another record's unique field")]
                )
                return
            result.rows -= len(batch)
            for row in batch:
                self.write([row], result)
            return
        result.created += created
        result.updated += updated
        for line, problems in failures:
            result.fail(line, problems)

    def _write(self, batch: list[Ready]) -> tuple[int, int, list[tuple[int, list[Problem]]]]:
        schema, bucket = self.schema, self.bucket
        failures = [(r.line, r.problems) for r in batch if r.problems]
        cleaned = [r for r in batch if not r.problems]
        by_uid = repository.by_uids(
            self.session,
            bucket=bucket,
            resource_type=schema.resource_type,
            uids=[r.given_uid for r in cleaned if r.given_uid],
        )
        keys = [r.key for r in cleaned if r.key is not None]
        by_key = repository.active_by_unique_keys(
            self.session, bucket=bucket, resource_type=schema.resource_type, keys=keys
        )
        targets: dict[str, _Target] = {}
        key_owner: dict[str, str] = {k: r.uid for k, r in by_key.items()}
        originals: dict[str, dict[str, Any] | None] = {}
        for ready in cleaned:
            line, given_uid, key = ready.line, ready.given_uid, ready.key
            data: dict[str, Any] = ready.data  # type: ignore[assignment]
            target = self._match(given_uid, key, targets, key_owner, by_uid, by_key)
            if target is None:
                uid = ready.uid
                if key is not None and key in key_owner:
                    failures.append(
                        (
                            line,
                            [
                                Problem(
                                    f"{schema.unique_field} {key!r} is taken", schema.unique_field
                                )
                            ],
                        )
                    )
                    continue
                target = _Target(uid, data, key, "active", True, ready)
                originals[uid] = None
            else:
                merged = merge_patch(target.data, data)
                new_key = _key(schema, merged)
                if new_key is not None and key_owner.get(new_key, target.uid) != target.uid:
                    failures.append(
                        (
                            line,
                            [
                                Problem(
                                    f"{schema.unique_field} {new_key!r} is taken",
                                    schema.unique_field,
                                )
                            ],
                        )
                    )
                    continue
                originals.setdefault(target.uid, dict(target.data))
                target.data = merged
                if target.key and target.key != new_key:
                    key_owner.pop(target.key, None)
                target.key = new_key
            targets[target.uid] = target
            if target.key is not None:
                key_owner[target.key] = target.uid
        self._flush(targets)
        changes = [
            Change(
                schema.resource_type, t.uid, originals[t.uid], t.data,
                encoded_diff=t.ready.diff_json if t.ready and t.as_ready() else None,
            )
            for t in targets.values()
        ]  # fmt: skip
        record_writes(
            self.session,
            bucket=bucket,
            user_uri=self.user_uri,
            message=self.message,
            changes=changes,
        )
        created = sum(1 for t in targets.values() if t.is_new)
        return created, len(targets) - created, failures

    def _match(
        self,
        given_uid: str | None,
        key: str | None,
        targets: dict[str, _Target],
        key_owner: dict[str, str],
        by_uid: dict[str, Record],
        by_key: dict[str, Record],
    ) -> _Target | None:
        if given_uid is not None:
            if given_uid in targets:
                return targets[given_uid]
            found = by_uid.get(given_uid)
        elif key is not None:
            owner = key_owner.get(key)
            if owner is not None and owner in targets:
                return targets[owner]
            found = by_key.get(key)
        else:
            return None
        if found is None:
            return None
        return _Target(found.uid, found.data, found.unique_key, found.record_state, False)

    def _flush(self, targets: dict[str, _Target]) -> None:
        now = utcnow()
        # The change clock before any row of the bucket is written (fold.records.clock).
        version = stamp(self.session, self.bucket) if targets else 0
        inserts, updates = [], []
        for t in targets.values():
            ready = t.ready if t.as_ready() else None
            row = {
                "bucket": self.bucket,
                "resource_type": self.schema.resource_type,
                "uid": t.uid,
                "data": t.data if ready is None else Encoded(ready.data_json),
                "last_updated": now,
                **(
                    derived(self.schema, t.data, t.uid, key=t.key)
                    if ready is None
                    else as_stored(ready)
                ),
            }
            if t.is_new:
                inserts.append(
                    {**row, "created": now, "record_state": "active", "version": version}
                )
            else:
                updates.append(row)
        if inserts:
            insert_rows(self.session, RECORDS, inserts)
        if updates:
            self.session.execute(UPDATE_BY_KEY, [_keyed(u, version) for u in updates])


def _keyed(row: dict[str, Any], version: int) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("bucket", "resource_type", "uid")}
    out.update(k_bucket=row["bucket"], k_type=row["resource_type"], k_uid=row["uid"])
    out["version"] = version
    return out


def _key(schema: TypeSchema, data: dict[str, Any]) -> str | None:
    return unique_key(schema, data)


def import_rows(
    session: Session,
    *,
    bucket: str,
    user_uri: str,
    schema: TypeSchema,
    rows: Iterable[Row],
    message: str = "Imported",
    batch_size: int = BATCH_SIZE,
    after_batch: Callable[[ImportResult], None] | None = None,
    parallel: bool = True,
) -> ImportResult:
    """Upsert every row; `after_batch` may commit and report progress."""
    writer = BatchWriter(session, bucket=bucket, user_uri=user_uri, schema=schema, message=message)
    result = ImportResult()
    prepare = preparer(schema, bucket, in_process=not parallel)
    ahead: Callable[[], list[Ready]] | None = None
    with no_cycle_collection():
        # The next batch is made ready (in the worker process) while this one is written.
        for batch in _batches(rows, batch_size):
            submitted = prepare(batch)
            if ahead is not None:
                writer.write(ahead(), result)
                if after_batch is not None:
                    after_batch(result)
            ahead = submitted
        if ahead is not None:
            writer.write(ahead(), result)
            if after_batch is not None:
                after_batch(result)
    return result


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_clean(
    session: Session,
    *,
    bucket: str,
    user_uri: str,
    message: str,
    rows: list[tuple[str, str, dict[str, Any], datetime]],
    schemas: dict[str, TypeSchema],
) -> None:
    """Insert new records already in stored form (generated, not typed in by a person):
    derived fields and audit entries as on every write, without re-reading each value."""
    now = utcnow()
    version = stamp(session, bucket) if rows else 0
    records = []
    audit = []
    for resource_type, uid, data, created in rows:
        records.append(
            {
                "bucket": bucket,
                "resource_type": resource_type,
                "uid": uid,
                "data": data,
                "created": created,
                "last_updated": now,
                "record_state": "active",
                "version": version,
                **derived(schemas[resource_type], data, uid),
            }
        )
        audit.append(
            entry_row(
                bucket=bucket,
                user_uri=user_uri,
                message=message,
                change=Change(resource_type, uid, None, data),
                at=now,
            )
        )
    insert_rows(session, RECORDS, records)
    insert_rows(session, AUDIT, audit)


class Stored(Protocol):
    """What `update_records` reads of a record: an ORM `Record` or the columns of one."""

    @property
    def resource_type(self) -> str: ...
    @property
    def uid(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def record_state(self) -> str: ...


@dataclass
class Rewrite:
    """A new version of an existing record, for `update_records`."""

    row: Stored
    data: dict[str, Any]
    state: str


def narrowed(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two versions cut down to the top-level fields that may differ. A rewrite copies
    only what it changes and shares the rest, so a field that is the very same object on
    both sides is unchanged; the diff of the rest is the diff of the whole (clean_diff
    compares field by field; when one side is left empty, every field of the other is
    added or dropped, which is what the whole diff says of them too)."""
    keys = [
        k
        for k in before.keys() | after.keys()
        if before.get(k, _ABSENT) is not after.get(k, _ABSENT)
    ]
    return (
        {k: before[k] for k in keys if k in before},
        {k: after[k] for k in keys if k in after},
    )


_ABSENT = object()


def update_records(
    session: Session,
    *,
    bucket: str,
    user_uri: str,
    message: str,
    schemas: dict[str, TypeSchema],
    rewrites: list[Rewrite],
) -> None:
    """Save new versions of many records: derived fields recomputed, one audit entry each
    (with its diff), in the caller's transaction."""
    if not rewrites:
        return
    now = utcnow()
    version = stamp(session, bucket)
    updates = []
    changes = []
    for item in rewrites:
        row = item.row
        updates.append(
            _keyed(
                {
                    "bucket": bucket,
                    "resource_type": row.resource_type,
                    "uid": row.uid,
                    "data": item.data,
                    "last_updated": now,
                    "record_state": item.state,
                    **derived(schemas[row.resource_type], item.data, row.uid),
                },
                version,
            )
        )
        before, after = narrowed(
            {**row.data, "record_state": row.record_state},
            {**item.data, "record_state": item.state},
        )
        changes.append(Change(row.resource_type, row.uid, before, after))
    update_many(session, updates)
    record_writes(session, bucket=bucket, user_uri=user_uri, message=message, changes=changes)


def raw_execute_many(session: Session, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """`sql` (written with `?` placeholders) for each row, straight to the driver in the
    session's transaction: for thousands of rows, SQLAlchemy's per-row parameter work
    would cost more than the database does."""
    connection = session.connection()
    raw: Any = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cursor = raw.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def update_many(session: Session, updates: list[dict[str, Any]]) -> None:
    """UPDATE_WITH_STATE for many rows (as `_keyed` makes them), through the driver."""
    postgres = session.get_bind().dialect.name == "postgresql"
    json_mark = "?::jsonb" if postgres else "?"
    sql = (
        f"UPDATE records SET data = {json_mark}, last_updated = ?, display_value = ?, "
        "search_text = ?, unique_key = ?, version = ?, record_state = ? "
        "WHERE bucket = ? AND resource_type = ? AND uid = ?"
    )
    moment = _sqlite_moment() if not postgres else (lambda value: value)
    rows = [
        (
            u["data"] if isinstance(u["data"], Encoded) else dumps(u["data"]),
            moment(u["last_updated"]), u["display_value"], u["search_text"], u["unique_key"],
            u["version"], u["record_state"], u["k_bucket"], u["k_type"], u["k_uid"],
        )
        for u in updates
    ]  # fmt: skip
    raw_execute_many(session, sql, rows)


def _sqlite_moment() -> Callable[[datetime], str]:
    seen: dict[datetime, str] = {}

    def text(value: datetime) -> str:
        out = seen.get(value)
        if out is None:
            out = seen[value] = value.strftime(SQLITE_DATETIME)
        return out

    return text
