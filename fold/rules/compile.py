"""Rules → normalised rules → filter document. The passes:

1. `read_rules`: the rules as sent (array, `{"match", "conditions"}` or JSON text) → a
   list of rule objects;
2. `normalise`: each rule checked against the field schema and its value read as the
   field's type, every problem collected with its `param`;
3. `rules_filter`: normalised rules → filter document, with relative dates, postcodes and
   segment membership resolved for this moment;
4. `membership`: a whole segment (type, lists, parent chain) → filter document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fold import jsontext
from fold.errors import Problem
from fold.fields.types import read_boolean, read_date, read_datetime, read_number, read_uri
from fold.ids import parse_uri
from fold.rules.context import Context, SegmentDef
from fold.rules.filter import SYSTEM_KINDS, Node, all_of, any_of, leaf, negate
from fold.rules.ops import AGGREGATES, COMPARISONS, LIST_FORMS, QUANTIFIERS, TESTS
from fold.rules.ops import OPERATORS as OPS
from fold.rules.raw import FIELD_RE, read_raw
from fold.rules.values import ISO_DATE_RE, is_relative, read_near, resolve_relative

OPERATORS = tuple(OPS)
LIST_OPERATORS = tuple(name for name, op in OPS.items() if op.form in LIST_FORMS)
SEGMENT_FIELD = "segment"
URI_OPERATORS = tuple(name for name, op in OPS.items() if op.uri)
SEGMENT_OPERATORS = tuple(name for name, op in OPS.items() if op.segment)
MAX_RULES = 100
MAX_LIST = 5000
MAX_SEGMENT_DEPTH = 20
MAX_RELATED_DEPTH = 2
HAVING_HELP = (
    "having is 'any', 'none', {at_least: n}, {at_most: n} or "
    "{sum|min|max: field, operator: comparison, value: number}"
)


class RuleError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.description)
        self.problem = problem


def read_rules(raw: Any) -> tuple[list[Any], list[Problem]]:
    """The list of rule objects, from any of the accepted forms."""
    if raw is None or raw == "":
        return [], []
    if isinstance(raw, str):
        try:
            raw = jsontext.loads(raw, param="rules")
        except jsontext.JsonRefused as exc:
            return [], [exc.problem]
        except json.JSONDecodeError:
            return [], [Problem("rules must be a JSON array of {field, operator, value}", "rules")]
    if isinstance(raw, dict):
        if "field" in raw or "operator" in raw:
            # One rule object, as a client sending rules one by one does: never dropped.
            return [raw], []
        if not ("conditions" in raw or "match" in raw) or set(raw) - {"match", "conditions"}:
            return [], [
                Problem(
                    "rules is an array of {field, operator, value}, one such rule object, "
                    "or {match: 'all', conditions: [...]}",
                    "rules",
                )
            ]
        if raw.get("match", "all") != "all":
            return [], [
                Problem("rules match 'all'; use or_list, raw or segments for OR", "rules.match")
            ]
        raw = raw.get("conditions", [])
    if not isinstance(raw, list):
        return [], [Problem("rules must be an array of {field, operator, value}", "rules")]
    if len(raw) > MAX_RULES:
        return [], [Problem(f"at most {MAX_RULES} rules", "rules")]
    return raw, []


def segment_uris(rules: list[dict[str, Any]]) -> list[str]:
    """Every segment normalised rules name, related rules' included (for their names)."""
    out: list[str] = []
    for rule in rules:
        if rule["field"] == SEGMENT_FIELD:
            out.extend(rule["value"])
        elif rule["operator"] == "related":
            if rule["value"].get("segment"):
                out.append(rule["value"]["segment"])
            out.extend(segment_uris(rule["value"]["where"]))
    return out


def rules_object(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"match": "all", "conditions": rules}


def field_type(field: str, ctx: Context) -> str | None:
    """The schema type of a field, or None for a field the schema does not declare."""
    if field in SYSTEM_KINDS:
        return "datetime" if SYSTEM_KINDS[field] == "datetime" else "string"
    return ctx.schema.field_type(field)


