"""Uids and search text kept as flat data answer as a list of Python strings would."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fold.columns.rowdata import SearchText, Uids, grown

# Awkward text: non-ASCII, surrogates, NUL, empty.
TEXT = st.text(
    alphabet=st.sampled_from(["a", "b", "é", "ß", "😀", "\x00", " ", "\ud800"]),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    first=st.lists(TEXT, unique=True, max_size=12),
    later=st.lists(TEXT, unique=True, max_size=6),
    asked=st.lists(TEXT, max_size=8),
)
def test_uids_find_rows_as_a_dict_would(
    first: list[str], later: list[str], asked: list[str]
) -> None:
    later = [u for u in later if u not in first]
    uids = Uids.of(first)
    uids.extend(later)
    every = [*first, *later]
    row_of = {u: i for i, u in enumerate(every)}
    assert len(uids) == len(every)
    assert [uids[i] for i in range(len(every))] == every
    assert uids.tolist() == every
    assert uids.take(list(range(len(every)))) == every
    assert uids.locate(asked).tolist() == [row_of.get(u, -1) for u in asked]
    assert uids.rows(asked).tolist() == [row_of[u] for u in asked if u in row_of]
    mask = np.array([i % 2 == 0 for i in range(len(every))], dtype=bool)
    assert uids.in_uid_order(mask) == sorted(u for i, u in enumerate(every) if i % 2 == 0)
    again = uids.packed_all()
    assert again.tolist() == every
    assert again.locate(asked).tolist() == [row_of.get(u, -1) for u in asked]


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(TEXT, max_size=10),
    changes=st.dictionaries(st.integers(0, 14), TEXT, max_size=6),
    grow=st.integers(0, 4),
    words=st.lists(TEXT, min_size=1, max_size=4),
)
def test_search_text_finds_words_as_in_would(
    texts: list[str], changes: dict[int, str], grow: int, words: list[str]
) -> None:
    search = SearchText.of(texts)
    search.grow(grow)
    plain = [*texts, *[""] * grow]
    for row, text in changes.items():
        if row < len(plain):
            search[row] = text
            plain[row] = text
    assert len(search) == len(plain)
    assert [search[i] for i in range(len(plain))] == plain
    for word in words:
        assert search.holders(word).tolist() == [word in t for t in plain]
    blob, offsets = search.packed()
    again = SearchText(blob, offsets)
    assert [again[i] for i in range(len(plain))] == plain
    for word in words:
        assert again.holders(word).tolist() == [word in t for t in plain]


def test_an_array_grows_in_the_room_after_it_then_by_copy() -> None:
    room = np.zeros(6, dtype=np.int32)
    rows = room[:3]
    rows[:] = [1, 2, 3]
    longer = grown(rows, 2)
    assert longer.base is room and longer.tolist() == [1, 2, 3, 0, 0]
    flags = grown(np.zeros(6, dtype=bool)[:3], 2, True)
    assert flags.tolist() == [False, False, False, True, True]
    copied = grown(longer, 2)
    assert not np.shares_memory(copied, room) and copied.tolist() == [1, 2, 3, 0, 0, 0, 0]


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(TEXT, max_size=10),
    changes=st.dictionaries(st.integers(0, 14), TEXT, max_size=8),
    grow=st.integers(0, 4),
)
def test_search_texts_set_together_are_those_set_one_by_one(
    texts: list[str], changes: dict[int, str], grow: int
) -> None:
    one_by_one, together = SearchText.of(texts), SearchText.of(texts)
    one_by_one.grow(grow)
    together.grow(grow)
    pairs = [(row, text) for row, text in changes.items() if row < len(texts) + grow]
    for row, text in pairs:
        one_by_one[row] = text
    together.set_many(np.array([r for r, _ in pairs], dtype=np.int64), [t for _, t in pairs])
    size = len(texts) + grow
    assert [together[i] for i in range(size)] == [one_by_one[i] for i in range(size)]
    # A text set back to what the blob holds is not kept twice.
    assert together.changed == one_by_one.changed
