"""Property tests for related-record rules: random organisations, people, payments and
memberships linked at random, random rules on people (and on organisations, through their
people) with every quantifier and aggregate; the SQL of this database, the Python twin
given each record's related records, and the column index agree record for record. The
`database` fixture runs this on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from fold.buckets.service import ensure_bucket
from fold.columns import index, vector
from fold.db.engine import unit_of_work
from fold.db.models import Record, SegmentUri
from fold.fields.service import schema_for
from fold.ids import make_uri
from fold.records.bulk import import_rows
from fold.records.service import record_out
from fold.rules.compile import normalise, rules_filter
from fold.rules.context import Context, SegmentDef
from fold.rules.python import matches
from fold.rules.sql import to_sql
from tests.conftest import Database
from tests.rules.test_property import DATE, EXAMPLES, NOW, NUMBER, TEXT, simple_rule

_buckets = itertools.count()
AMOUNT = st.one_of(
    st.integers(-2, 120),
    st.sampled_from([0.25, 2.5, 100.0, 99.75, 60.1, 39.9, 0.1, 0.2, 0.3, 33.33, 66.67]),
)
STATUS = st.sampled_from(["paid", "failed", "refunded"])
MSTATUS = st.sampled_from(["active", "lapsed", "expired"])
PAYMENT_SEGMENT = "c" * 24
PEOPLE_SEGMENT = "d" * 24


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    """Organisations, people and the payments and memberships linked to them (by index:
    `("person", 2)`; None: a link to no record)."""
    orgs = draw(st.integers(0, 3))
    people = draw(st.integers(1, 7))
    contact = st.one_of(
        st.tuples(st.just("person"), st.integers(0, people - 1)),
        st.tuples(st.just("organisation"), st.integers(0, max(orgs - 1, 0))),
        st.none(),
    )

    def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(st.none(), strategy)

    payment = st.fixed_dictionaries(
        {"contact": contact, "amount": maybe(AMOUNT), "date": maybe(DATE), "status": maybe(STATUS)}
    )
    membership = st.fixed_dictionaries(
        {
            "contact": contact,
            "amount": maybe(AMOUNT),
            "end_date": maybe(DATE),
            "status": maybe(MSTATUS),
            "membership_type": maybe(TEXT),
        }
    )
    person = st.fixed_dictionaries(
        {
            "first_name": maybe(TEXT),
            "score": maybe(NUMBER),
            "organisation": maybe(st.integers(0, max(orgs - 1, 0))) if orgs else st.none(),
        }
    )
    return {
        "organisations": [{"name": draw(TEXT)} for _ in range(orgs)],
        "people": draw(st.lists(person, min_size=people, max_size=people)),
        "payments": draw(st.lists(payment, max_size=10)),
        "memberships": draw(st.lists(membership, max_size=6)),
    }


def _import(db: Database, bucket: str, resource_type: str, rows: list[dict[str, Any]]) -> list[str]:
    with unit_of_work(db.sessions) as session:
        schema = schema_for(session, bucket=bucket, resource_type=resource_type)
        clean = [{k: v for k, v in row.items() if v is not None} for row in rows]
        result = import_rows(
            session,
            bucket=bucket,
            user_uri="/test/",
            schema=schema,
            rows=list(enumerate(clean, start=1)),
        )
        assert result.failed == 0, result.errors
        stored = session.scalars(
            select(Record.uid)
            .where(Record.bucket == bucket, Record.resource_type == resource_type)
            .order_by(Record.created, Record.uid)
        ).all()
        return list(stored)


def load_world(db: Database, world: dict[str, Any], *, warm: bool) -> dict[str, Any]:
    bucket = f"rel-{db.name[:2]}-{next(_buckets)}"
    with unit_of_work(db.sessions) as session:
        ensure_bucket(session, bucket)
        from fold.fields.service import add_custom_field

        add_custom_field(
            session,
            bucket=bucket,
            resource_type="person",
            body={"field": "score", "type": "number"},
        )
    if warm:
        # The column index reads the empty bucket first: every row reaches it as a change.
        for kind, other in (("person", "payment"), ("person", "membership")):
            node = {
                "related": {
                    "type": other,
                    "link": "contact",
                    "filter": {"or": [{"exists": p} for p in ("amount", "status", "date")]},
                    "having": {"aggregate": "sum", "field": "amount", "op": "gte", "value": 0.0},
                }
            }
            assert in_columns(db, bucket, kind, node) == set()
    uids: dict[str, list[str]] = {}
    uids["organisation"] = _import(db, bucket, "organisation", world["organisations"])

    def uri(link: Any) -> str | None:
        if link is None:
            return make_uri(bucket, "person", "f" * 24)  # names no record
        kind, n = link
        if not uids.get(kind):
            return None
        return make_uri(bucket, kind, uids[kind][n])

    people = []
    for person in world["people"]:
        org = person["organisation"]
        link = uri(("organisation", org)) if org is not None else None
        people.append({**person, "organisation": link})
    uids["person"] = _import(db, bucket, "person", people)
    for kind, key in (("payment", "payments"), ("membership", "memberships")):
        rows = [{**row, "contact": uri(row["contact"])} for row in world[key]]
        uids[kind] = _import(db, bucket, kind, rows)
    with unit_of_work(db.sessions) as session:
        stored = session.scalars(select(Record).where(Record.bucket == bucket)).all()
        records = [record_out(r) for r in stored]
        # A static payment segment holding every other payment, and one of people.
        lists = {
            PAYMENT_SEGMENT: uids["payment"][::2],
            PEOPLE_SEGMENT: uids["person"][1::2],
        }
        for segment, members in lists.items():
            for position, uid in enumerate(members):
                session.execute(
                    insert(SegmentUri).values(
                        bucket=bucket,
                        segment_uid=segment,
                        kind="include",
                        record_uid=uid,
                        position=position,
                    )
                )
    return {"bucket": bucket, "records": records, "lists": lists}


def segments(uid: str) -> SegmentDef | None:
    if uid == PAYMENT_SEGMENT:
        return SegmentDef(uid, "payment", "static", [], name="Every other payment")
    if uid == PEOPLE_SEGMENT:
        return SegmentDef(uid, "person", "static", [], name="Every other person")
    return None


PAYMENT_RULE = st.one_of(
    st.builds(
        lambda o, v: {"field": "amount", "operator": o, "value": v},
        st.sampled_from(["equals", "greater_than", "greater_than_or_equals", "less_than"]),
        AMOUNT,
    ),
    st.builds(
        lambda o, v: {"field": "status", "operator": o, "value": v},
        st.sampled_from(["equals", "exact", "not_equal_to", "starts_with"]),
        st.one_of(STATUS, st.sampled_from(["Paid ", "PAI", "re"])),
    ),
    st.builds(
        lambda o, v: {"field": "date", "operator": o, "value": v},
        st.sampled_from(["greater_than", "less_than_or_equals"]),
        st.one_of(DATE, st.sampled_from(["today-90d", "today-1y", "today"])),
    ),
)
MEMBERSHIP_RULE = st.one_of(
    st.builds(
        lambda o, v: {"field": "status", "operator": o, "value": v},
        st.sampled_from(["equals", "or_list", "none_of"]),
        st.one_of(MSTATUS, st.lists(MSTATUS, min_size=1, max_size=2)),
    ),
    st.builds(
        lambda o, v: {"field": "end_date", "operator": o, "value": v},
        st.sampled_from(["greater_than_or_equals", "less_than"]),
        st.one_of(DATE, st.sampled_from(["today-90d", "today"])),
    ),
    st.builds(
        lambda v: {
            "field": "membership_type",
            "operator": "starts_with_case_insensitive",
            "value": v,
        },
        TEXT,
    ),
)
HAVING = st.one_of(
    st.sampled_from(["any", "none"]),
    st.builds(lambda k, n: {k: n}, st.sampled_from(["at_least", "at_most"]), st.integers(0, 3)),
    st.builds(
        lambda a, o, v: {a: "amount", "operator": o, "value": v},
        st.sampled_from(["sum", "min", "max"]),
        st.sampled_from(
            ["equals", "greater_than", "greater_than_or_equals", "less_than", "less_than_or_equals"]
        ),
        AMOUNT,
    ),
)


@st.composite
def related_rule(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["payment", "membership"]))
    where = draw(st.lists(PAYMENT_RULE if kind == "payment" else MEMBERSHIP_RULE, max_size=2))
    value: dict[str, Any] = {"where": where, "having": draw(HAVING)}
    if kind == "payment" and draw(st.booleans()):
        value["segment"] = f"/BUCKET/segment/{PAYMENT_SEGMENT}/"
    return {"field": kind, "operator": "related", "value": value}


@st.composite
def organisation_rule(draw: st.DrawFn) -> dict[str, Any]:
    """On organisations: through their people, and their people's payments."""
    inner = draw(
        st.lists(
            st.one_of(
                st.builds(
                    lambda v: {"field": "score", "operator": "greater_than", "value": v}, NUMBER
                ),
                related_rule(),
            ),
            max_size=2,
        )
    )
    having = draw(
        st.one_of(
            st.sampled_from(["any", "none"]),
            st.builds(lambda n: {"at_least": n}, st.integers(0, 3)),
            st.builds(
                lambda a, v: {a: "score", "operator": "greater_than_or_equals", "value": v},
                st.sampled_from(["sum", "min", "max"]),
                NUMBER,
            ),
        )
    )
    return {"field": "person", "operator": "related", "value": {"where": inner, "having": having}}


