"""Repairs of stored data that earlier versions let in, run by migrations."""

from __future__ import annotations

import json
import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinite number replaced by null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def scrub_not_finite(connection: Connection, table: str, column: str, keys: list[str]) -> int:
    """SQLite stored NaN and Infinity as given, text its own JSON functions then refuse to
    read ("malformed JSON"), so one such row broke every query over its table. Each such
    value becomes null; answers how many rows changed. PostgreSQL's jsonb never held them."""
    if connection.dialect.name != "sqlite":
        return 0
    target = sa.table(table, *(sa.column(k) for k in keys), sa.column(column, sa.Text()))
    rows = connection.execute(
        sa.select(*(target.c[k] for k in keys), target.c[column]).where(
            target.c[column].is_not(None), sa.func.json_valid(target.c[column]) == 0
        )
    ).all()
    changed = 0
    for *key, text in rows:
        try:
            document = json.loads(text)
        except ValueError:
            continue
        condition = sa.and_(*(target.c[k] == v for k, v in zip(keys, key, strict=True)))
        connection.execute(
            sa.update(target).where(condition).values({column: json.dumps(_finite(document))})
        )
        changed += 1
    return changed
