"""Reading values as field types."""

from __future__ import annotations

import pytest

from fold.fields.types import read_value


@pytest.mark.parametrize(
    ("field_type", "raw", "expected"),
    [
        ("number", "12", 12),
        ("number", " 1,250.50 ", 1250.5),
        ("number", 3.5, 3.5),
        ("boolean", "Yes", True),
        ("boolean", 0, False),
        ("date", "2024-02-29", "2024-02-29"),
        ("date", "2024-02-29T23:00:00-02:00", "2024-03-01"),
        ("datetime", "2024-01-01T12:00:00+01:00", "2024-01-01T11:00:00.000000"),
        ("datetime", "2024-01-01", "2024-01-01T00:00:00.000000"),
        ("list", "a, b ,", ["a", "b"]),
        ("geo", {"lat": "51.5", "lng": -0.1}, {"lat": 51.5, "lng": -0.1}),
        ("uri", "/b1/person/" + "a" * 24, "/b1/person/" + "a" * 24 + "/"),
        ("string", 42, "42"),
        ("number", "", None),
        ("string", "", ""),
    ],
)
def test_reads(field_type: str, raw: object, expected: object) -> None:
    assert read_value(field_type, raw) == expected


@pytest.mark.parametrize(
    ("field_type", "raw"),
    [
        ("number", "twelve"),
        ("number", True),
        ("number", "nan"),
        ("boolean", "maybe"),
        ("date", "31/12/2024"),
        ("date", 20240101),
        ("datetime", "noon"),
        ("list", [{"a": 1}]),
        ("geo", "91,0"),
        ("geo", "1,2,3"),
        ("uri", "/b1/person/123/"),
        ("object", [1]),
        ("string", {"a": 1}),
    ],
)
def test_refuses(field_type: str, raw: object) -> None:
    with pytest.raises(ValueError):
        read_value(field_type, raw)
