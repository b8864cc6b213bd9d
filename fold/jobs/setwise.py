"""A batch of a simple record action as a few set-based statements instead of a loop over
records: `add_tag`, `remove_tag`, `set-single-field` and `change-status` on a top-level
field no derived value reads, and the undo of each.

In the batch's transaction, after the change clock is stamped:

1. the batch's pending items joined to their records, where the SQL can do them exactly
   ("plain" records): whether each record changes, its new document, the audit diff
   `clean_diff` would give and the undo note the per-record action would keep, all
   worked out from the records as they are;
2. one audit entry per changed record (uids laid out as `new_uid` makes them);
3. the changed records: the new document, the clock's version and `last_updated`;
4. the items: `done`, with their undo notes.

On PostgreSQL that is one statement of data-modifying CTEs (which all read the snapshot
it starts with), the records locked by its first step; on SQLite, step 1 goes into a
temporary table of the connection and each write is one statement from it.

What the SQL does not do exactly (a deleted or missing record, tags that are not a list,
a value that is an object, numbers compared with numbers, a tag twice in a list on
SQLite) stays pending, and the runner hands those items to the per-record action in the
same transaction. So every outcome, audit entry and undo note is what the per-record path
gives; tests/jobs/test_setwise.py holds the two to the same answers on awkward documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from fold.db.bulk import SQLITE_DATETIME, dumps
from fold.fields.display import derived_from
from fold.fields.schema import TypeSchema
from fold.ids import uid_block

SETWISE_ACTIONS = ("add_tag", "remove_tag", "set-single-field", "change-status")
_TOP_LEVEL = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Plan:
    """SQL expressions over `r` (the record row) and `i` (the job item) for one kind of
    change; `undo` None: the items' notes become NULL (an undo job keeps none)."""

    plain: str
    changed: str
    new_data: str
    diff: str
    undo: str | None
    params: dict[str, Any] = field(default_factory=dict)
    # Whether a batch can read its records straight from a frozen chunk (`run_chunk`):
    # everything but `i.undo` (which only an undo's plan reads) is there.
    from_chunks: bool = True


