"""The functions compiled rules call that SQLite lacks, for the engine to register on each
SQLite connection (`db.engine.make_engine(..., sqlite_functions=FUNCTIONS)`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fold.rules.ops import regex_search


def _regexp(pattern: str, flags: str, value: Any) -> int:
    # `$regex`: SQLite has no regular expressions of its own, so it uses the same RE2
    # matching as the rules' Python twin.
    return 1 if regex_search(pattern, flags, value) else 0


# name -> (number of arguments, function)
FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {"fold_regexp": (3, _regexp)}
