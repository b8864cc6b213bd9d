"""The column tests map every saved array, however small, so that what they check of
mapping and sharing holds at their scale (a server reads arrays below
`persist.MAP_AT_LEAST`; tests/columns/test_persist.py checks that too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fold.columns import persist


@pytest.fixture(autouse=True)
def map_every_array() -> Iterator[None]:
    kept = persist.MAP_AT_LEAST
    persist.MAP_AT_LEAST = 0
    try:
        yield
    finally:
        persist.MAP_AT_LEAST = kept
