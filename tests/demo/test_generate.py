"""The demo generator: deterministic per seed, linked, skewed like real CRM data."""

from __future__ import annotations

from collections import Counter
from datetime import date

from fold.demo.generate import DemoPlan, generate
from fold.fields.builtin import BUILTIN
from fold.records.document import clean_document

PLAN = DemoPlan(people=2000, seed=3, today=date(2026, 6, 1))


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = list(generate("demo", PLAN))
    assert first == list(generate("demo", PLAN))
    other = list(generate("demo", DemoPlan(people=2000, seed=4, today=date(2026, 6, 1))))
    assert first != other


def test_records_are_valid_and_linked() -> None:
    rows = list(generate("demo", PLAN))
    uris = {f"/demo/{t}/{uid}/" for t, uid, _, _ in rows}
    assert len(uris) == len(rows), "uids are unique"
    for resource_type, _, data, _ in rows:
        cleaned, problems = clean_document(data, BUILTIN[resource_type], "demo")
        assert problems == [] and cleaned == data
        for field in ("contact", "group", "organisation"):
            if field in data:
                assert data[field] in uris
    kinds = Counter(t for t, _, _, _ in rows)
    assert kinds["person"] == 2000
    assert 600 < kinds["membership"] < 1400 and kinds["payment"] > 1000
    assert kinds["organisation"] == 50 and kinds["group"] == 20 and kinds["group_member"] > 300


def test_distributions_are_skewed() -> None:
    people = [d for t, _, d, _ in generate("demo", PLAN) if t == "person"]
    cities = Counter(p["address"]["locality"] for p in people)
    assert cities.most_common(1)[0][0] == "London"
    assert cities["London"] > 5 * cities.get("Truro", 0)
    tags = Counter(tag for p in people for tag in p["tags"])
    assert tags["newsletter"] > 10 * tags["trustee"]
    emails = [p["email"] for p in people if "email" in p]
    assert len(emails) == len(set(emails)) and 0.85 < len(emails) / len(people) < 0.99
    opted_out = sum(p["email_opt_out"] for p in people) / len(people)
    assert 0.05 < opted_out < 0.2
    statuses = Counter(p.get("membership_status") for p in people)
    assert statuses["active"] > statuses["lapsed"] > statuses["cancelled"] > 0


def test_postcodes_have_centres() -> None:
    from fold.demo.generate import Generator

    generator = Generator("demo", DemoPlan(people=200, seed=3, today=date(2026, 6, 1)))
    people = [d for t, _, d, _ in generator.rows() if t == "person"]
    assert people[0]["address"]["postal_code"] in generator.postcodes
    lat, lng = generator.postcodes[people[0]["address"]["postal_code"]]
    assert 49 < lat < 59 and -8 < lng < 2
