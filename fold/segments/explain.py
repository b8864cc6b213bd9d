"""Explain (SPEC 12): the count after each step of a segment's definition, or for one
record, which steps it passes and why it is in the segment or not."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.db.models import Segment
from fold.errors import NotFound, ValidationFailed
from fold.fields.paths import get_path
from fold.ids import make_uri, parse_uri
from fold.records import repository as records
from fold.records.service import record_out
from fold.rules.compile import compose, segment_uris
from fold.rules.filter import Node
from fold.rules.nodes import Related, Typed, typed
from fold.rules.python import Linked, aggregate_of, holds, matches
from fold.rules.sentence import clause
from fold.segments.index_or_sql import count_selected
from fold.segments.members import (
    definition,
    linked_lookup,
    lists_lookup,
    make_context,
    stored_types,
)
from fold.timefmt import format_datetime, utcnow


def steps_of(session: Session, row: Segment) -> tuple[list[tuple[str, dict[str, Any], Node]], Any]:
    """(name, description, node) for each step, each node the conjunction so far."""
    ctx = make_context(session, bucket=row.bucket, resource_type=row.resource_type)
    names = _segment_names(ctx, row.rules)
    steps = []
    for step in compose(definition(row), ctx).steps:
        info = dict(step.info)
        if "rule" in info:
            info["sentence"] = clause(ctx.schema, info["rule"], names, ctx.schema_of)
        steps.append((step.name, info, step.node))
    return steps, ctx


def _segment_names(ctx: Any, rules: list[dict[str, Any]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for uri in segment_uris(rules):
        parsed = parse_uri(uri)
        other = ctx.segment(parsed.uid) if parsed else None
        names[uri] = other.name if other else uri
    return names


MAX_RELATED_SHOWN = 50


def related_records(
    node: Typed, record: dict[str, Any], lists: Any, linked: Linked
) -> dict[str, Any]:
    """For one record and a related rule: the related records, whether each passes the
    rule's filter, and the count or aggregate over those that do."""
    assert isinstance(node, Related)
    candidates = linked(node.type, node.link, record)
    passing = []
    shown: list[dict[str, Any]] = []
    for other in candidates:
        passes = holds(node.filter, other, lists, linked)
        if passes:
            passing.append(other)
        if len(shown) < MAX_RELATED_SHOWN:
            item = {"uri": other["uri"], "display_value": other["display_value"], "passes": passes}
            if node.having.field is not None:
                item[node.having.field] = get_path(other, node.having.field)
            shown.append(item)
    return {
        "resource_type": node.type,
        "link": node.link,
        "linked": len(candidates),
        "passing": len(passing),
        "aggregate": node.having.aggregate,
        "field": node.having.field,
        "value": aggregate_of(node, passing),
        "records": shown,
    }


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
    linked = linked_lookup(session, caller.bucket)
    composition = compose(definition(row), ctx)
    names = _segment_names(ctx, row.rules)
    rules = []
    for index, (rule, node) in enumerate(composition.rules):
        out = {
            "rule": rule,
            "param": f"rules[{index}]",
            "sentence": clause(ctx.schema, rule, names, ctx.schema_of),
            "holds": matches(node, doc, lists, linked),
        }
        if "related" in node:
            out["related"] = related_records(typed(node), doc, lists, linked)
        rules.append(out)
    all_rules = all(r["holds"] for r in rules)
    included = record.uid in lists(row.uid, "include")
    excluded = record.uid in lists(row.uid, "exclude")
    parent_info = None
    if composition.parent is not None and composition.parent_node is not None:
        parent_info = {
            "segment": make_uri(row.bucket, "segment", composition.parent.uid),
            "name": composition.parent.name,
            "holds": matches(composition.parent_node, doc, lists, linked),
        }
    in_segment = active and matches(composition.node, doc, lists, linked)
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
