"""Rule values: relative dates, kinds of fields, `near` points and safe regular expressions."""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import re2

RELATIVE_RE = re.compile(r"^(today|now)(?:([+-])(\d{1,5})(d|wk|m|y))?$")
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_REGEX = 200


def is_relative(value: Any) -> bool:
    return isinstance(value, str) and RELATIVE_RE.match(value.strip().lower()) is not None


def _shift_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def resolve_relative(value: str, now: datetime, kind: str) -> str:
    """`today-30d` and friends as a date (date fields) or date-time (date-time fields)."""
    match = RELATIVE_RE.match(value.strip().lower())
    assert match is not None
    base, sign, amount, unit = match.groups()
    moment = now if base == "now" else datetime.combine(now.date(), datetime.min.time())
    if amount:
        n = int(amount) * (1 if sign == "+" else -1)
        if unit == "d":
            moment += timedelta(days=n)
        elif unit == "wk":
            moment += timedelta(weeks=n)
        else:
            months = n if unit == "m" else 12 * n
            moment = datetime.combine(_shift_months(moment.date(), months), moment.time())
    if kind == "date":
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


@dataclass(frozen=True)
class NearValue:
    distance: float
    unit: str  # "km" or "mi"
    lat: float | None = None
    lng: float | None = None
    postcode: str | None = None

    @property
    def km(self) -> float:
        from fold.rules.filter import KM_PER_MILE

        return self.distance * KM_PER_MILE if self.unit == "mi" else self.distance

    def as_dict(self) -> dict[str, Any]:
        if self.postcode is not None:
            return {"postcode": self.postcode, "distance": self.distance, "unit": self.unit}
        return {"lat": self.lat, "lng": self.lng, "distance": self.distance, "unit": self.unit}


def _distance(raw: Any) -> tuple[float, str]:
    unit = "km"
    if isinstance(raw, str):
        text = raw.strip().lower().replace(" ", "")
        for suffix, name in (("miles", "mi"), ("mile", "mi"), ("mi", "mi"), ("km", "km")):
            if text.endswith(suffix):
                text, unit = text[: -len(suffix)], name
                break
        raw = text
    if isinstance(raw, bool):
        raise ValueError("the distance must be a number")
    try:
        distance = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{raw!r} is not a distance (e.g. 10, 10km or 5mi)") from None
    if not 0 < distance <= 20_000:
        raise ValueError("the distance must be above 0 and at most 20,000")
    return distance, unit


def _coordinate(raw: Any, low: float, high: float, name: str) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"{name} must be a number")
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number") from None
    if not low <= number <= high:
        raise ValueError(f"{name} must lie between {low:g} and {high:g}")
    return number


def read_near(raw: Any) -> NearValue:
    """`"lat,lng,distance"`, `"POSTCODE,distance"` or the object forms."""
    if isinstance(raw, str):
        parts = [p.strip() for p in raw.split(",")]
        if len(parts) == 3:
            raw = {"lat": parts[0], "lng": parts[1], "distance": parts[2]}
        elif len(parts) == 2:
            raw = {"postcode": parts[0], "distance": parts[1]}
        else:
            raise ValueError("write near as 'lat,lng,distance' or 'POSTCODE,distance'")
    if not isinstance(raw, dict) or "distance" not in raw:
        raise ValueError("near needs a point or a postcode, and a distance")
    distance, unit = _distance(raw["distance"])
    if raw.get("unit") in ("km", "mi"):
        unit = raw["unit"]
    if raw.get("postcode") not in (None, ""):
        code = str(raw["postcode"]).strip().upper()
        if not 2 <= len(code) <= 10:
            raise ValueError(f"{code!r} is not a postcode")
        return NearValue(distance, unit, postcode=code)
    if "lat" not in raw or "lng" not in raw:
        raise ValueError("near needs lat and lng, or a postcode")
    return NearValue(
        distance,
        unit,
        lat=_coordinate(raw["lat"], -90, 90, "lat"),
        lng=_coordinate(raw["lng"], -180, 180, "lng"),
    )


_QUANT = set("*+?{")
_ALLOWED_ESCAPES = set("dDsS.\\-+*?()[]{}|^$/")


def check_regex(pattern: Any) -> str:
    """A pattern from the safe subset both Python and PostgreSQL read alike: no
    back-references, look-arounds or flags inside, and no quantified group that itself
    holds a quantifier (the shape of catastrophic backtracking)."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("$regex takes a non-empty string")
    if len(pattern) > MAX_REGEX:
        raise ValueError(f"$regex is limited to {MAX_REGEX} characters")
    groups: list[bool] = []  # per open group: does it hold a quantifier?
    last_group_quantified = False
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1] not in _ALLOWED_ESCAPES:
                raise ValueError(f"escape at position {i} is not allowed in $regex")
            i += 2
            continue
        if in_class:
            if ch == "[" and pattern[i + 1 : i + 2] == ":":
                raise ValueError("character class names are not allowed in $regex")
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            if pattern[i + 1 : i + 2] == "?":
                raise ValueError("(? constructs are not allowed in $regex")
            groups.append(False)
        elif ch == ")":
            if not groups:
                raise ValueError("unbalanced ) in $regex")
            last_group_quantified = groups.pop()
            if groups and last_group_quantified:
                groups[-1] = True
            if pattern[i + 1 : i + 2] in _QUANT and pattern[i + 1 : i + 2] != "":
                if last_group_quantified:
                    raise ValueError("a repeated group may not itself repeat in $regex")
                groups[-1:] = [True] * len(groups[-1:])
        elif ch in _QUANT and groups:
            groups[-1] = True
        i += 1
    if groups or in_class:
        raise ValueError("unbalanced brackets in $regex")
    try:
        compiled_regex(pattern, False)
        compiled_regex(pattern, True)
    except re2.error as exc:
        raise ValueError(f"$regex does not compile: {exc}") from None
    return pattern


def _fold_class(body: str) -> str:
    """A bracket expression's body with the lower case of each upper-case ASCII letter it
    names added, singly or as a range (`A-F` adds `a-f`)."""
    extra: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        low = high = body[i]
        if body[i + 1 : i + 2] == "-" and i + 2 < len(body) and body[i + 2] != "\\":
            high = body[i + 2]
            i += 3
        else:
            i += 1
        first, last = max(low, "A"), min(high, "Z")
        if first <= last:
            extra.append(first.lower() if first == last else f"{first.lower()}-{last.lower()}")
    return body + "".join(extra)


def folded_pattern(pattern: str) -> str:
    """The pattern for a value lower-cased in ASCII, as the `i` option reads it in
    PostgreSQL under the "C" collation: ASCII letters only, never é/É or the Kelvin sign."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[":
            end = i + 1
            if pattern[end : end + 1] == "^":
                end += 1
            head = end
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            out.append(pattern[i:head] + _fold_class(pattern[head:end]) + "]")
            i = end + 1
            continue
        out.append(ch.lower() if "A" <= ch <= "Z" else ch)
        i += 1
    return "".join(out)


def _regex_options() -> Any:
    options = re2.Options()
    # `.` matches a newline as in PostgreSQL; RE2's `$` is already the end of the text.
    options.dot_nl = True
    options.log_errors = False
    return options


REGEX_OPTIONS = _regex_options()


@functools.lru_cache(maxsize=512)
def compiled_regex(pattern: str, fold_case: bool) -> Any:
    """RE2, whose matching takes time linear in the value whatever the pattern, so no
    pattern can stall a worker. With `fold_case` the value must be lower-cased in ASCII."""
    return re2.compile(folded_pattern(pattern) if fold_case else pattern, REGEX_OPTIONS)
