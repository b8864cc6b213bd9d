"""Rule sentences read as staff would say them, in the words of the field's type."""

from __future__ import annotations

from typing import Any

from fold.fields.builtin import BUILTIN
from fold.rules.sentence import describe, describe_segment
from tests.conftest import Tenant
from tests.segments.conftest import make_segment, people, seg_url

__all__ = ["people"]
PEOPLE = BUILTIN["person"]
PAYMENTS = BUILTIN["payment"]


def rule(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def test_dates_read_as_time() -> None:
    assert describe(PEOPLE, [rule("joined", "greater_than", "today-1y")]) == (
        "People whose joined date is in the last year"
    )
    assert describe(PEOPLE, [rule("joined", "greater_than_or_equals", "today-30d")]) == (
        "People whose joined date is in the last 30 days"
    )
    assert describe(PEOPLE, [rule("joined", "less_than", "today-2y")]) == (
        "People whose joined date is more than 2 years ago"
    )
    assert describe(PEOPLE, [rule("joined", "less_than", "2020-01-01")]) == (
        "People whose joined date is before '2020-01-01'"
    )


def test_numbers_read_as_amounts() -> None:
    assert describe(PAYMENTS, [rule("amount", "greater_than_or_equals", 100)]) == (
        "Payments whose amount is at least 100"
    )
    assert describe(PAYMENTS, [rule("amount", "less_than", 5.0)]) == (
        "Payments whose amount is less than 5"
    )


def test_lists_read_with_or() -> None:
    assert describe(PEOPLE, [rule("tags", "or_list", ["donor", "volunteer"])]) == (
        "People whose tags include any of 'donor' or 'volunteer'"
    )


def test_static_and_folder_segments_say_what_they_are() -> None:
    assert (
        describe_segment(PEOPLE, segment_type="static", rules=[], include=3, exclude=0)
        == "A list of 3 people"
    )
    assert describe_segment(
        PEOPLE, segment_type="auxiliary", rules=[], include=0, exclude=0
    ).startswith("A folder")


def test_count_describes_a_static_segment(tenant: Tenant, people: dict[str, Any]) -> None:
    api = tenant.admin
    uris = [people["Ada"]["uri"], people["Bob"]["uri"]]
    seg = make_segment(api, name="List", segment_type="static", uris_include=uris)
    count = api.get(seg_url(api, seg["uid"], "/count")).json()
    assert count["description"] == "A list of 2 people" and count["count"] == 2


def test_ends_with_reads_as_text() -> None:
    assert describe(PEOPLE, [rule("email", "ends_with", "@example.org")]) == (
        "People whose email ends with '@example.org'"
    )
