"""A store's per-row data that is not dictionary codes: each row's uid and its search text.

Both are kept as flat numpy data rather than a million Python strings: a store opened from
disk maps the files and is ready at once, and every process that maps them shares their
pages through the page cache. Rows written after that (a new record, a changed search
text) live beside the mapped data in this process only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

STRINGS = np.dtypes.StringDType()
Rows = np.ndarray[Any, np.dtype[np.int64]]
Mask = np.ndarray[Any, np.dtype[np.bool_]]


def grown(array: Any, count: int, fill: Any = 0) -> Any:
    """`array` with `count` more rows of `fill`. A snapshot's per-row arrays are mapped with
    spare zero rows after them (fold.columns.persist): while they last, this is a longer
    view of the same mapping, nothing copied, and only the pages written (the new rows')
    become this process's own; past them, a copy of the whole."""
    size = len(array)
    room = array.base
    if (
        isinstance(room, np.ndarray)
        and room.ndim == 1
        and room.dtype == array.dtype
        and len(room) >= size + count
        and array.strides == room.strides
        and array.ctypes.data == room.ctypes.data
    ):
        out = room[: size + count]
        if fill:  # the spare rows are zeros already: not written, so not made private
            out[size:] = fill
        return out
    return np.concatenate([array, np.full(count, fill, dtype=array.dtype)])


def _utf8(text: str) -> bytes:
    # Lone surrogates (possible in JSON text) round-trip instead of failing.
    return text.encode("utf-8", "surrogatepass")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


class Uids:
    """Row number -> uid and back. The first `len(packed)` rows are a fixed-width bytes
    array with its sorted order (look-ups by binary search, many at once); rows added
    later are a list and a dict."""

    def __init__(self, packed: Any = None, order: Any = None, ordered: Any = None) -> None:
        self.packed: Any = np.zeros(0, dtype="S1") if packed is None else packed
        if order is None:
            order = np.argsort(self.packed, kind="stable")
        self.order: Rows = order
        # The packed uids in sorted order (kept, so that a mapped store shares it too).
        self.sorted: Any = self.packed[self.order] if ordered is None else ordered
        self.added: list[str] = []
        self.added_rows: dict[str, int] = {}

    @classmethod
    def of(cls, uids: Sequence[str]) -> Uids:
        raw = [_utf8(u) for u in uids]
        width = max(map(len, raw), default=1)
        # S arrays drop trailing NULs; a uid holding one (none Fold makes) stays unpacked.
        if any(r.endswith(b"\x00") for r in raw):
            made = cls()
            made.extend(uids)
            return made
        return cls(np.array(raw, dtype=f"S{width}"))

    def __len__(self) -> int:
        return len(self.packed) + len(self.added)

    def __getitem__(self, row: int) -> str:
        base = len(self.packed)
        return _text(self.packed[row]) if row < base else self.added[row - base]

    def extend(self, uids: Iterable[str]) -> None:
        for uid in uids:
            self.added_rows[uid] = len(self)
            self.added.append(uid)

    def get(self, uid: str, default: int = -1) -> int:
        row = int(self.locate([uid])[0])
        return default if row < 0 else row

    def __contains__(self, uid: str) -> bool:
        return self.get(uid) >= 0

    def locate(self, uids: Sequence[str] | Any) -> Rows:
        """The row of each uid (a list, or a numpy array of strings), in order; -1 where
        it is not here."""
        listed = uids.tolist() if isinstance(uids, np.ndarray) else list(uids)
        if not listed:
            return np.zeros(0, dtype=np.int64)
        # numpy takes NULs for padding: a uid holding one (none Fold makes) is not packed.
        fits = np.fromiter(("\x00" not in u for u in listed), dtype=bool, count=len(listed))
        try:
            encoded = np.array(listed, dtype="S")  # ASCII (every uid Fold makes): at once
        except UnicodeEncodeError:
            encoded = np.array([_utf8(u) for u in listed], dtype=object).astype(bytes)
        return self.locate_bytes(encoded, fits, listed)

    def locate_bytes(self, encoded: Any, fits: Any = None, listed: list[str] | None = None) -> Rows:
        """As `locate`, for uids already UTF-8 in a bytes array (`fits`: those that may be
        packed, holding no NUL)."""
        out = np.full(len(encoded), -1, dtype=np.int64)
        if self.added_rows:
            added = self.added_rows
            texts = listed if listed is not None else [_text(b) for b in encoded.tolist()]
            for i, uid in enumerate(texts):
                row = added.get(uid)
                if row is not None:
                    out[i] = row
        if not len(self.sorted) or not len(encoded):
            return out
        if fits is None:
            fits = np.ones(len(encoded), dtype=bool)
        # Longer than every packed uid: not packed.
        fits = fits & (np.strings.str_len(encoded) <= self.sorted.dtype.itemsize)
        keys = encoded[fits].astype(self.sorted.dtype)
        at = np.searchsorted(self.sorted, keys)
        hit = np.zeros(len(keys), dtype=bool)
        inside = at < len(self.sorted)
        hit[inside] = self.sorted[at[inside]] == keys[inside]
        where = np.flatnonzero(fits)[hit]
        out[where] = self.order[at[hit]]
        return out

    def rows(self, uids: Iterable[str]) -> Rows:
        """The rows of those `uids` that are here (others left out), in their order."""
        found = self.locate(list(uids))
        return found[found >= 0]

    def take(self, rows: Sequence[int] | Rows) -> list[str]:
        picked = np.asarray(rows, dtype=np.int64)
        base = len(self.packed)
        if not len(picked) or int(picked.max()) < base:
            return [_text(b) for b in self.packed[picked].tolist()]
        return [self[int(r)] for r in picked.tolist()]

    def in_uid_order(self, mask: Mask) -> list[str]:
        """The uids of the rows `mask` holds, sorted (UTF-8 byte order is code point
        order, so this is Python's string order)."""
        base = len(self.packed)
        packed = self.order[mask[:base][self.order]]
        out = [_text(b) for b in self.packed[packed].tolist()]
        if len(mask) > base and mask[base:].any():
            out = sorted([*out, *(self.added[i] for i in np.flatnonzero(mask[base:]).tolist())])
        return out

    def tolist(self) -> list[str]:
        return [*(_text(b) for b in self.packed.tolist()), *self.added]

    def packed_all(self) -> Uids:
        """Every row packed (for saving): this, or a copy with the added rows folded in."""
        if not self.added:
            return self
        raw = [_utf8(u) for u in self.added]
        if any(r.endswith(b"\x00") for r in raw):
            return Uids.of(self.tolist())
        width = max(self.packed.dtype.itemsize, *map(len, raw))
        dtype = f"S{width}"
        return Uids(np.concatenate([self.packed.astype(dtype), np.array(raw, dtype=dtype)]))


class SearchText:
    """Each row's search text: one UTF-8 blob with row offsets, and texts written later
    kept per row. `holders(word)` finds every row whose text holds a word in one pass."""

    def __init__(self, blob: Any = None, offsets: Any = None) -> None:
        self.blob: Any = np.zeros(0, dtype=np.uint8) if blob is None else blob
        self.offsets: Rows = np.zeros(1, dtype=np.int64) if offsets is None else offsets
        self.changed: dict[int, str] = {}
        self.size = len(self.offsets) - 1

    @classmethod
    def of(cls, texts: Sequence[str]) -> SearchText:
        raw = [_utf8(t) for t in texts]
        offsets = np.zeros(len(raw) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in raw], out=offsets[1:])
        return cls(np.frombuffer(b"".join(raw), dtype=np.uint8), offsets)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, row: int) -> str:
        found = self.changed.get(row)
        return self._base(row) if found is None else found

    def _base(self, row: int) -> str:
        if row >= len(self.offsets) - 1:
            return ""
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        return _text(self.blob[start:end].tobytes())

    def __setitem__(self, row: int, text: str) -> None:
        if self._base(row) == text and row < len(self.offsets) - 1:
            self.changed.pop(row, None)  # as it was: the blob says it
        else:
            self.changed[row] = text

    def set_many(self, rows: Rows, texts: Sequence[str]) -> None:
        """`self[row] = text` for each pair, comparing bytes in the blob rather than
        decoding each row's text."""
        base = len(self.offsets) - 1
        inside = rows < base
        # Rows added since the blob was made are never compared (`kept` is False there).
        at = np.where(inside, rows, 0)
        starts = self.offsets[at].tolist()
        ends = self.offsets[np.minimum(at + 1, base)].tolist()
        blob = memoryview(self.blob)
        changed = self.changed
        for row, text, start, end, kept in zip(
            rows.tolist(), texts, starts, ends, inside.tolist(), strict=True
        ):
            if kept and blob[start:end] == _utf8(text):
                changed.pop(row, None)  # as it was: the blob says it
            else:
                changed[row] = text

    def grow(self, count: int) -> None:
        self.size += count

    def holders(self, word: str) -> Mask:
        """Which rows' text holds `word` (Python's `word in text`)."""
        mask = np.zeros(self.size, dtype=bool)
        needle = np.frombuffer(_utf8(word), dtype=np.uint8)
        blob = self.blob
        if not len(needle):
            mask[:] = True
            return mask
        if len(blob) >= len(needle):
            # Positions where the word starts: narrowed byte by byte.
            starts = np.flatnonzero(blob[: len(blob) - len(needle) + 1] == needle[0])
            for k in range(1, len(needle)):
                starts = starts[blob[starts + k] == needle[k]]
            rows = np.searchsorted(self.offsets, starts, side="right") - 1
            inside = starts + len(needle) <= self.offsets[rows + 1]
            mask[rows[inside]] = True
        for row, text in self.changed.items():
            mask[row] = word in text
        return mask

    def packed(self) -> tuple[Any, Rows]:
        """The blob and offsets with every later text folded in (for saving)."""
        base = len(self.offsets) - 1
        if not self.changed and self.size == base:
            return self.blob, self.offsets
        lengths = np.zeros(self.size, dtype=np.int64)
        lengths[:base] = np.diff(self.offsets)
        blob = self.blob.tobytes()
        pieces: list[bytes] = []
        at = 0  # bytes of the old blob taken so far
        for row in sorted(self.changed):
            raw = _utf8(self.changed[row])
            lengths[row] = len(raw)
            if row < base:
                pieces.append(blob[at : int(self.offsets[row])])
                at = int(self.offsets[row + 1])
            else:
                pieces.append(blob[at:])
                at = len(blob)
            pieces.append(raw)
        pieces.append(blob[at:])
        offsets = np.zeros(self.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return np.frombuffer(b"".join(pieces), dtype=np.uint8), offsets
