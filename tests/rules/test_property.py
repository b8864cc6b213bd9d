"""Property tests: for random records and random rule sets over every operator and field
type, the SQL answer on this database and the Python twin agree record for record. The
`database` fixture runs this on SQLite and on PostgreSQL, so all three agree."""

from __future__ import annotations

import itertools
import os
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from fold.buckets.service import ensure_bucket
from fold.columns import index, vector
from fold.db.engine import unit_of_work
from fold.db.models import Record, SegmentUri
from fold.fields.service import add_custom_field, schema_for
from fold.records.bulk import import_rows
from fold.records.service import record_out
from fold.rules.compile import normalise, rules_filter
from fold.rules.context import Context, SegmentDef
from fold.rules.python import matches
from fold.rules.sql import to_sql
from tests.conftest import Database

NOW = datetime(2026, 6, 15, 12, 0)
_buckets = itertools.count()

# Small alphabets make collisions (equal values, shared prefixes, case twins) likely.
TEXT = st.text(alphabet="aAbB é%_É1 ", max_size=4)
NUMBER = st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.25, 2.0, 2.5, 1e6]))
DATE = st.dates(min_value=datetime(2026, 1, 1).date(), max_value=datetime(2026, 12, 31).date()).map(
    lambda d: d.isoformat()
)
DATETIME = st.datetimes(min_value=datetime(2026, 5, 1), max_value=datetime(2026, 7, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f")
)
SCALAR = st.one_of(TEXT, NUMBER, st.booleans())
ANYTHING = st.one_of(
    st.none(), SCALAR, st.lists(SCALAR, max_size=3), st.fixed_dictionaries({"k": SCALAR})
)
GEO = st.fixed_dictionaries({"lat": st.floats(51.3, 51.7), "lng": st.floats(-0.4, 0.2)})

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "first_name": TEXT,
    "address.locality": TEXT,
    "score": NUMBER,
    "email_opt_out": st.booleans(),
    "date_of_birth": DATE,
    "mailchimp_last_sync": DATETIME,
    "tags": st.lists(TEXT, max_size=3),
    "geo": GEO,
    "extras.code": ANYTHING,
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for path, strategy in FIELDS.items():
        if draw(st.booleans()):
            record[path] = draw(strategy)
    return record


VALUE_FOR = {
    "first_name": TEXT,
    "address.locality": TEXT,
    "score": NUMBER,
    "email_opt_out": st.booleans(),
    "date_of_birth": st.one_of(DATE, st.sampled_from(["today", "today-30d", "today+2m", "now-1y"])),
    "mailchimp_last_sync": st.one_of(DATETIME, st.sampled_from(["now", "today-1wk", "now+3d"])),
    "tags": TEXT,
    "extras.code": SCALAR,
    "display_value": TEXT,
}
OPERATORS = [
    "equals", "exact", "not_equal_to", "greater_than", "greater_than_or_equals", "less_than",
    "less_than_or_equals", "starts_with", "starts_with_case_insensitive", "ends_with", "or_list",
    "and_list", "none_of",
]  # fmt: skip


@st.composite
def simple_rule(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(sorted(VALUE_FOR)))
    operator = draw(st.sampled_from(OPERATORS))
    if operator in ("or_list", "and_list", "none_of"):
        value: Any = draw(st.lists(VALUE_FOR[field], min_size=1, max_size=3))
    else:
        value = draw(VALUE_FOR[field])
    return {"field": field, "operator": operator, "value": value}


@st.composite
def near_rule(draw: st.DrawFn) -> dict[str, Any]:
    lat, lng = draw(st.floats(51.3, 51.7)), draw(st.floats(-0.4, 0.2))
    distance = draw(st.sampled_from(["1", "5", "12", "3mi", "20km"]))
    return {"field": "geo", "operator": "near", "value": f"{lat},{lng},{distance}"}


RAW_FIELDS = st.sampled_from(["first_name", "tags", "score", "extras.code", "email_opt_out"])


def raw_condition() -> st.SearchStrategy[Any]:
    ops = st.one_of(
        st.builds(lambda v: {"$eq": v}, SCALAR),
        st.builds(lambda v: {"$ne": v}, SCALAR),
        st.builds(
            lambda o, v: {o: v},
            st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
            st.one_of(TEXT, NUMBER),
        ),
        st.builds(lambda v: {"$in": v}, st.lists(SCALAR, min_size=1, max_size=3)),
        st.builds(lambda v: {"$nin": v}, st.lists(SCALAR, min_size=1, max_size=3)),
        st.builds(lambda v: {"$all": v}, st.lists(TEXT, min_size=1, max_size=2)),
        st.builds(lambda v: {"$exists": v}, st.booleans()),
        st.builds(lambda v: {"$size": v}, st.integers(0, 3)),
        st.builds(
            lambda p, i: {"$regex": p, "$options": "i"} if i else {"$regex": p},
            st.sampled_from(["^a", "b$", "a.b", "[ab]+", "^(a|b)", "1", "é"]),
            st.booleans(),
        ),
        st.builds(lambda v: {"$not": {"$eq": v}}, SCALAR),
    )
    return st.one_of(ops, SCALAR)


def raw_document() -> st.SearchStrategy[Any]:
    leaf = st.dictionaries(RAW_FIELDS, raw_condition(), min_size=1, max_size=2)
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.builds(lambda xs: {"$and": xs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda xs: {"$or": xs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda xs: {"$nor": xs}, st.lists(children, min_size=1, max_size=2)),
            st.builds(lambda x: {"$not": x}, children),
        ),
        max_leaves=5,
    )


RULE = st.one_of(
    simple_rule(),
    simple_rule(),
    simple_rule(),
    near_rule(),
    st.builds(lambda d: {"field": "", "operator": "raw", "value": d}, raw_document()),
)


def load(
    db: Database, rows: list[dict[str, Any]], *, warm: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """A new bucket holding `rows`. `warm`: the column index reads the empty bucket first,
    so the rows reach it as changes (the path every later write takes)."""
    bucket = f"prop-{db.name[:2]}-{next(_buckets)}"
    with unit_of_work(db.sessions) as session:
        ensure_bucket(session, bucket)
        add_custom_field(
            session,
            bucket=bucket,
            resource_type="person",
            body={"field": "score", "type": "number"},
        )
    if warm:
        every_path = {"or": [{"exists": p} for p in [*FIELDS, "geo.lat", "geo.lng", "extras"]]}
        assert in_columns(db, bucket, every_path, vector.VECTOR_MIN) == set()
    with unit_of_work(db.sessions) as session:
        schema = schema_for(session, bucket=bucket, resource_type="person")
        result = import_rows(
            session,
            bucket=bucket,
            user_uri="/test/",
            schema=schema,
            rows=list(enumerate(rows, start=1)),
        )
        assert result.failed == 0, result.errors
        stored = session.scalars(
            select(Record).where(Record.bucket == bucket).order_by(Record.uid)
        ).all()
        # A static segment listing every third record, leaving out the first of them.
        for kind, uids in lists_of([r.uid for r in stored]).items():
            for position, uid in enumerate(uids):
                session.add(
                    SegmentUri(
                        bucket=bucket,
                        segment_uid=LISTED,
                        kind=kind,
                        record_uid=uid,
                        position=position,
                    )
                )
        return bucket, [record_out(r) for r in stored]


LISTED = "e" * 24


def lists_of(uids: list[str]) -> dict[str, list[str]]:
    return {"include": uids[::3], "exclude": uids[:1]}


def listed_segment(uid: str) -> SegmentDef | None:
    return SegmentDef(uid, "person", "static", [], name="Listed") if uid == LISTED else None


@st.composite
def system_rule(draw: st.DrawFn, stored: list[dict[str, Any]]) -> dict[str, Any]:
    """A rule on Fold's own fields (values taken from the records, or near them) or on
    membership of a static segment."""
    field = draw(
        st.sampled_from(["uid", "uri", "created", "last_updated", "display_value", "segment"])
    )
    if field == "segment":
        operator = draw(st.sampled_from(["or_list", "and_list", "none_of", "equals"]))
        bucket = stored[0]["uri"].split("/")[1]
        return {"field": "segment", "operator": operator, "value": [f"/{bucket}/segment/{LISTED}/"]}
    record = draw(st.sampled_from(stored))
    if field in ("uid", "uri"):
        operator = draw(st.sampled_from(["equals", "exact", "not_equal_to", "or_list", "none_of"]))
        if operator in ("or_list", "none_of"):
            picked = draw(st.lists(st.sampled_from(stored), min_size=1, max_size=3))
            return {"field": field, "operator": operator, "value": [r[field] for r in picked]}
        return {"field": field, "operator": operator, "value": record[field]}
    operators = [o for o in OPERATORS if o not in ("and_list", "starts_with_case_insensitive")]
    operator = draw(st.sampled_from(operators))
    if field in ("created", "last_updated"):
        operator = draw(
            st.sampled_from(
                [
                    "equals",
                    "not_equal_to",
                    "greater_than",
                    "greater_than_or_equals",
                    "less_than",
                    "less_than_or_equals",
                    "or_list",
                    "none_of",
                ]
            )
        )
        value: Any = draw(
            st.one_of(
                st.just(record[field]), st.sampled_from(["now", "today-1d", "2026-06-15T12:00:00"])
            )
        )
        if operator in ("or_list", "none_of"):
            value = [value, draw(st.sampled_from(stored))[field]]
        return {"field": field, "operator": operator, "value": value}
    value = draw(st.one_of(st.just(record["display_value"]), TEXT))
    if operator in ("or_list", "none_of"):
        value = [value]
    return {"field": field, "operator": operator, "value": value}


def agree(
    db: Database, bucket: str, stored: list[dict[str, Any]], rules: list[dict[str, Any]]
) -> None:
    with unit_of_work(db.sessions) as session:
        schema = schema_for(session, bucket=bucket, resource_type="person")
        ctx = Context(
            bucket=bucket,
            resource_type="person",
            schema=schema,
            now=NOW,
            segment=listed_segment,
        )
        normalised, problems = normalise(rules, ctx)
        assume(not problems)
        node = rules_filter(normalised, ctx)
        in_sql = set(
            session.scalars(
                select(Record.uid).where(Record.bucket == bucket, to_sql(node, bucket=bucket))
            ).all()
        )
    lists = lists_of(sorted(r["uid"] for r in stored))
    in_python = {
        r["uid"]
        for r in stored
        if matches(node, r, lambda s, k: set(lists[k]) if s == LISTED else set())
    }
    assert in_sql == in_python, (normalised, node)
    # The column index, testing entries one by one and vectorised, gives the same records.
    for smallest in (vector.VECTOR_MIN, 0):
        assert in_columns(db, bucket, node, smallest, lists) == in_sql, (smallest, normalised)


def in_columns(
    db: Database,
    bucket: str,
    node: dict[str, Any],
    smallest: int,
    lists: dict[str, list[str]] | None = None,
) -> set[str]:
    def listed(segment: str, kind: str) -> list[str]:
        return (lists or {}).get(kind, []) if segment == LISTED else []

    saved = vector.VECTOR_MIN
    vector.VECTOR_MIN = smallest
    try:
        with (
            unit_of_work(db.sessions) as session,
            index.matching(
                session, bucket=bucket, stored=("person",), node=node, q=None, lists=listed
            ) as found,
        ):
            assert found is not None
            return {found.store.uids[i] for i in found.mask.nonzero()[0].tolist()}
    finally:
        vector.VECTOR_MIN = saved


def no_lists(segment: str, kind: str) -> list[str]:
    return []


# FOLD_PROPERTY_EXAMPLES raises the search for a long run; CI keeps the default.
EXAMPLES = int(os.environ.get("FOLD_PROPERTY_EXAMPLES", "60"))
PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROFILE
@given(
    rows=st.lists(records(), min_size=1, max_size=12),
    rules=st.lists(RULE, min_size=1, max_size=3),
    data=st.data(),
)
def test_random_records_and_rules_agree(
    database: Database, rows: list[dict[str, Any]], rules: list[dict[str, Any]], data: Any
) -> None:
    bucket, stored = load(database, rows, warm=True)
    extra = data.draw(st.lists(system_rule(stored), max_size=2))
    agree(database, bucket, stored, rules + extra)


class TestFixedData:
    """Many rule sets against one larger random bucket per database."""

    data: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    def bucket(self, database: Database) -> tuple[str, list[dict[str, Any]]]:
        if database.name not in self.data:
            import random

            rng = random.Random(11)
            rows = [_random_record(rng) for _ in range(300)]
            self.data[database.name] = load(database, rows)
        return self.data[database.name]

    @settings(
        max_examples=EXAMPLES * 3, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(rules=st.lists(RULE, min_size=1, max_size=4), data=st.data())
    def test_rules_agree(self, database: Database, rules: list[dict[str, Any]], data: Any) -> None:
        bucket, stored = self.bucket(database)
        extra = data.draw(st.lists(system_rule(stored), max_size=2))
        agree(database, bucket, stored, rules + extra)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_system_fields_and_lists_agree(self, database: Database, data: Any) -> None:
        bucket, stored = self.bucket(database)
        rules = data.draw(st.lists(system_rule(stored), min_size=1, max_size=2))
        agree(database, bucket, stored, rules)


def _random_record(rng: Any) -> dict[str, Any]:
    letters = "aAbB é%_É1 "

    def text() -> str:
        return "".join(rng.choice(letters) for _ in range(rng.randrange(5)))

    def scalar() -> Any:
        return rng.choice([text(), rng.choice([-1.5, 0, 1, 2, 2.5, 3]), rng.random() < 0.5])

    record: dict[str, Any] = {}
    makers = {
        "first_name": text,
        "address.locality": text,
        "score": lambda: rng.choice([-1.5, 0, 1, 2, 2.5, 3, 1e6]),
        "email_opt_out": lambda: rng.random() < 0.5,
        "date_of_birth": lambda: f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        "mailchimp_last_sync": lambda: (
            f"2026-06-{rng.randrange(1, 30):02d}T{rng.randrange(24):02d}:00:00.000000"
        ),
        "tags": lambda: [text() for _ in range(rng.randrange(4))],
        "geo": lambda: {"lat": 51.3 + rng.random() * 0.4, "lng": -0.4 + rng.random() * 0.6},
        "extras.code": lambda: rng.choice([None, scalar(), [scalar(), scalar()], {"k": scalar()}]),
    }
    for path, make in makers.items():
        if rng.random() < 0.7:
            record[path] = make()
    return record