def inferred_type(value: Any) -> str:
    """The type of a value given for a field no schema declares."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str) and (is_relative(value) or ISO_DATE_RE.match(value.strip())):
        return "date"
    return "string"


def read_typed(value: Any, ftype: str, ctx: Context) -> Any:
    """A rule value as the field's type; relative dates stay relative until evaluated."""
    if isinstance(value, dict | list) or value is None:
        raise ValueError("expected a single value")
    if ftype in ("date", "datetime") and is_relative(value):
        return str(value).strip().lower()
    if ftype == "number":
        return read_number(value)
    if ftype == "boolean":
        return read_boolean(value)
    if ftype in ("date", "datetime"):
        try:
            return read_date(value) if ftype == "date" else read_datetime(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date; use an ISO 8601 date (2026-01-31) or date-time "
                "(2026-01-31T09:30:00), or a relative date: today, now, or either with "
                "+/- a number of d, wk, m or y (today-30d, now+2wk, today-1y)"
            ) from None
    if ftype == "uri":
        uri = read_uri(value)
        parsed = parse_uri(uri)
        if parsed is not None and parsed.bucket != ctx.bucket:
            raise ValueError("the URI belongs to another bucket")
        return uri
    if isinstance(value, bool):
        raise ValueError("expected text")
    return value if isinstance(value, str) else str(value)


def as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list):
        return value
    return [value]