class _Dialect:
    """The JSON spellings of one database (all the SQL text that differs between them).
    A JSON value handed to a SQLite JSON function goes through json(): through a CASE it
    would otherwise arrive as plain text."""

    def __init__(self, name: str) -> None:
        self.postgres = name == "postgresql"

    # Of the field `:f`: its JSON (NULL when absent), its type, its text.
    def value(self) -> str:
        return "(r.data -> CAST(:f AS text))" if self.postgres else "(r.data -> :path)"

    def kind(self) -> str:
        if self.postgres:
            return "jsonb_typeof(r.data -> CAST(:f AS text))"
        return "json_type(r.data, :path)"

    def text(self) -> str:
        return "(r.data ->> CAST(:f AS text))" if self.postgres else "json_extract(r.data, :path)"

    def types(self, *names: str) -> str:
        """JSON type names as this database spells them, as an SQL list."""
        pg = {"text": "string", "integer": "number", "real": "number", "true": "boolean",
              "false": "boolean"}  # fmt: skip
        spelt = sorted({pg.get(n, n) if self.postgres else n for n in names})
        return "(" + ", ".join(f"'{n}'" for n in spelt) + ")"

    def is_text(self, kind: str) -> str:
        return f"{kind} = " + ("'string'" if self.postgres else "'text'")

    def j(self, sql: str) -> str:
        """`sql`, a JSON value, ready to go inside another."""
        return sql if self.postgres or sql == "NULL" else f"json({sql})"

    def parse(self, sql: str) -> str:
        """`sql`, JSON text, as a JSON value."""
        return f"CAST({sql} AS jsonb)" if self.postgres else f"json({sql})"

    def label(self, sql: str) -> str:
        """A text value (not JSON) inside built JSON."""
        return f"CAST({sql} AS text)"

    def _value(self, sql: str) -> str:
        return sql if sql.startswith("CAST(") and sql.endswith(" AS text)") else self.j(sql)

    def obj(self, *pairs: tuple[str, str]) -> str:
        body = ", ".join(f"'{k}', {self._value(v)}" for k, v in pairs)
        return f"jsonb_build_object({body})" if self.postgres else f"json_object({body})"

    def array(self, *items: str) -> str:
        body = ", ".join(self._value(v) for v in items)
        return f"jsonb_build_array({body})" if self.postgres else f"json_array({body})"

    def literal(self, text: str) -> str:
        """A constant JSON value, such as `true` or `[]`."""
        return f"CAST('{text}' AS jsonb)" if self.postgres else f"json('{text}')"

    def set_field(self, document: str, value: str) -> str:
        if self.postgres:
            return f"jsonb_set({document}, ARRAY[CAST(:f AS text)], {value})"
        return f"json_set({document}, :path, {self.j(value)})"

    def remove_field(self, document: str) -> str:
        if self.postgres:
            return f"({document} - CAST(:f AS text))"
        return f"json_remove({document}, :path)"

    def append(self, array: str) -> str:
        """`array` (a JSON array) with :tag on its end."""
        if self.postgres:
            return f"({array} || to_jsonb(CAST(:tag AS text)))"
        return f"json_insert({array}, '$[#]', CAST(:tag AS text))"

    def has_tag(self, array: str) -> str:
        if self.postgres:
            return f"({array} ? CAST(:tag AS text))"
        return (
            f"EXISTS (SELECT 1 FROM json_each({array}) AS e "
            "WHERE e.type = 'text' AND e.value = :tag)"
        )

    def tag_count(self, array: str) -> str:
        return (
            f"(SELECT count(*) FROM json_each({array}) AS e "
            "WHERE e.type = 'text' AND e.value = :tag)"
        )

    def without_tag(self, array: str) -> str:
        """`array` without :tag. On SQLite only where the tag is there once (`plain` says
        so): its one index is removed."""
        if self.postgres:
            return f"({array} - CAST(:tag AS text))"
        index = (
            f"(SELECT e.key FROM json_each({array}) AS e WHERE e.type = 'text' AND e.value = :tag)"
        )
        return f"json_remove({array}, '$[' || {index} || ']')"

    def _steps(self, path: str) -> str:
        return "ARRAY[" + ", ".join(f"'{p}'" for p in path.split(".")) + "]"

    def note(self, path: str) -> str:
        """The undo note's value at `path` (JSON; NULL when absent)."""
        return f"(i.undo #> {self._steps(path)})" if self.postgres else f"(i.undo -> '$.{path}')"

    def note_kind(self, path: str) -> str:
        if self.postgres:
            return f"jsonb_typeof(i.undo #> {self._steps(path)})"
        return f"json_type(i.undo, '$.{path}')"

    def note_text(self, path: str) -> str:
        if self.postgres:
            return f"(i.undo #>> {self._steps(path)})"
        return f"json_extract(i.undo, '$.{path}')"

    def note_is(self, path: str, flag: bool) -> str:
        word = "true" if flag else "false"
        if self.postgres:
            return f"(i.undo #> {self._steps(path)}) = CAST('{word}' AS jsonb)"
        return f"json_type(i.undo, '$.{path}') = '{word}'"


def _entry(d: _Dialect, verb: str, prev: str, value: str) -> str:
    """One clean_diff entry (keys in clean_diff's order)."""
    return d.obj(
        ("field", d.label(":f")), ("prev", prev), ("value", value), ("verb", d.label(f"'{verb}'"))
    )


def _top_level(path: str) -> bool:
    return _TOP_LEVEL.match(path) is not None


def _reads_nothing_derived(path: str, schemas: dict[str, TypeSchema]) -> bool:
    return all(path not in derived_from(schema) for schema in schemas.values())


def _base(path: str, tag: Any = None) -> dict[str, Any]:
    return {"f": path, "path": f'$."{path}"', "tag": tag}


