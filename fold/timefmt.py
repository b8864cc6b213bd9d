"""Date-times as SPEC 1 writes them: UTC, six fractional digits, no offset."""

from __future__ import annotations

from datetime import UTC, date, datetime

OUT_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (what the database columns hold)."""
    return datetime.now(UTC).replace(tzinfo=None)


def format_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime(OUT_FORMAT)


def parse_datetime(text: str) -> datetime:
    """Any ISO 8601 date or date-time, as naive UTC; ValueError if it is not one."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    if len(raw) == 10:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time())
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_date(text: str) -> date:
    """An ISO 8601 date; a date-time is read as its (UTC) date."""
    raw = text.strip()
    if len(raw) == 10:
        return date.fromisoformat(raw)
    return parse_datetime(raw).date()