class Normaliser:
    def __init__(self, ctx: Context, prefix: str = "rules", depth: int = 0) -> None:
        self.ctx = ctx
        self.prefix = prefix
        self.depth = depth
        self.problems: list[Problem] = []

    def fail(self, description: str, param: str) -> None:
        self.problems.append(Problem(description, param))

    def rules(self, raw: Any) -> list[dict[str, Any]]:
        items, problems = read_rules(raw)
        self.problems.extend(problems)
        out = []
        for index, item in enumerate(items):
            rule = self.rule(index, item)
            if rule is not None:
                out.append(rule)
        return out

    def rule(self, index: int, item: Any) -> dict[str, Any] | None:
        at = f"{self.prefix}[{index}]"
        if not isinstance(item, dict):
            self.fail("a rule is an object {field, operator, value}", at)
            return None
        unknown = set(item) - {"field", "operator", "value"}
        if unknown:
            self.fail(f"a rule has only field, operator and value, not {sorted(unknown)}", at)
        operator = item.get("operator")
        if operator not in OPERATORS:
            self.fail(
                f"{operator!r} is not an operator; use one of {', '.join(OPERATORS)}",
                f"{at}.operator",
            )
            return None
        field = item.get("field") or ""
        form = OPS[operator].form
        if form == "near" and not field:
            field = "geo"
        if form == "raw":
            return self.raw(at, item.get("value"))
        if not isinstance(field, str) or not (field == "uri" or FIELD_RE.match(field)):
            self.fail(
                f"{field!r} is not a field: use a dotted path like address.postal_code",
                f"{at}.field",
            )
            return None
        if "value" not in item:
            self.fail("a rule needs a value", f"{at}.value")
            return None
        value = item["value"]
        if form == "related":
            return self.related(at, field, value)
        if field == SEGMENT_FIELD:
            return self.segment_rule(at, operator, value)
        if field == "uri":
            return self.uri_rule(at, operator, value)
        if form == "near":
            return self.near(at, field, value)
        return self.compare(at, field, operator, value)

    def related(self, at: str, field: str, value: Any) -> dict[str, Any] | None:
        """`{"field": "payment", "operator": "related", "value": {"via": link field,
        "where": [rules],
        "segment": URI, "having": "any" | "none" | {"at_least": n} | {"at_most": n} |
        {"sum"|"min"|"max": field, "operator": comparison, "value": number}}}`."""
        if self.depth >= MAX_RELATED_DEPTH:
            self.fail("related rules nest at most two deep", f"{at}.operator")
            return None
        if not isinstance(value, dict):
            self.fail(
                "related takes {via, where: [rules], segment: URI, having: ...}", f"{at}.value"
            )
            return None
        unknown = set(value) - {"via", "where", "segment", "having"}
        if unknown:
            self.fail(
                f"related takes via, where, segment and having, not {sorted(unknown)}",
                f"{at}.value",
            )
            return None
        link = self.ctx.link(field)
        schema = self.ctx.schema_of(field)
        if schema is None or (link is None and "via" not in value):
            linked = ", ".join(self.ctx.linked_types()) or "none"
            self.fail(
                f"no {field} records link to {self.ctx.resource_type} records; related "
                f"rules here take one of: {linked}",
                f"{at}.field",
            )
            return None
        via = value.get("via", link)
        if not isinstance(via, str) or schema.field_type(via) != "uri":
            links = [n for n, f in schema.fields.items() if f.type == "uri"]
            self.fail(
                f"via names a link field of {field}: {', '.join(links) or 'it has none'}",
                f"{at}.value.via",
            )
            return None
        other = self.ctx.related(field)
        out: dict[str, Any] = {"via": via, "where": []}
        where = value.get("where", [])
        if not isinstance(where, list) or len(where) > MAX_RULES:
            self.fail(f"where is a list of at most {MAX_RULES} rules", f"{at}.value.where")
            return None
        inner = Normaliser(other, f"{at}.value.where", self.depth + 1)
        for index, item in enumerate(where):
            rule = inner.rule(index, item)
            if rule is not None:
                out["where"].append(rule)
        self.problems.extend(inner.problems)
        if "segment" in value:
            segment = self.related_segment(f"{at}.value.segment", field, value["segment"], other)
            if segment is None:
                return None
            out["segment"] = segment
        having = self.having(f"{at}.value.having", value.get("having", "any"), other)
        if having is None or inner.problems:
            return None
        out["having"] = having
        return {"field": field, "operator": "related", "value": out}

    def related_segment(self, at: str, field: str, value: Any, other: Context) -> str | None:
        parsed = parse_uri(value)
        if parsed is None or parsed.resource_type != "segment":
            self.fail(f"{value!r} is not a segment URI", at)
            return None
        if parsed.bucket != self.ctx.bucket:
            self.fail(f"{value} belongs to another bucket", at)
            return None
        segment = self.ctx.segment(parsed.uid)
        if segment is None or segment.deleted:
            self.fail(f"no segment {value} in this bucket", at)
            return None
        if segment.resource_type != field:
            self.fail(f"{value} holds {segment.resource_type} records, not {field}", at)
            return None
        try:
            membership(segment, other, [self.ctx.self_uid or ""])
        except RuleError as exc:
            self.fail(exc.problem.description, at)
            return None
        return str(parsed)

    def having(self, at: str, value: Any, other: Context) -> Any:
        if value in ("any", "none"):
            return value
        if not isinstance(value, dict) or len(value) not in (1, 3):
            self.fail(HAVING_HELP, at)
            return None
        if len(value) == 1:
            ((key, n),) = value.items()
            if key not in ("at_least", "at_most"):
                self.fail(HAVING_HELP, at)
                return None
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 1_000_000:
                self.fail(f"{key} takes a whole number from 0", f"{at}.{key}")
                return None
            return {key: n}
        aggregates = [k for k in value if k in AGGREGATES and k != "count"]
        if len(aggregates) != 1 or set(value) != {aggregates[0], "operator", "value"}:
            self.fail(HAVING_HELP, at)
            return None
        aggregate = aggregates[0]
        path = value[aggregate]
        declared = other.schema.field_type(path) if isinstance(path, str) else None
        if declared != "number":
            numbers = [n for n, f in other.schema.fields.items() if f.type == "number"]
            self.fail(
                f"{aggregate} takes a number field of {other.resource_type}: "
                f"{', '.join(numbers) or 'it has none'}",
                f"{at}.{aggregate}",
            )
            return None
        if value["operator"] not in COMPARISONS:
            self.fail(f"compare with one of {', '.join(COMPARISONS)}", f"{at}.operator")
            return None
        try:
            number = read_number(value["value"])
        except ValueError as exc:
            self.fail(f"{value['value']!r} is not a number: {exc}", f"{at}.value")
            return None
        return {aggregate: path, "operator": value["operator"], "value": number}

    def raw(self, at: str, value: Any) -> dict[str, Any] | None:
        if isinstance(value, str):
            try:
                value = jsontext.loads(value, param=f"{at}.value")
            except jsontext.JsonRefused as exc:
                self.problems.append(exc.problem)
                return None
            except json.JSONDecodeError:
                self.fail("raw takes a JSON filter document, never SQL or code", f"{at}.value")
                return None
        _, problems = read_raw(value, f"{at}.value")
        self.problems.extend(problems)
        return None if problems else {"field": "", "operator": "raw", "value": value}

    def near(self, at: str, field: str, value: Any) -> dict[str, Any] | None:
        ftype = field_type(field, self.ctx)
        if ftype not in (None, "geo"):
            self.fail(f"near works on a location field; {field} is {ftype}", f"{at}.field")
            return None
        try:
            near = read_near(value)
        except ValueError as exc:
            self.fail(str(exc), f"{at}.value")
            return None
        if near.postcode is not None and self.ctx.postcode(near.postcode) is None:
            self.fail(
                f"postcode {near.postcode} is not in this bucket's postcode table", f"{at}.value"
            )
            return None
        return {"field": field, "operator": "near", "value": near.as_dict()}

    def compare(self, at: str, field: str, operator: str, value: Any) -> dict[str, Any] | None:
        ftype = field_type(field, self.ctx)
        if ftype in ("geo", "object"):
            hint = "use near" if ftype == "geo" else "compare the fields inside it"
            self.fail(f"{field} is a {ftype} field: {hint}", f"{at}.field")
            return None
        is_list_op = operator in LIST_OPERATORS
        values = as_list(value) if is_list_op else [value]
        if is_list_op and not values:
            self.fail(f"{operator} takes a list of values", f"{at}.value")
            return None
        if len(values) > MAX_LIST:
            self.fail(f"at most {MAX_LIST} values", f"{at}.value")
            return None
        typed = []
        for item in values:
            item_type = ftype if ftype not in (None, "list") else inferred_type(item)
            try:
                typed.append(read_typed(item, item_type, self.ctx))
            except ValueError as exc:
                self.fail(f"{value!r} cannot be read as {item_type}: {exc}", f"{at}.value")
                return None
            spec = OPS[operator]
            if _kind(item_type) not in spec.value_kinds:
                self.fail(spec.refuse.format(operator=operator, kind=item_type), f"{at}.operator")
                return None
        return {"field": field, "operator": operator, "value": typed if is_list_op else typed[0]}

    def uri_rule(self, at: str, operator: str, value: Any) -> dict[str, Any] | None:
        if operator not in URI_OPERATORS:
            self.fail(f"uri takes {', '.join(URI_OPERATORS)}", f"{at}.operator")
            return None
        uris = []
        for item in as_list(value):
            parsed = parse_uri(item)
            if parsed is None or parsed.bucket != self.ctx.bucket:
                self.fail(f"{item!r} is not a record URI of this bucket", f"{at}.value")
                return None
            uris.append(str(parsed))
        is_list_op = operator in LIST_OPERATORS
        return {"field": "uri", "operator": operator, "value": uris if is_list_op else uris[0]}

    def segment_rule(self, at: str, operator: str, value: Any) -> dict[str, Any] | None:
        if operator == "equals":
            operator = "or_list"
        if operator not in SEGMENT_OPERATORS:
            self.fail(f"segment takes {', '.join(SEGMENT_OPERATORS)}", f"{at}.operator")
            return None
        uris = []
        for item in as_list(value):
            parsed = parse_uri(item)
            if parsed is None or parsed.resource_type != "segment":
                self.fail(f"{item!r} is not a segment URI", f"{at}.value")
                return None
            if parsed.bucket != self.ctx.bucket:
                self.fail(f"{item!r} belongs to another bucket", f"{at}.value")
                return None
            other = self.ctx.segment(parsed.uid)
            if other is None or other.deleted:
                self.fail(f"no segment {item} in this bucket", f"{at}.value")
                return None
            if other.resource_type != self.ctx.resource_type:
                self.fail(
                    f"{item} holds {other.resource_type} records, not {self.ctx.resource_type}",
                    f"{at}.value",
                )
                return None
            if parsed.uid == self.ctx.self_uid:
                self.fail("a segment cannot test membership of itself", f"{at}.value")
                return None
            try:
                membership(other, self.ctx, [self.ctx.self_uid or ""])
            except RuleError as exc:
                self.fail(exc.problem.description, f"{at}.value")
                return None
            uris.append(str(parsed))
        if not uris:
            self.fail("segment takes a list of segment URIs", f"{at}.value")
            return None
        return {"field": SEGMENT_FIELD, "operator": operator, "value": uris}


