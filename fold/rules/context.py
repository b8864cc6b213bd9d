"""What compiling rules needs to know from outside: the field schema, other segments,
postcodes and the time. The service layer fills it from the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fold.fields.schema import TypeSchema


@dataclass(frozen=True)
class SegmentDef:
    """A segment as the compiler sees it."""

    uid: str
    resource_type: str
    segment_type: str
    rules: list[dict[str, Any]]
    parent_uid: str | None = None
    deleted: bool = False
    name: str = ""


@dataclass
class Context:
    bucket: str
    resource_type: str
    schema: TypeSchema
    now: datetime
    segment: Callable[[str], SegmentDef | None] = lambda uid: None
    postcode: Callable[[str], tuple[float, float] | None] = lambda code: None
    self_uid: str | None = None