PERSON_RULES = st.lists(
    st.one_of(
        related_rule(),
        related_rule(),
        simple_rule().filter(lambda r: r["field"] in ("first_name", "score", "display_value")),
        st.just(
            {
                "field": "segment",
                "operator": "or_list",
                "value": [f"/BUCKET/segment/{PEOPLE_SEGMENT}/"],
            }
        ),
    ),
    min_size=1,
    max_size=3,
)


def _with_bucket(rules: Any, bucket: str) -> Any:
    if isinstance(rules, str):
        return rules.replace("/BUCKET/", f"/{bucket}/")
    if isinstance(rules, list):
        return [_with_bucket(r, bucket) for r in rules]
    if isinstance(rules, dict):
        return {k: _with_bucket(v, bucket) for k, v in rules.items()}
    return rules


def agree(db: Database, world: dict[str, Any], kind: str, rules: list[dict[str, Any]]) -> None:
    bucket = world["bucket"]
    rules = _with_bucket(rules, bucket)
    with unit_of_work(db.sessions) as session:
        schema = schema_for(session, bucket=bucket, resource_type=kind)
        ctx = Context(
            bucket=bucket,
            resource_type=kind,
            schema=schema,
            now=NOW,
            segment=segments,
            schema_of=lambda t: schema_for(session, bucket=bucket, resource_type=t),
        )
        normalised, problems = normalise(rules, ctx)
        assert not [p for p in problems if "related" in p.description], problems
        assume(not problems)
        node = rules_filter(normalised, ctx)
        in_sql = set(
            session.scalars(
                select(Record.uid).where(
                    Record.bucket == bucket,
                    Record.resource_type == kind,
                    Record.record_state == "active",
                    to_sql(node, bucket=bucket),
                )
            ).all()
        )
    records = world["records"]
    by_uri = {r["uri"]: r for r in records}
    assert by_uri

    def linked(resource_type: str, link: str, record: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            r
            for r in records
            if r["resource_type"] == resource_type and r.get(link) == record["uri"]
        ]

    lists = world["lists"]
    in_python = {
        r["uid"]
        for r in records
        if r["resource_type"] == kind
        and matches(
            node, r, lambda s, k: set(lists.get(s, [])) if k == "include" else set(), linked
        )
    }
    assert in_sql == in_python, (normalised, node)
    for smallest in (vector.VECTOR_MIN, 0):
        saved = vector.VECTOR_MIN
        vector.VECTOR_MIN = smallest
        try:
            assert in_columns(db, bucket, kind, node, lists) == in_sql, (smallest, normalised)
        finally:
            vector.VECTOR_MIN = saved