def normalise(raw: Any, ctx: Context) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Normalised rules and every problem found in them."""
    normaliser = Normaliser(ctx)
    rules = normaliser.rules(raw)
    return rules, normaliser.problems


def _kind(ftype: str) -> str:
    return "number" if ftype == "number" else "boolean" if ftype == "boolean" else "string"


def _value_for(value: Any, ftype: str, ctx: Context) -> Any:
    if ftype in ("date", "datetime") and is_relative(value):
        return resolve_relative(value, ctx.now, ftype)
    return value


def rule_filter(rule: dict[str, Any], ctx: Context, stack: list[str]) -> Node:
    """One normalised rule as a filter node, evaluated now."""
    field, operator, value = rule["field"], rule["operator"], rule["value"]
    form = OPS[operator].form
    if form == "raw":
        node, _ = read_raw(value, "rules")
        return node
    if form == "related":
        return related_filter(field, value, ctx, stack)
    if field == SEGMENT_FIELD:
        members = []
        for uri in value:
            parsed = parse_uri(uri)
            other = ctx.segment(parsed.uid) if parsed else None
            if other is None or other.deleted:
                members.append({"const": False})
            else:
                members.append(membership(other, ctx, stack))
        form = OPS[operator].form
        if form == "all":
            return all_of(members)
        joined = any_of(members)
        return negate(joined) if form == "none" else joined
    if field == "uri":
        uids = [parse_uri(u).uid for u in (value if isinstance(value, list) else [value])]  # type: ignore[union-attr]
        node = (
            leaf("uid", "in", "string", uids)
            if len(uids) > 1
            else leaf("uid", "eq", "string", uids[0])
        )
        return negate(node) if OPS[operator].form in ("not", "none") else node
    if form == "near":
        near = read_near(value)
        if near.postcode is not None:
            point = ctx.postcode(near.postcode)
            if point is None:
                return {"const": False}
            lat, lng = point
        else:
            lat, lng = near.lat, near.lng  # type: ignore[assignment]
        return {"near": {"field": field, "lat": lat, "lng": lng, "km": near.km}}
    declared = field_type(field, ctx)
    many_values = field not in SYSTEM_KINDS and declared in (None, "list")

    def test(op: str, item: Any) -> Node:
        ftype = declared if declared not in (None, "list") else inferred_type(item)
        return leaf(field, op, _kind(ftype), _value_for(item, ftype, ctx), any=many_values)

    spec = OPS[operator]
    form = spec.form
    assert spec.test is not None
    name = spec.test.name
    if form in ("one", "not"):
        node = test(name, value)
        return negate(node) if form == "not" else node
    if form == "all":
        return all_of([test(name, item) for item in value])
    # any / none: one test of the list form per kind of value.
    many = TESTS[name].many
    assert many is not None
    by_kind: dict[str, list[Any]] = {}
    for item in value:
        node = test(name, item)
        by_kind.setdefault(node["kind"], []).append(node["value"])
    joined = any_of([leaf(field, many, k, vs, any=many_values) for k, vs in by_kind.items()])
    return negate(joined) if form == "none" else joined


def having_node(having: Any) -> dict[str, Any]:
    """A normalised `having` as the filter document's: an aggregate, a test, a number."""
    if isinstance(having, str) or set(having) <= set(QUANTIFIERS):
        key, n = (having, None) if isinstance(having, str) else next(iter(having.items()))
        quantifier, fixed = QUANTIFIERS[key]
        count = fixed if n is None else n
        assert count is not None
        return {"aggregate": "count", "op": quantifier, "value": float(count)}
    aggregate = next(k for k in having if k in AGGREGATES)
    return {
        "aggregate": aggregate,
        "field": having[aggregate],
        "op": OPS[having["operator"]].test.name,  # type: ignore[union-attr]
        "value": float(having["value"]),
    }