def _tag_plan(d: _Dialect, path: str, tag: str, adding: bool) -> Plan:
    p, kind = d.value(), d.kind()
    is_list = f"COALESCE({kind}, '') = 'array'"  # never NULL, so NOT has is true or false
    has = f"({is_list} AND COALESCE({d.has_tag(p)}, FALSE))"
    # Tags absent, null or a list; anything else fails on the per-record path.
    plain = f"r.record_state = 'active' AND ({kind} IS NULL OR {kind} IN ('array', 'null'))"
    note = d.obj(
        ("changed", d.literal("true")), ("field", d.label(":f")), ("tag", d.label(":tag")),
        ("added", d.literal("true" if adding else "false")),
    )  # fmt: skip
    unchanged = d.literal('{"changed":false}')
    changed = f"NOT {has}" if adding else has
    undo = f"CASE WHEN {changed} THEN {note} ELSE {unchanged} END"
    if adding:
        new_value = (
            f"CASE WHEN {is_list} THEN {d.j(d.append(p))} ELSE {d.array(d.label(':tag'))} END"
        )
        verb = d.label(f"CASE WHEN {kind} IS NULL THEN 'add' ELSE 'change' END")
        diff = d.array(
            d.obj(("field", d.label(":f")), ("prev", p), ("value", new_value), ("verb", verb))
        )
        return Plan(plain=plain, changed=f"NOT {has}", new_data=d.set_field("r.data", new_value),
                    diff=diff, undo=undo, params=_base(path, tag))  # fmt: skip
    if not d.postgres:  # a tag twice in the list: the per-record path
        plain += f" AND NOT ({is_list} AND {d.tag_count(p)} > 1)"
    new_value = d.without_tag(p)
    return Plan(plain=plain, changed=has, new_data=d.set_field("r.data", new_value),
                diff=d.array(_entry(d, "change", p, new_value)), undo=undo,
                params=_base(path, tag))  # fmt: skip


def _set_plan(d: _Dialect, path: str, value: Any) -> Plan | None:
    p, kind = d.value(), d.kind()
    numeric = isinstance(value, bool | int | float)
    if not (value is None or isinstance(value, str) or numeric):
        return None  # a list or an object: clean_diff flattens it; the per-record path
    plain = f"r.record_state = 'active' AND ({kind} IS NULL OR {kind} <> 'object')"
    if numeric:  # Python's 1 == 1.0 == True: the per-record path compares those
        numbers = d.types("integer", "real", "true", "false")
        plain += f" AND ({kind} IS NULL OR {kind} NOT IN {numbers})"
    had = f"CASE WHEN {kind} IS NULL THEN {d.literal('false')} ELSE {d.literal('true')} END"
    note = d.obj(
        ("changed", d.literal("true")),
        ("set", d.obj(
            ("field", d.label(":f")), ("had", had), ("prev", f"COALESCE({p}, {d.literal('null')})")
        )),
    )  # fmt: skip
    params = {**_base(path), "value": None if value is None else dumps(value), "text": value}
    if value is None:
        diff = (
            f"CASE WHEN {kind} IS NULL THEN {d.literal('[]')} "
            f"ELSE {d.array(_entry(d, 'drop', p, 'NULL'))} END"
        )
        new_data = d.remove_field("r.data")
    else:
        new_value = d.parse(":value")
        same = (
            f"WHEN {d.is_text(kind)} AND {d.text()} = :text THEN {d.literal('[]')} "
            if isinstance(value, str)
            else ""
        )
        diff = (
            f"CASE WHEN {kind} IS NULL THEN {d.array(_entry(d, 'add', 'NULL', new_value))} "
            f"{same}ELSE {d.array(_entry(d, 'change', p, new_value))} END"
        )
        new_data = d.set_field("r.data", new_value)
    return Plan(plain=plain, changed="1 = 1", new_data=new_data, diff=diff, undo=note,
                params=params)  # fmt: skip


def _undo_tag_plan(d: _Dialect, path: str, tag: str, added: bool) -> Plan:
    """Reverting add_tag (the tag comes off) or remove_tag (it goes back on the end)."""
    p, kind = d.value(), d.kind()
    plain = (
        f"{d.note_text('field')} = :f AND {d.note_text('tag')} = :tag "
        f"AND {d.note_is('added', added)} AND {kind} = 'array'"
    )
    if added:
        plain += f" AND {d.tag_count(p)} = 1" if not d.postgres else f" AND {d.has_tag(p)}"
        new_value = d.without_tag(p)
    else:
        new_value = d.append(p)
    return Plan(plain=plain, changed="1 = 1", new_data=d.set_field("r.data", new_value),
                diff=d.array(_entry(d, "change", p, new_value)), undo=None,
                params=_base(path, tag), from_chunks=False)  # fmt: skip


