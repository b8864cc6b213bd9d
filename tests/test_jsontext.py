"""Reading outside JSON: a text whose value holds nothing to refuse is not walked, and every
text reads (or is refused, naming the same field) exactly as the full walk reads it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fold import jsontext
from fold.errors import Problem

TEXTS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "😀", "é", "\\u0000", "[{"]),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63) + 1, -(2**63), 10**18, 10**19]),
    st.floats(allow_nan=True, allow_infinity=True),
)
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXTS),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXTS, inner, max_size=3)),
    max_leaves=12,
)


def deep(levels: int) -> Any:
    value: Any = "x"
    for n in range(levels):
        value = [value] if n % 2 else {"k": value}
    return value


def walked(text: str | bytes, param: str = "") -> Any:
    """The reference: parse, then walk the whole value."""
    value = json.loads(text, parse_constant=jsontext.NotFinite, parse_float=jsontext._float)
    if problem := jsontext.problem_in(value, param):
        raise jsontext.JsonRefused(problem)
    return value


def outcome(read: Any, text: str | bytes) -> tuple[str, Any]:
    try:
        value = read(text, param="body.data") if read is jsontext.loads else read(text, "body.data")
    except jsontext.JsonRefused as exc:
        return "refused", (exc.problem.description, exc.problem.param)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return "malformed", type(exc).__name__
    return "value", json.dumps(value, sort_keys=True, default=str)


@settings(max_examples=400, deadline=None)
@given(VALUES, st.booleans(), st.booleans())
def test_reads_as_the_full_walk(value: Any, ascii_only: bool, as_bytes: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    given_text: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert outcome(jsontext.loads, given_text) == outcome(walked, given_text)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ('{"a": "b\\u0000"}', "body.data.a holds a NUL character"),
        ('{"a": ["\\ud800"]}', "body.data.a[0] holds a lone UTF-16 surrogate"),
        ('{"a": 9223372036854775808}', "body.data.a is a number too large to store"),
        ('{"a": -9223372036854775808}', "body.data.a is a number too large to store"),
        ('{"a": 1e400}', "body.data.a is not a finite number"),
        ('{"a": [NaN]}', "body.data.a[0] is not a finite number"),
        (json.dumps(deep(33)), "nested more than 32 levels deep"),
    ],
)
def test_refuses_naming_the_field(text: str, refused: str) -> None:
    with pytest.raises(jsontext.JsonRefused) as caught:
        jsontext.loads(text, param="body.data")
    assert refused in caught.value.problem.description


def test_plain_text_reads_as_json_does() -> None:
    text = '{"email": "a@b.test", "n": 9223372036854775807, "x": 1.5, "t": ["é", "😀"]}'
    assert jsontext.loads(text) == json.loads(text)
    assert jsontext.loads(text.encode()) == json.loads(text)
    assert jsontext.loads(json.dumps(deep(31))) == deep(31)
    assert math.isclose(jsontext.loads("1e308"), 1e308)
    with pytest.raises(json.JSONDecodeError, match="BOM"):
        jsontext.loads("\ufeff{}")
    assert jsontext.loads("\ufeff{}".encode()) == {}  # bytes: the BOM says the encoding
    assert isinstance(jsontext.problem_in({"a": "\x00"}), Problem)