def related_filter(field: str, value: dict[str, Any], ctx: Context, stack: list[str]) -> Node:
    other = ctx.related(field)
    parts = [rules_filter(value.get("where", []), other, stack)]
    if value.get("segment"):
        parsed = parse_uri(value["segment"])
        segment = ctx.segment(parsed.uid) if parsed else None
        if segment is None or segment.deleted:
            parts.append({"const": False})
        else:
            parts.append(membership(segment, other, stack))
    link = value.get("via") or ctx.link(field)
    return {
        "related": {
            "type": field,
            "link": link,
            "filter": all_of(parts),
            "having": having_node(value["having"]),
        }
    }


def rules_filter(rules: list[dict[str, Any]], ctx: Context, stack: list[str] | None = None) -> Node:
    return all_of([rule_filter(rule, ctx, stack or []) for rule in rules])


def listed(segment_uid: str, kind: str) -> Node:
    return {"listed": {"segment": segment_uid, "list": kind}}


@dataclass(frozen=True)
class Step:
    """One step of a segment's definition: its name (the `param` it comes from), what it
    says, and every condition up to and including it."""

    name: str
    info: dict[str, Any]
    node: Node


@dataclass(frozen=True)
class Composition:
    """How a segment's type, rules, include/exclude lists, parent and any extra rules
    combine (SPEC 2.2): written once, read by count, pages, preview, explain, jobs and
    exports (`node`) and by explain's funnel (`steps`)."""

    segment_type: str
    rules: tuple[tuple[dict[str, Any], Node], ...]
    include: Node
    exclude: Node
    parent: SegmentDef | None = None
    parent_node: Node | None = None
    extra: Node | None = None

    @property
    def steps(self) -> list[Step]:
        kind = self.segment_type
        out: list[Step] = []
        so_far: Node = {"const": kind != "auxiliary"}
        if kind in ("dynamic", "hybrid"):
            for index, (rule, node) in enumerate(self.rules):
                so_far = all_of([so_far, node])
                out.append(Step(f"rules[{index}]", {"rule": rule}, so_far))
        if kind in ("static", "hybrid"):
            so_far = self.include if kind == "static" else any_of([so_far, self.include])
            info = {"sentence": "plus the records listed in uris_include"}
            out.append(Step("uris_include", info, so_far))
            so_far = all_of([so_far, negate(self.exclude)])
            info = {"sentence": "minus the records listed in uris_exclude"}
            out.append(Step("uris_exclude", info, so_far))
        if self.parent is not None and self.parent_node is not None:
            so_far = all_of([so_far, self.parent_node])
            info = {"sentence": f"within the parent segment '{self.parent.name}'"}
            out.append(Step("parent_segment", info, so_far))
        if self.extra is not None:
            so_far = all_of([so_far, self.extra])
            out.append(Step("extra_rules", {"sentence": "and the job's own rules"}, so_far))
        return out

    @property
    def node(self) -> Node:
        steps = self.steps
        if steps:
            return steps[-1].node
        return {"const": self.segment_type != "auxiliary"}