def _undo_set_plan(d: _Dialect, path: str) -> Plan:
    """Reverting set-single-field: the value it replaced back (a text, or none)."""
    p, kind = d.value(), d.kind()
    prev, prev_kind = d.note("set.prev"), d.note_kind("set.prev")
    had = d.note_is("set.had", True)
    removal = f"(NOT ({had}) OR {prev_kind} = 'null')"
    text_back = f"({had} AND {d.is_text(prev_kind)})"
    plain = (
        f"{d.note_text('set.field')} = :f AND {d.note_kind('record')} IS NULL "
        f"AND ({kind} IS NULL OR {kind} <> 'object') AND ({removal} OR {text_back})"
    )
    diff = (
        f"CASE WHEN {removal} THEN (CASE WHEN {kind} IS NULL THEN {d.literal('[]')} "
        f"ELSE {d.array(_entry(d, 'drop', p, 'NULL'))} END) "
        f"WHEN {kind} IS NULL THEN {d.array(_entry(d, 'add', 'NULL', prev))} "
        f"WHEN {d.is_text(kind)} AND {d.text()} = {d.note_text('set.prev')} "
        f"THEN {d.literal('[]')} "
        f"ELSE {d.array(_entry(d, 'change', p, prev))} END"
    )
    new_data = (
        f"CASE WHEN {removal} THEN {d.remove_field('r.data')} "
        f"ELSE {d.set_field('r.data', prev)} END"
    )
    return Plan(plain=plain, changed="1 = 1", new_data=new_data, diff=diff, undo=None,
                params=_base(path), from_chunks=False)  # fmt: skip


def plan_for(
    dialect: str,
    action: str,
    params: dict[str, Any],
    schemas: dict[str, TypeSchema],
    *,
    undoing: tuple[str, dict[str, Any]] | None = None,
) -> Plan | None:
    """The set-based plan for a batch of `action` (for `undo`: of the job it undoes,
    `undoing` = its action and params), or None when the per-record path must do it."""
    d = _Dialect(dialect)
    undo = action == "undo"
    if undo:
        if undoing is None:
            return None
        action, params = undoing
    path = params.get("field")
    if action not in SETWISE_ACTIONS or not isinstance(path, str) or not _top_level(path):
        return None
    if not _reads_nothing_derived(path, schemas):
        return None
    tag = params.get("value")
    if action in ("add_tag", "remove_tag"):
        if not isinstance(tag, str):
            return None
        adding = action == "add_tag"
        return _undo_tag_plan(d, path, tag, adding) if undo else _tag_plan(d, path, tag, adding)
    return _undo_set_plan(d, path) if undo else _set_plan(d, path, params.get("value"))


_JOIN = (
    "r.bucket = i.bucket AND r.resource_type = i.resource_type AND r.uid = i.record_uid "
    "AND i.bucket = :bucket AND i.job_uid = :job AND i.seq BETWEEN :lo AND :hi"
)
# The batch's items for `run_batch`: pending job items joined to their records.
_FROM_ITEMS = f"FROM job_items AS i JOIN records AS r ON {_JOIN} WHERE i.state = 'pending'"
# ... for `run_chunk`: the chunk's uids (`_CHUNK_SOURCE`) joined to their records.
_FROM_CHUNK = (
    "JOIN records AS r ON r.bucket = :bucket AND r.resource_type = :type "
    "AND r.uid = i.record_uid WHERE 1 = 1"
)

_SQLITE_BATCH = "temp.fold_setwise_batch"
_SQLITE_CHUNK = "temp.fold_setwise_chunk"

CHUNK_FACTOR = 25
MAX_CHUNK = 5_000


def chunk_size(batch_size: int) -> int:
    """Records per frozen chunk, for a job of `batch_size`: a job whose batches are all
    set-based freezes its record set as one `job_items` row per chunk (`state` 'frozen'),
    and each batch does one chunk. A record costs the set-based statements a small part
    of what it costs the per-record action, so a chunk of CHUNK_FACTOR times the batch
    size is a transaction about as short; fewer, larger batches spend less on each
    batch's fixed work (the lease, the clock, planning, the commit). At most MAX_CHUNK:
    beyond it SQLite's temporary tables of the batch outgrow their cache and each record
    costs more (measured: 20,000 a third slower than 5,000)."""
    return max(1, min(MAX_CHUNK, batch_size * CHUNK_FACTOR))


