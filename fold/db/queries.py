"""What every repository asks of a SELECT alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


def count(session: Session, stmt: Select[Any]) -> int:
    """How many rows `stmt` selects."""
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
