"""`raw` rules: a MongoDB-style filter document, read into filter nodes. Only the listed
operators exist; anything else, and anything that is not a JSON document, is refused."""

from __future__ import annotations

from typing import Any

from fold.errors import Problem
from fold.fields.paths import field_path_pattern
from fold.rules.filter import SYSTEM_KINDS, Node, all_of, any_of, leaf, negate
from fold.rules.ops import kind_of
from fold.rules.values import check_regex

# A raw filter's field: six levels of any length, and no all-digit step (an array index).
FIELD_RE = field_path_pattern(max_depth=6, max_step=None, numeric_steps=False)
LOGICAL = ("$and", "$or", "$nor", "$not")
FIELD_OPS = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$all", "$exists", "$size",
    "$regex", "$options", "$not",
)  # fmt: skip
ORDER = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
MAX_NODES = 200
MAX_DEPTH = 10


class RawReader:
    def __init__(self, param: str) -> None:
        self.param = param
        self.problems: list[Problem] = []
        self.nodes = 0

    def fail(self, description: str, where: str) -> Node:
        self.problems.append(Problem(description, f"{self.param}{where}"))
        return {"const": False}

    def document(self, doc: Any, where: str = "", depth: int = 0) -> Node:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            return self.fail(
                f"the filter is too large (depth {MAX_DEPTH}, {MAX_NODES} tests)", where
            )
        if not isinstance(doc, dict) or not doc:
            return self.fail("raw takes a non-empty JSON filter document, not SQL or text", where)
        parts: list[Node] = []
        for key, value in doc.items():
            at = f"{where}.{key}"
            if key in ("$and", "$or", "$nor"):
                if not isinstance(value, list) or not value:
                    parts.append(self.fail(f"{key} takes a non-empty list of documents", at))
                    continue
                children = [self.document(v, f"{at}[{i}]", depth + 1) for i, v in enumerate(value)]
                combined = all_of(children) if key == "$and" else any_of(children)
                parts.append(negate(combined) if key == "$nor" else combined)
            elif key == "$not":
                parts.append(negate(self.document(value, at, depth + 1)))
            elif key.startswith("$"):
                known = ", ".join(LOGICAL + FIELD_OPS[:-2])
                parts.append(
                    self.fail(
                        f"{key} is not an operator; use one of {known}",
                        at,
                    )
                )
            elif not FIELD_RE.match(key):
                parts.append(self.fail(f"{key!r} is not a field path", at))
            else:
                parts.append(self.condition(key, value, at, depth + 1))
        return all_of(parts)

    def condition(self, field: str, cond: Any, at: str, depth: int) -> Node:
        if SYSTEM_KINDS.get(field) == "datetime":
            return self.fail(f"compare {field} with a rule, not in raw", at)
        if isinstance(cond, dict) and any(k.startswith("$") for k in cond):
            parts = []
            for op, arg in cond.items():
                if op == "$options":
                    continue
                parts.append(self.operator(field, op, arg, cond, f"{at}.{op}", depth))
            return all_of(parts)
        if isinstance(cond, dict | list):
            return self.fail("compare a field with a value or with $-operators", at)
        return self.equals(field, cond, at)

    def equals(self, field: str, value: Any, at: str) -> Node:
        if value is None:
            return negate({"exists": field})
        kind = kind_of(value)
        if kind is None:
            return self.fail("values are text, numbers or true/false", at)
        if field in SYSTEM_KINDS and kind != "string":
            return self.fail(f"{field} holds text", at)
        return leaf(field, "eq", kind, value, any=field not in SYSTEM_KINDS)

    def one_of(self, field: str, values: Any, at: str) -> Node:
        if not isinstance(values, list) or not values:
            return self.fail("takes a non-empty list", at)
        return any_of([self.equals(field, v, at) for v in values])

    def operator(
        self, field: str, op: str, arg: Any, cond: dict[str, Any], at: str, depth: int
    ) -> Node:
        if op == "$eq":
            return self.equals(field, arg, at)
        if op == "$ne":
            return negate(self.equals(field, arg, at))
        if op in ORDER:
            kind = kind_of(arg)
            if kind not in ("string", "number") or (field in SYSTEM_KINDS and kind != "string"):
                return self.fail(f"{op} compares with a number or text", at)
            return leaf(field, ORDER[op], kind, arg, any=field not in SYSTEM_KINDS)
        if op == "$in":
            return self.one_of(field, arg, at)
        if op == "$nin":
            return negate(self.one_of(field, arg, at))
        if op == "$all":
            if not isinstance(arg, list) or not arg:
                return self.fail("takes a non-empty list", at)
            return all_of([self.equals(field, v, at) for v in arg])
        if op == "$exists":
            if not isinstance(arg, bool):
                return self.fail("$exists takes true or false", at)
            return {"exists": field} if arg else negate({"exists": field})
        if op == "$size":
            if isinstance(arg, bool) or not isinstance(arg, int) or arg < 0:
                return self.fail("$size takes a whole number", at)
            return {"size": {"field": field, "n": arg}}
        if op == "$regex":
            flags = cond.get("$options", "")
            if not isinstance(flags, str) or set(flags) - {"i"}:
                return self.fail("$options may only be 'i'", at.rsplit(".", 1)[0] + ".$options")
            try:
                pattern = check_regex(arg)
            except ValueError as exc:
                return self.fail(str(exc), at)
            return leaf(
                field,
                "regex",
                "string",
                {"pattern": pattern, "flags": flags},
                any=field not in SYSTEM_KINDS,
            )
        if op == "$not":
            if not isinstance(arg, dict):
                return self.fail("$not takes an operator document", at)
            return negate(self.condition(field, arg, at, depth + 1))
        return self.fail(f"{op} is not an operator; use one of {', '.join(FIELD_OPS)}", at)


def read_raw(doc: Any, param: str) -> tuple[Node, list[Problem]]:
    reader = RawReader(param)
    node = reader.document(doc)
    return node, reader.problems
