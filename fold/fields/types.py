"""Reading a value as a field type. One function per type, all in one table.

Each reader takes the raw value and returns it in its stored form, or raises ValueError
with a sentence a user can act on. Strings from CSV and forms are read too, so "12.5"
is a number and "yes" a boolean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fold.ids import make_uri, parse_uri
from fold.jsontext import MAX_INTEGER
from fold.timefmt import format_datetime, parse_date, parse_datetime

FIELD_TYPES = ("string", "number", "boolean", "date", "datetime", "list", "geo", "uri", "object")

_TRUE = {"true", "yes", "y", "1", "on", "t"}
_FALSE = {"false", "no", "n", "0", "off", "f"}


def read_string(value: Any) -> str:
    if isinstance(value, bool | dict | list):
        raise ValueError("expected text")
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("expected text")
    return value


def read_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise ValueError("a number too large to store")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            whole = int(text)
        except ValueError:
            pass
        else:
            return read_number(whole)
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return number
    raise ValueError("expected a number")


def read_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"{value!r} is not true or false")


def read_date(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a date as YYYY-MM-DD")
    try:
        return parse_date(value).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)") from None


def read_datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time")
    try:
        return format_datetime(parse_datetime(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None


def read_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ValueError("expected a list")
    for item in value:
        if isinstance(item, dict | list) or item is None:
            raise ValueError("list items must be text, numbers or true/false")
    return value


def read_geo(value: Any) -> dict[str, float]:
    lat: Any
    lng: Any
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        if len(parts) != 2:
            raise ValueError('expected \'lat,lng\' or {"lat": .., "lng": ..}')
        lat, lng = parts
    elif isinstance(value, dict) and set(value) == {"lat", "lng"}:
        lat, lng = value["lat"], value["lng"]
    else:
        raise ValueError('expected \'lat,lng\' or {"lat": .., "lng": ..}')
    lat_f, lng_f = float(read_number(lat)), float(read_number(lng))
    if not (-90 <= lat_f <= 90 and -180 <= lng_f <= 180):
        raise ValueError("latitude must lie in -90..90 and longitude in -180..180")
    return {"lat": lat_f, "lng": lng_f}


def read_uri(value: Any) -> str:
    uri = parse_uri(value)
    if uri is None:
        raise ValueError(f"{value!r} is not a record URI like /bucket/person/<24-hex uid>/")
    return make_uri(uri.bucket, uri.resource_type, uri.uid)


def read_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("expected an object")
    return value


READERS: dict[str, Callable[[Any], Any]] = {
    "string": read_string,
    "number": read_number,
    "boolean": read_boolean,
    "date": read_date,
    "datetime": read_datetime,
    "list": read_list,
    "geo": read_geo,
    "uri": read_uri,
    "object": read_object,
}


def read_value(field_type: str, value: Any) -> Any:
    """`value` read as `field_type`; None and an empty string clear the field."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip() == "" and field_type != "string":
        return None
    return READERS[field_type](value)
