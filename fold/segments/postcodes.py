"""A bucket's postcode table: postcode centres that `near` rules can name."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fold.segments import repository
from fold.segments.repository import normalise_postcode

BATCH = 5000


@dataclass
class LoadResult:
    loaded: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _row(line: int, row: dict[str, Any], result: LoadResult) -> tuple[str, float, float] | None:
    try:
        code = normalise_postcode(str(row["postcode"]))
        lat, lng = float(row["lat"]), float(row["lng"])
    except (KeyError, TypeError, ValueError):
        result.failed += 1
        if len(result.errors) < 50:
            result.errors.append(f"line {line}: needs postcode, lat and lng")
        return None
    if not (2 <= len(code) <= 12 and -90 <= lat <= 90 and -180 <= lng <= 180):
        result.failed += 1
        if len(result.errors) < 50:
            result.errors.append(
                f"line {line}: {row['postcode']!r} or its coordinates are out of range"
            )
        return None
    return code, lat, lng


def load_postcodes(
    session: Session, *, bucket: str, lines: Iterable[str], replace: bool = True
) -> LoadResult:
    """Load a CSV with a `postcode,lat,lng` header; the bucket's table is replaced."""
    result = LoadResult()
    if replace:
        repository.delete_postcodes(session, bucket=bucket)
    seen: dict[str, dict[str, Any]] = {}
    reader = csv.DictReader(lines)
    for row in reader:
        parsed = _row(reader.line_num, row, result)
        if parsed is None:
            continue
        code, lat, lng = parsed
        seen[code] = {"bucket": bucket, "postcode": code, "lat": lat, "lng": lng}
        if len(seen) >= BATCH:
            repository.insert_postcodes(session, list(seen.values()))
            result.loaded += len(seen)
            seen.clear()
    if seen:
        repository.insert_postcodes(session, list(seen.values()))
        result.loaded += len(seen)
    return result