def _chunk_uids(postgres: bool) -> str:
    """The uids of the chunk row `:chunk`, each with its item's seq: the chunk's first
    plus its place in the chunk. The freeze writes a chunk's uids in uid order; SQLite
    (whose grouping does not promise to keep that order) numbers them by it again."""
    if postgres:
        return (
            "SELECT CAST(:first AS integer) + CAST(e.k AS integer) - 1 AS seq, "
            "e.value AS record_uid FROM job_items AS j, "
            "jsonb_array_elements_text(j.undo -> 'uids') WITH ORDINALITY AS e(value, k) "
            "WHERE j.bucket = :bucket AND j.job_uid = :job AND j.seq = :chunk"
        )
    return (
        "SELECT :first + row_number() OVER (ORDER BY e.value) - 1 AS seq, "
        "e.value AS record_uid FROM job_items AS j, json_each(j.undo, '$.uids') AS e "
        "WHERE j.bucket = :bucket AND j.job_uid = :job AND j.seq = :chunk"
    )


def _sqlite_statements(plan: Plan, chunk: bool = False) -> list[str]:
    """SQLite (no data-modifying CTEs): the batch's plain items worked out once into a
    temporary table of this connection, then audit entries, records and items each
    written once from it. The statement that fills the table is the third."""
    note = "NULL" if plan.undo is None else f"json({plan.undo})"
    counter = "printf('%06x', (:first_uid + row_number() OVER (ORDER BY b.seq) - 1) % 16777216)"
    # CROSS JOIN: SQLite reads the chunk's uids first and each record by its key.
    source = f"FROM {_SQLITE_CHUNK} AS i CROSS {_FROM_CHUNK}" if chunk else _FROM_ITEMS
    kind = ":type" if chunk else "i.resource_type"
    work = [
        f"CREATE TABLE IF NOT EXISTS {_SQLITE_BATCH} (seq INTEGER PRIMARY KEY, "
        "resource_type TEXT, record_uid TEXT, changed INTEGER, new_data TEXT, diff TEXT, "
        "note TEXT)",
        f"DELETE FROM {_SQLITE_BATCH}",
        f"INSERT INTO {_SQLITE_BATCH} SELECT i.seq, {kind}, i.record_uid, "
        f"({plan.changed}), CASE WHEN {plan.changed} THEN {plan.new_data} END, "
        f"CASE WHEN {plan.changed} THEN json({plan.diff}) END, {note} "
        f"{source} AND {plan.plain}",
        "INSERT INTO audit_entries "
        "(bucket, uid, date, resource_type, record_uid, user_uri, message, diff) "
        f"SELECT :bucket, :prefix || {counter}, :now, b.resource_type, b.record_uid, "
        f":user, :message, b.diff FROM {_SQLITE_BATCH} AS b WHERE b.changed",
        f"UPDATE records AS r SET data = b.new_data, version = :version, last_updated = :now "
        f"FROM {_SQLITE_BATCH} AS b WHERE r.bucket = :bucket "
        "AND r.resource_type = b.resource_type AND r.uid = b.record_uid AND b.changed",
    ]
    if not chunk:
        return [
            *work,
            f"UPDATE job_items AS i SET state = 'done', undo = b.note FROM {_SQLITE_BATCH} AS b "
            "WHERE i.bucket = :bucket AND i.job_uid = :job AND i.seq = b.seq",
        ]
    return [
        f"CREATE TABLE IF NOT EXISTS {_SQLITE_CHUNK} (seq INTEGER PRIMARY KEY, record_uid TEXT)",
        f"DELETE FROM {_SQLITE_CHUNK}",
        f"INSERT INTO {_SQLITE_CHUNK} {_chunk_uids(False)}",
        *work,
        # Every record of the chunk becomes an item: done, or pending for the per-record
        # action; the chunk goes.
        "INSERT INTO job_items (bucket, job_uid, seq, state, resource_type, record_uid, undo) "
        "SELECT :bucket, :job, c.seq, CASE WHEN b.seq IS NULL THEN 'pending' ELSE 'done' END, "
        f":type, c.record_uid, b.note FROM {_SQLITE_CHUNK} AS c "
        f"LEFT JOIN {_SQLITE_BATCH} AS b ON b.seq = c.seq",
        _DROP_CHUNK,
    ]


