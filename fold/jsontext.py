"""Reading JSON text that comes from outside: bodies, import lines, JSON inside form fields
and query strings. JSON has no NaN or Infinity and Fold stores text in UTF-8 on two
databases, so values that either database would refuse or store as poison are refused here,
naming the field, before anything reads them."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from fold.errors import Problem

MAX_DEPTH = 32
"""Nesting levels of objects and arrays; a few dozen is plenty for any record or rule."""

MAX_INTEGER = 2**63 - 1
"""Integers beyond a signed 64-bit integer are refused: neither database nor the column
index reads them exactly."""

BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
"""NUL (PostgreSQL cannot store it in text) and lone UTF-16 surrogates (not UTF-8)."""


class NotFinite:
    """Stands for a NaN, Infinity or overflowing number until the walk names its field."""

    def __init__(self, text: str) -> None:
        self.text = text


class _Parse(threading.local):
    """Whether the text this thread is parsing held a number or constant that
    `problem_in` refuses (set by the decoder's hooks, read by `loads`)."""

    odd = False


_parse = _Parse()


def _constant(text: str) -> NotFinite:
    _parse.odd = True
    return NotFinite(text)


def _float(text: str) -> float | NotFinite:
    value = float(text)
    if value - value == 0:
        return value
    _parse.odd = True
    return NotFinite(text)


def _int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_INTEGER:
        _parse.odd = True
    return value


# json.loads with hooks makes a decoder per call; this one is made once.
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float, parse_int=_int)
# Escapes that decode to NUL or to a surrogate (looked for only in text holding "\u").
_BAD_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(json.JSONDecodeError):
    """Well-formed JSON holding something Fold does not store. A JSONDecodeError, so code
    that refuses malformed JSON refuses this too; `problem` names the field."""

    def __init__(self, problem: Problem, text: str = "") -> None:
        super().__init__(problem.description, text, 0)
        self.problem = problem


def text_problem(value: str, param: str) -> Problem | None:
    """A Problem when `value` holds NUL or a lone surrogate."""
    found = BAD_TEXT.search(value)
    if found is None:
        return None
    what = "a NUL character" if found.group() == "\x00" else "a lone UTF-16 surrogate"
    return Problem(f"{param} holds {what}, which is not text Fold can store", param)


def _join(at: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{at}[{key}]"
    return f"{at}.{key}" if at else key


def problem_in(value: Any, param: str = "") -> Problem | None:
    """The first thing in an already-parsed value that Fold refuses, or None; `param` is the
    name of the value itself (empty for a body, whose fields are named alone)."""
    stack: list[tuple[Any, str, int]] = [(value, param, 0)]
    while stack:
        item, at, depth = stack.pop()
        name = at or "body"
        if isinstance(item, str):
            if problem := text_problem(item, name):
                return problem
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INTEGER:
                return Problem(f"{name} is a number too large to store", name)
        elif isinstance(item, float | NotFinite):
            if isinstance(item, NotFinite) or item - item != 0:
                return Problem(f"{name} is not a finite number; JSON has no NaN or Infinity", name)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return Problem(f"{name} is nested more than {MAX_DEPTH} levels deep", name)
            if isinstance(item, dict):
                for key, child in item.items():
                    key_text = str(key)
                    if problem := text_problem(key_text, f"{name} (a field name)"):
                        return Problem(problem.description, name)
                    stack.append((child, _join(at, key_text), depth + 1))
            else:
                for index, child in enumerate(item):
                    stack.append((child, _join(at, index), depth + 1))
    return None


def loads(text: str | bytes, *, param: str = "") -> Any:
    """The parsed value; JSONDecodeError when malformed, JsonRefused (a JSONDecodeError
    naming the field) when it holds NaN, Infinity, an overflowing number, NUL, a lone
    surrogate, or nests too deep."""
    if isinstance(text, str):
        if text.startswith("\ufeff"):  # as json.loads says it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    else:
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    _parse.odd = False
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        name = param or "body"
        raise JsonRefused(
            Problem(f"{name} is nested more than {MAX_DEPTH} levels deep", name)
        ) from None
    if not _parse.odd and _plain(text):
        return value  # nothing in it `problem_in` could refuse
    if problem := problem_in(value, param):
        raise JsonRefused(problem)
    return value


def _plain(text: str) -> bool:
    """Whether JSON text, whose numbers and constants are all ones Fold stores, holds
    nothing `problem_in` refuses: no NUL or surrogate (as a character or an escape), and
    fewer brackets than MAX_DEPTH. Cheap checks first; `problem_in` walks the rest."""
    return (
        "\x00" not in text
        and ("\\u" not in text or _BAD_ESCAPE.search(text) is None)
        and (text.isascii() or _SURROGATE.search(text) is None)
        and text.count("[") + text.count("{") < MAX_DEPTH
    )
