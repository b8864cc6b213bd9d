"""Paging as SPEC 2.6 has it: `page` from 1, `page_size` 1..1000, default 25."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fold.errors import ValidationFailed

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 25


def read_int(raw: Any, *, param: str, default: int, low: int, high: int | None = None) -> int:
    if raw is None or raw == "":
        return default
    try:
        # The reference types paging as `number`: a whole decimal such as 25.0 is accepted.
        number = float(raw.strip()) if isinstance(raw, str) and "." in raw else raw
        if isinstance(raw, bool) or (isinstance(number, float) and not number.is_integer()):
            raise ValueError
        value = int(number)
    except (TypeError, ValueError, OverflowError):
        raise ValidationFailed(f"'{param}' must be a whole number.", param=param) from None
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ValidationFailed(f"'{param}' must be {bound}; got {value}.", param=param)
    return value


@dataclass(frozen=True)
class Paging:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def read(cls, params: dict[str, Any]) -> Paging:
        return cls(
            page=read_int(params.get("page"), param="page", default=1, low=1, high=10_000_000),
            page_size=read_int(
                params.get("page_size"),
                param="page_size",
                default=DEFAULT_PAGE_SIZE,
                low=1,
                high=MAX_PAGE_SIZE,
            ),
        )

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    def envelope(self, total: int) -> dict[str, int]:
        return {
            "page": self.page,
            "page_size": self.page_size,
            "total": total,
            "pages": math.ceil(total / self.page_size) if total else 0,
        }