_DROP_CHUNK = (
    "DELETE FROM job_items WHERE bucket = :bucket AND job_uid = :job AND seq = :chunk "
    "AND state = 'frozen'"
)


def _one_statement(plan: Plan, chunk: bool = False) -> str:
    """PostgreSQL: the four steps as one statement of data-modifying CTEs. They all read
    the snapshot it starts with, so the batch's items and records are each written once
    instead of marked and rewritten. Its first step locks the records it will write until
    the batch commits (after the clock, as every writer does), reading the newest version
    of any changed meanwhile."""
    undo = "CAST(NULL AS jsonb)" if plan.undo is None else plan.undo
    counter = (
        "lpad(to_hex(CAST(mod(:first_uid + row_number() OVER (ORDER BY b.seq) - 1, 16777216) "
        "AS integer)), 6, '0')"
    )
    source = f"FROM c AS i {_FROM_CHUNK}" if chunk else _FROM_ITEMS
    kind = "CAST(:type AS text)" if chunk else "i.resource_type"
    if chunk:
        items = (
            "done AS (INSERT INTO job_items "
            "(bucket, job_uid, seq, state, resource_type, record_uid, undo) "
            "SELECT CAST(:bucket AS text), CAST(:job AS text), c.seq, "
            "CASE WHEN b.seq IS NULL THEN 'pending' ELSE 'done' END, CAST(:type AS text), "
            "c.record_uid, b.note FROM c LEFT JOIN b ON b.seq = c.seq), "
            f"gone AS ({_DROP_CHUNK}) "
        )
    else:
        items = (
            "done AS (UPDATE job_items AS i SET state = 'done', undo = b.note FROM b "
            "WHERE i.bucket = :bucket AND i.job_uid = :job AND i.seq = b.seq) "
        )
    return (
        "WITH "
        + (f"c AS ({_chunk_uids(True)}), " if chunk else "")
        + f"b AS (SELECT i.seq, {kind} AS resource_type, i.record_uid, "
        f"({plan.changed}) AS changed, CASE WHEN {plan.changed} THEN {plan.new_data} END "
        f"AS new_data, CASE WHEN {plan.changed} THEN {plan.diff} END AS diff, "
        f"{undo} AS note {source} AND {plan.plain} FOR UPDATE OF r), "
        "audit AS (INSERT INTO audit_entries "
        "(bucket, uid, date, resource_type, record_uid, user_uri, message, diff) "
        f"SELECT CAST(:bucket AS text), CAST(:prefix AS text) || {counter}, "
        "CAST(:now AS timestamp), b.resource_type, b.record_uid, CAST(:user AS text), "
        "CAST(:message AS text), b.diff FROM b WHERE b.changed), "
        "written AS (UPDATE records AS r SET data = b.new_data, version = :version, "
        "last_updated = :now FROM b WHERE r.bucket = :bucket "
        "AND r.resource_type = b.resource_type AND r.uid = b.record_uid AND b.changed), "
        + items
        + "SELECT count(*) FROM b"
    )


def _params(
    plan: Plan, postgres: bool, *, bucket: str, job_uid: str, size: int, version: int,
    now: datetime, user_uri: str, message: str,
) -> dict[str, Any]:  # fmt: skip
    prefix, first_uid = uid_block(size)
    return {
        **plan.params, "bucket": bucket, "job": job_uid, "version": version,
        "now": now if postgres else now.strftime(SQLITE_DATETIME), "user": user_uri,
        "message": message, "prefix": prefix, "first_uid": first_uid,
    }  # fmt: skip


def _execute(session: Session, plan: Plan, params: dict[str, Any], chunk: bool) -> int:
    """The batch's statements; answers how many items the set-based path did."""
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    raw: Any = connection.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        if postgres:
            cursor.execute(_driver(_one_statement(plan, chunk), True), params)
            return int(cursor.fetchone()[0])
        done = 0
        for sql in _sqlite_statements(plan, chunk):
            cursor.execute(sql, params)
            if sql.startswith(f"INSERT INTO {_SQLITE_BATCH} "):
                done = cursor.rowcount
        return int(done)
    finally:
        cursor.close()


