"""The fixed suite of segments `fold bench` times. Together they use every operator, both
list operators on tags, a relative-date range, `near` with a 10 km radius, a `raw` `$or`,
segment membership, a hybrid with 1,000 includes, a child refining its parent, a `q`
search, and three rules on related records (memberships, payments, a payment segment).
Each has its DuckDB twin over typed columns (joins for the related ones), for the
reference time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    name: str
    rules: list[dict[str, Any]]
    duckdb: str  # the same predicate over the typed `people` table
    segment_type: str = "dynamic"
    parent: str | None = None
    includes: int = 0
    q: str | None = None
    refs: tuple[str, ...] = field(default_factory=tuple)
    related: bool = False  # rules on related records (DuckDB: a join over typed tables)


def rule(field_: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field_, "operator": operator, "value": value}


def related(field_: str, **value: Any) -> dict[str, Any]:
    return {"field": field_, "operator": "related", "value": value}


# Segments of other types the related cases name (`helper:<name>` in a rule), made first.
HELPERS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "gift aid payments": ("payment", [rule("gift_aid", "equals", True)]),
}


LONDON = "51.5074,-0.1278,10"
KM_LAT = 111.195

CASES: tuple[Case, ...] = (
    Case(
        "three conditions",
        [
            rule("address.locality", "equals", "leeds"),
            rule("membership_status", "equals", "active"),
            rule("email_opt_out", "equals", False),
        ],
        "lower(trim(locality)) = 'leeds' AND membership_status = 'active' "
        "AND email_opt_out = false",
    ),
    Case("equals", [rule("address.locality", "equals", "York")], "lower(trim(locality)) = 'york'"),
    Case("exact", [rule("first_name", "exact", "Oliver")], "first_name = 'Oliver'"),
    Case(
        "not_equal_to",
        [rule("membership_status", "not_equal_to", "active")],
        "membership_status IS NULL OR membership_status <> 'active'",
    ),
    Case(
        "relative date range",
        [rule("joined", "greater_than", "today-2y"), rule("joined", "less_than", "today-30d")],
        "joined > current_date - INTERVAL 2 YEAR AND joined < current_date - INTERVAL 30 DAY",
    ),
    Case(
        "date between (>=, <=)",
        [
            rule("date_of_birth", "greater_than_or_equals", "1960-01-01"),
            rule("date_of_birth", "less_than_or_equals", "1969-12-31"),
        ],
        "date_of_birth >= DATE '1960-01-01' AND date_of_birth <= DATE '1969-12-31'",
    ),
    Case(
        "starts_with",
        [rule("address.postal_code", "starts_with", "SW1")],
        "starts_with(postal_code, 'SW1')",
    ),
    Case(
        "starts_with_case_insensitive",
        [rule("last_name", "starts_with_case_insensitive", "mac")],
        "starts_with(lower(last_name), 'mac')",
    ),
    Case(
        "tags or_list",
        [rule("tags", "or_list", ["volunteer", "trustee"])],
        "list_has_any(tags, ['volunteer', 'trustee'])",
    ),
    Case(
        "tags and_list",
        [rule("tags", "and_list", ["donor", "gift-aid"])],
        "list_has_all(tags, ['donor', 'gift-aid'])",
    ),
    Case(
        "none_of",
        [rule("source", "none_of", ["import", "paper-form"])],
        "source IS NULL OR source NOT IN ('import', 'paper-form')",
    ),
    Case(
        "near 10 km",
        [rule("geo", "near", LONDON)],
        f"(lat - 51.5074) * {KM_LAT} * (lat - 51.5074) * {KM_LAT} + (lng + 0.1278) * "
        f"{KM_LAT} * cos(radians(51.5074)) * (lng + 0.1278) * {KM_LAT} "
        "* cos(radians(51.5074)) <= 100",
    ),
    Case(
        "raw $or",
        [
            rule(
                "",
                "raw",
                {
                    "$or": [
                        {"tags": "major-donor"},
                        {"membership_status": "lapsed", "email_opt_out": True},
                    ]
                },
            )
        ],
        "list_contains(tags, 'major-donor') OR (membership_status = 'lapsed' AND email_opt_out)",
    ),
    Case(
        "segment membership",
        [],
        "lower(trim(locality)) = 'york' OR (lat - 51.5074) * {k} * (lat - 51.5074) * {k} + "
        "(lng + 0.1278) * {k} * cos(radians(51.5074)) * (lng + 0.1278) * {k} * "
        "cos(radians(51.5074)) <= 100".replace("{k}", str(KM_LAT)),
        refs=("equals", "near 10 km"),
    ),
    Case(
        "hybrid, 1,000 includes",
        [rule("tags", "equals", "trustee")],
        "list_contains(tags, 'trustee') OR uid IN (SELECT uid FROM included)",
        segment_type="hybrid",
        includes=1000,
    ),
    Case(
        "child refining parent",
        [rule("email_opt_out", "equals", False)],
        "(membership_status IS NULL OR membership_status <> 'active') AND email_opt_out = false",
        parent="not_equal_to",
    ),
    Case(
        "lapsed membership, 90 days",
        [
            related(
                "membership",
                where=[
                    rule("status", "equals", "lapsed"),
                    rule("end_date", "greater_than_or_equals", "today-90d"),
                ],
            )
        ],
        "uid IN (SELECT contact FROM memberships WHERE lower(trim(status)) = 'lapsed' "
        "AND end_date >= current_date - INTERVAL 90 DAY)",
        related=True,
    ),
    Case(
        "gave 100+ in a year",
        [
            related(
                "payment",
                where=[rule("date", "greater_than_or_equals", "today-1y")],
                having={"sum": "amount", "operator": "greater_than_or_equals", "value": 100},
            )
        ],
        "uid IN (SELECT contact FROM payments WHERE date >= current_date - INTERVAL 1 YEAR "
        "GROUP BY contact HAVING round(sum(amount), 6) >= 100)",
        related=True,
    ),
    Case(
        "gift aid payer, no active membership",
        [
            related("payment", segment="helper:gift aid payments"),
            related("membership", where=[rule("status", "equals", "active")], having="none"),
        ],
        "uid IN (SELECT contact FROM payments WHERE gift_aid) AND uid NOT IN "
        "(SELECT contact FROM memberships WHERE lower(trim(status)) = 'active' "
        "AND contact IS NOT NULL)",
        related=True,
    ),
    Case(
        "q search in a segment",
        [rule("tags", "equals", "donor")],
        "list_contains(tags, 'donor') AND contains(search_text, 'smith')",
        q="smith",
    ),
)
