"""A related record's link finds its row exactly as the URI comparison in SQL would."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fold.columns.rowdata import Uids
from fold.columns.store import Store
from fold.columns.vector import _named_rows

PREFIX = "/b1/person/"
UIDS = ["abc", "abd", "zz9", "abe", "f00"]  # uids are hex (fold.ids)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.sampled_from([f"{PREFIX}{u}/" for u in [*UIDS, "nope", "", "a/b", "é1", "ab\x00"]]),
            st.sampled_from([PREFIX, f"{PREFIX}abc", "/b2/person/abc/", "/b1/org/abc/"]),
            st.text(alphabet="/b1personacé\x00", max_size=16),
            st.integers(),
            st.none(),
            st.lists(st.integers(), max_size=2),
        ),
        max_size=12,
    ),
    later=st.booleans(),
)
def test_links_name_the_rows_whose_uri_they_hold(values: list[Any], later: bool) -> None:
    store = Store("b1", "person")
    packed = UIDS[:3] if later else UIDS
    store.uids = Uids.of(packed)
    if later:  # rows added after the store was opened
        store.uids.extend(UIDS[3:])
    every = [*packed, *(UIDS[3:] if later else [])]
    row_of = {u: i for i, u in enumerate(every)}

    def expected(value: Any) -> int:
        if isinstance(value, str) and value.startswith(PREFIX) and value.endswith("/"):
            return row_of.get(value[len(PREFIX) : -1], -1)
        return -1

    assert _named_rows(store, values).tolist() == [expected(v) for v in values]