def compose(
    segment: SegmentDef,
    ctx: Context,
    stack: list[str] | None = None,
    *,
    include: Node | None = None,
    exclude: Node | None = None,
    extra: list[dict[str, Any]] | None = None,
) -> Composition:
    """A segment's composition for this moment. `include`/`exclude`: its lists as given
    (an unsaved definition's), else the saved lists; `extra`: normalised rules a job adds."""
    stack = list(stack or [])
    if segment.uid and segment.uid in stack:
        raise RuleError(
            Problem(f"segment membership forms a cycle through {segment.name or segment.uid}")
        )
    if len(stack) > MAX_SEGMENT_DEPTH:
        raise RuleError(Problem("segments nest too deeply"))
    if segment.uid:
        stack.append(segment.uid)
    rules: tuple[tuple[dict[str, Any], Node], ...] = ()
    if segment.segment_type in ("dynamic", "hybrid"):
        rules = tuple((rule, rule_filter(rule, ctx, stack)) for rule in segment.rules)
    parent = ctx.segment(segment.parent_uid) if segment.parent_uid else None
    if parent is not None and parent.segment_type == "auxiliary":
        parent = None
    return Composition(
        segment_type=segment.segment_type,
        rules=rules,
        include=include if include is not None else listed(segment.uid, "include"),
        exclude=exclude if exclude is not None else listed(segment.uid, "exclude"),
        parent=parent,
        parent_node=membership(parent, ctx, stack) if parent is not None else None,
        extra=rules_filter(extra, ctx, stack) if extra else None,
    )


def membership(segment: SegmentDef, ctx: Context, stack: list[str] | None = None) -> Node:
    """Every condition a record must meet to be in `segment`, parents included."""
    return compose(segment, ctx, stack).node
