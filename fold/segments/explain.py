"""Explain (SPEC 12): the count after each step of a segment's definition, or for one
record, which steps it passes and why it is in the segment or not."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.db.models import Segment
from fold.errors import NotFound, ValidationFailed
from fold.ids import make_uri, parse_uri
from fold.records import repository as records
from fold.records.service import record_out
from fold.rules.compile import listed, membership, rule_filter
from fold.rules.filter import Node, all_of, any_of, negate
from fold.rules.python import matches
from fold.rules.sentence import clause
from fold.segments import repository
from fold.segments.index_or_sql import count_selected
from fold.segments.members import definition, lists_lookup, make_context, stored_types
from fold.timefmt import format_datetime, utcnow


def steps_of(session: Session, row: Segment) -> tuple[list[tuple[str, dict[str, Any], Node]], Any]:
    """(name, description, node) for each step, each node the conjunction so far."""
    ctx = make_context(session, bucket=row.bucket, resource_type=row.resource_type)
    names: dict[str, str] = {}
    for rule in row.rules:
        if rule["field"] == "segment":
            for uri in rule["value"]:
                other = ctx.segment(uri.rstrip("/").split("/")[-1])
                names[uri] = other.name if other else uri
    steps: list[tuple[str, dict[str, Any], Node]] = []
    kind = row.segment_type
    so_far: Node = {"const": kind != "auxiliary"}
    if kind in ("dynamic", "hybrid"):
        for index, rule in enumerate(row.rules):
            so_far = all_of([so_far, rule_filter(rule, ctx, [row.uid])])
            info = {"rule": rule, "sentence": clause(ctx.schema, rule, names)}
            steps.append((f"rules[{index}]", info, so_far))
    if kind in ("static", "hybrid"):
        include = listed(row.uid, "include")
        so_far = include if kind == "static" else any_of([so_far, include])
        steps.append(
            ("uris_include", {"sentence": "plus the records listed in uris_include"}, so_far)
        )
        so_far = all_of([so_far, negate(listed(row.uid, "exclude"))])
        steps.append(
            ("uris_exclude", {"sentence": "minus the records listed in uris_exclude"}, so_far)
        )
    if row.parent_uid:
        parent = ctx.segment(row.parent_uid)
        if parent is not None and parent.segment_type != "auxiliary":
            so_far = all_of([so_far, membership(parent, ctx, [row.uid])])
            info = {"sentence": f"within the parent segment '{parent.name}'"}
            steps.append(("parent_segment", info, so_far))
    return steps, ctx


def funnel(session: Session, caller: Caller, row: Segment) -> dict[str, Any]:
    steps, _ = steps_of(session, row)

    def counted(node: Node) -> int:
        return count_selected(
            session, bucket=row.bucket, resource_type=row.resource_type, node=node
        )

    base = counted({"const": True})
    out_steps = [{"step": name, **info, "count": counted(node)} for name, info, node in steps]
    final = (
        out_steps[-1]["count"] if out_steps else (0 if row.segment_type == "auxiliary" else base)
    )
    return {
        "segment": make_uri(row.bucket, "segment", row.uid),
        "segment_type": row.segment_type,
        "base_count": base,
        "steps": out_steps,
        "count": final,
        "computed_at": format_datetime(utcnow()),
    }


def for_record(session: Session, caller: Caller, row: Segment, uri: str) -> dict[str, Any]:
    parsed = parse_uri(uri)
    if parsed is None or parsed.bucket != caller.bucket:
        raise ValidationFailed(f"{uri!r} is not a record URI of this bucket.", param="uri")
    types = stored_types(row.resource_type)
    if parsed.resource_type not in types:
        raise ValidationFailed(f"{uri} is not a {row.resource_type} record.", param="uri")
    record = records.get(
        session, bucket=caller.bucket, resource_type=parsed.resource_type, uid=parsed.uid
    )
    if record is None:
        raise NotFound(f"No record {uri} in this bucket.", param="uri")
    doc = record_out(record)
    lists = lists_lookup(session, caller.bucket)
    ctx = make_context(session, bucket=row.bucket, resource_type=row.resource_type)
    reasons: list[str] = []
    active = record.record_state == "active"
    if not active:
        reasons.append("the record is deleted")
    rules = []
    if row.segment_type in ("dynamic", "hybrid"):
        for index, rule in enumerate(row.rules):
            holds = matches(rule_filter(rule, ctx, [row.uid]), doc, lists)
            rules.append(
                {
                    "rule": rule,
                    "param": f"rules[{index}]",
                    "sentence": clause(ctx.schema, rule, {}),
                    "holds": holds,
                }
            )
    all_rules = all(r["holds"] for r in rules)
    included = record.uid in lists(row.uid, "include")
    excluded = record.uid in lists(row.uid, "exclude")
    parent_info = None
    if row.parent_uid:
        parent_row = repository.get(session, bucket=row.bucket, uid=row.parent_uid)
        if parent_row is not None and parent_row.segment_type != "auxiliary":
            in_parent = matches(membership(definition(parent_row), ctx), doc, lists)
            parent_info = {
                "segment": make_uri(row.bucket, "segment", parent_row.uid),
                "name": parent_row.name,
                "holds": in_parent,
            }
    in_segment = active and matches(membership(definition(row), ctx), doc, lists)
    kind = row.segment_type
    if kind == "auxiliary":
        reasons.append("an auxiliary segment holds no records")
    if kind in ("dynamic", "hybrid"):
        failing = [str(r["sentence"]) for r in rules if not r["holds"]]
        if failing:
            reasons.append("fails: " + "; ".join(failing))
        elif rules:
            reasons.append("meets every rule")
        else:
            reasons.append("the segment has no rules, so every record meets them")
    if kind in ("static", "hybrid"):
        reasons.append("listed in uris_include" if included else "not listed in uris_include")
        if excluded:
            reasons.append("listed in uris_exclude, which removes it")
    if parent_info is not None:
        reasons.append(
            ("in" if parent_info["holds"] else "not in")
            + f" the parent segment '{parent_info['name']}'"
        )
    return {
        "segment": make_uri(row.bucket, "segment", row.uid),
        "uri": make_uri(record.bucket, record.resource_type, record.uid),
        "display_value": record.display_value,
        "in_segment": in_segment,
        "rules": rules,
        "all_rules_hold": all_rules,
        "included": included,
        "excluded": excluded,
        "parent": parent_info,
        "reasons": reasons,
    }