def in_columns(
    db: Database,
    bucket: str,
    kind: str,
    node: dict[str, Any],
    lists: dict[str, list[str]] | None = None,
) -> set[str]:
    def listed(segment: str, which: str) -> list[str]:
        return (lists or {}).get(segment, []) if which == "include" else []

    with (
        unit_of_work(db.sessions) as session,
        index.matching(
            session, bucket=bucket, stored=(kind,), node=node, q=None, lists=listed
        ) as found,
    ):
        assert found is not None
        return {found.store.uids[i] for i in found.mask.nonzero()[0].tolist()}


PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROFILE
@given(world=worlds(), rules=PERSON_RULES, warm=st.booleans())
def test_related_rules_on_people_agree(
    database: Database, world: dict[str, Any], rules: list[dict[str, Any]], warm: bool
) -> None:
    loaded = load_world(database, world, warm=warm)
    agree(database, loaded, "person", rules)


@PROFILE
@given(world=worlds(), rules=st.lists(organisation_rule(), min_size=1, max_size=2))
def test_related_rules_on_organisations_agree(
    database: Database, world: dict[str, Any], rules: list[dict[str, Any]]
) -> None:
    loaded = load_world(database, world, warm=False)
    agree(database, loaded, "organisation", rules)


class TestFixedWorld:
    """Many related rules against one larger random world per database: each rule then
    meets people with many payments of mixed amounts, dates and statuses."""

    loaded: dict[str, dict[str, Any]] = {}

    def world(self, database: Database) -> dict[str, Any]:
        if database.name not in self.loaded:
            import random

            rng = random.Random(7)
            orgs, people = 6, 60
            amounts = [0.25, 2.5, 100.0, 99.75, 60.1, 39.9, 0.1, 0.2, 33.33, 66.67, 5, 50, -1]
            statuses, mstatuses = ["paid", "failed", "refunded"], ["active", "lapsed", "expired"]

            def contact() -> Any:
                roll = rng.random()
                if roll < 0.8:
                    return ("person", rng.randrange(people))
                return ("organisation", rng.randrange(orgs)) if roll < 0.95 else None

            def maybe(value: Any) -> Any:
                return value if rng.random() < 0.85 else None

            def day() -> str:
                return f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"

            world = {
                "organisations": [{"name": f"Org {i}"} for i in range(orgs)],
                "people": [
                    {
                        "first_name": rng.choice(["a", "B", "ab", None]),
                        "score": maybe(rng.choice([-1.5, 0, 1, 2, 2.5, 3])),
                        "organisation": maybe(rng.randrange(orgs)),
                    }
                    for _ in range(people)
                ],
                "payments": [
                    {
                        "contact": contact(),
                        "amount": maybe(rng.choice(amounts)),
                        "date": maybe(day()),
                        "status": maybe(rng.choice(statuses)),
                    }
                    for _ in range(180)
                ],
                "memberships": [
                    {
                        "contact": contact(),
                        "amount": maybe(rng.choice(amounts)),
                        "end_date": maybe(day()),
                        "status": maybe(rng.choice(mstatuses)),
                        "membership_type": maybe(rng.choice(["Annual", "life", "Lifetime"])),
                    }
                    for _ in range(90)
                ],
            }
            self.loaded[database.name] = load_world(database, world, warm=True)
        return self.loaded[database.name]

    @settings(
        max_examples=EXAMPLES * 3, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(rules=PERSON_RULES)
    def test_people(self, database: Database, rules: list[dict[str, Any]]) -> None:
        agree(database, self.world(database), "person", rules)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rules=st.lists(organisation_rule(), min_size=1, max_size=2))
    def test_organisations(self, database: Database, rules: list[dict[str, Any]]) -> None:
        agree(database, self.world(database), "organisation", rules)