def run_batch(
    session: Session,
    plan: Plan,
    *,
    bucket: str,
    job_uid: str,
    lo: int,
    hi: int,
    version: int,
    now: datetime,
    user_uri: str,
    message: str,
) -> int:
    """Do the plain items of the batch seq lo..hi (still pending) and answer how many;
    the rest stay pending. The caller has stamped the clock (`version`)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    params = _params(
        plan, postgres, bucket=bucket, job_uid=job_uid, size=hi - lo + 1, version=version,
        now=now, user_uri=user_uri, message=message,
    )  # fmt: skip
    return _execute(session, plan, {**params, "lo": lo, "hi": hi}, chunk=False)


@dataclass(frozen=True)
class Chunk:
    """A frozen chunk of a job's record set: its row's seq, the records' type, the seq of
    its first record and how many it holds (seqs first .. first + count - 1)."""

    seq: int
    resource_type: str
    first: int
    count: int


def next_chunk(session: Session, *, bucket: str, job_uid: str) -> Chunk | None:
    """The job's next frozen chunk (in uid order: chunk rows have seq -1, -2, ...)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    first, count = (
        ("CAST(undo ->> 'first' AS integer)", "jsonb_array_length(undo -> 'uids')")
        if postgres
        else ("json_extract(undo, '$.first')", "json_array_length(undo, '$.uids')")
    )
    row = session.execute(
        text(
            f"SELECT seq, resource_type, {first}, {count} FROM job_items "
            "WHERE bucket = :bucket AND job_uid = :job AND state = 'frozen' "
            "ORDER BY seq DESC LIMIT 1"
        ),
        {"bucket": bucket, "job": job_uid},
    ).first()
    return None if row is None else Chunk(int(row[0]), str(row[1]), int(row[2]), int(row[3]))


def run_chunk(
    session: Session,
    plan: Plan,
    chunk: Chunk,
    *,
    bucket: str,
    job_uid: str,
    version: int,
    now: datetime,
    user_uri: str,
    message: str,
) -> int:
    """Do the chunk's plain records (as `run_batch` does pending items) and answer how
    many: each becomes a `done` item with its undo note; the others become `pending`
    items (seq chunk.first .. chunk.first + chunk.count - 1) for the per-record action,
    and the chunk row goes. The caller has stamped the clock (`version`)."""
    assert plan.from_chunks
    postgres = session.get_bind().dialect.name == "postgresql"
    params = _params(
        plan, postgres, bucket=bucket, job_uid=job_uid, size=chunk.count, version=version,
        now=now, user_uri=user_uri, message=message,
    )  # fmt: skip
    where = {"chunk": chunk.seq, "first": chunk.first, "type": chunk.resource_type}
    return _execute(session, plan, {**params, **where}, chunk=True)


def expand_chunk(session: Session, chunk: Chunk, *, bucket: str, job_uid: str) -> None:
    """The chunk as one pending item per record (for the per-record action), in place of
    its row."""
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    params = {"bucket": bucket, "job": job_uid, "chunk": chunk.seq, "first": chunk.first,
              "type": chunk.resource_type}  # fmt: skip
    raw: Any = connection.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        for sql in (
            "INSERT INTO job_items (bucket, job_uid, seq, state, resource_type, record_uid) "
            f"SELECT :bucket, :job, c.seq, 'pending', :type, c.record_uid "
            f"FROM ({_chunk_uids(postgres)}) AS c",
            _DROP_CHUNK,
        ):
            cursor.execute(_driver(sql, postgres), params)
    finally:
        cursor.close()


_NAMED = re.compile(r"'[^']*'|(?<![:\w]):(\w+)")


def _driver(sql: str, postgres: bool) -> str:
    """`:name` parameters as the driver spells them (psycopg: `%(name)s`), string
    literals left as they are."""
    if not postgres:
        return sql
    return _NAMED.sub(lambda m: m.group(0) if m.group(1) is None else f"%({m.group(1)})s", sql)
