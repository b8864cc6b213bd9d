"""What Fold derives from a record on every write: display value, search text, unique key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fold.fields.paths import MISSING, get_path
from fold.fields.schema import TypeSchema

CURRENCY_SIGNS = {"GBP": "£", "EUR": "€", "USD": "$", "AUD": "A$", "NZD": "NZ$", "CAD": "C$"}


def value_at(data: dict[str, Any], path: str) -> Any:
    """The value at a dotted path, or None where any step is missing."""
    value = get_path(data, path)
    return None if value is MISSING else value


def _text(data: dict[str, Any], *paths: str) -> str:
    parts = []
    for path in paths:
        value = get_path(data, path)
        if value is not MISSING and value is not None and value != "":
            text = str(value).strip()
            if text:
                parts.append(text)
    return " ".join(parts)


def _person(data: dict[str, Any]) -> str:
    first = _text(data, "preferred_name") or _text(data, "first_name")
    name = " ".join(p for p in (_text(data, "title"), first, _text(data, "last_name")) if p)
    return name or _text(data, "email")


def _money(data: dict[str, Any]) -> str:
    amount = value_at(data, "amount")
    if not isinstance(amount, int | float) or isinstance(amount, bool):
        return ""
    currency = str(value_at(data, "currency") or "GBP").upper()
    sign = CURRENCY_SIGNS.get(currency)
    return f"{sign}{amount:,.2f}" if sign else f"{amount:,.2f} {currency}"


def _payment(data: dict[str, Any]) -> str:
    money, when = _money(data), _text(data, "date")
    if money and when:
        return f"{money} on {when}"
    return money or when


def _membership(data: dict[str, Any]) -> str:
    kind = _text(data, "membership_type") or "Membership"
    number = _text(data, "membership_number")
    status = _text(data, "status")
    label = f"{kind} {number}".strip()
    return f"{label} ({status})" if status else label


def _booking(data: dict[str, Any]) -> str:
    event, when = _text(data, "event_name"), _text(data, "event_date")
    return f"{event} on {when}" if event and when else event or when


def _message(data: dict[str, Any]) -> str:
    return _text(data, "subject") or _text(data, "channel", "to")


def _group_member(data: dict[str, Any]) -> str:
    return _text(data, "role") or "Member"


DERIVERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "person": _person,
    "payment": _payment,
    "membership": _membership,
    "booking": _booking,
    "message": _message,
    "group_member": _group_member,
    "journal": lambda d: _text(d, "title") or _text(d, "file_name"),
    "sheep_event": lambda d: _text(d, "description"),
}

# The fields each type's deriver reads (kept beside DERIVERS: a deriver that reads another
# field must name it here too; tests/fields check them against each other).
DERIVER_FIELDS: dict[str, tuple[str, ...]] = {
    "person": ("preferred_name", "first_name", "title", "last_name", "email"),
    "payment": ("amount", "currency", "date"),
    "membership": ("membership_type", "membership_number", "status"),
    "booking": ("event_name", "event_date"),
    "message": ("subject", "channel", "to"),
    "group_member": ("role",),
    "journal": ("title", "file_name"),
    "sheep_event": ("description",),
}


def derived_from(schema: TypeSchema) -> frozenset[str]:
    """The top-level fields a record's display value, search text and unique key are read
    from: a write that changes no other field leaves all three as they were."""
    paths = [
        *DERIVER_FIELDS.get(schema.resource_type, ()),
        "name",
        *schema.search_fields,
        *([schema.unique_field] if schema.unique_field else []),
    ]
    return frozenset(p.split(".")[0] for p in paths)


def display_value(schema: TypeSchema, data: dict[str, Any], uid: str) -> str:
    """The human-readable name of a record; its type and uid when nothing better exists."""
    derive = DERIVERS.get(schema.resource_type)
    value = (derive(data) if derive else "") or _text(data, "name")
    return value[:500] if value else f"{schema.name_singular} {uid}"


def search_text(schema: TypeSchema, data: dict[str, Any], display: str) -> str:
    """Lower-cased text that `q` searches: the display value and the type's search fields."""
    parts = [display]
    for path in schema.search_fields:
        value = value_at(data, path)
        if value not in (None, ""):
            parts.append(str(value))
            if path.endswith("postal_code"):
                parts.append(str(value).replace(" ", ""))
    return " ".join(parts).lower()


def unique_key(schema: TypeSchema, data: dict[str, Any]) -> str | None:
    if schema.unique_field is None:
        return None
    value = value_at(data, schema.unique_field)
    if value in (None, ""):
        return None
    return str(value).strip().lower()
