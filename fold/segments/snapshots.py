"""Membership snapshots (SPEC 12): a segment's members at one moment as a roaring bitmap
over record numbers (fold.segments.numbers); who entered and who left between two
moments; counts and pages as of a past moment."""

from __future__ import annotations

import array
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from pyroaring import BitMap
from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.db.models import Record, Segment, SegmentSnapshot
from fold.errors import NotFound, ValidationFailed
from fold.ids import is_uid, make_uri, new_uid
from fold.paging import Paging
from fold.params import read_flag
from fold.records import repository as records
from fold.records.service import record_out
from fold.segments import history_repository as history
from fold.segments import numbers
from fold.segments.index_or_sql import member_selection
from fold.segments.members import segment_schema
from fold.segments.reads import load_for_read, sentence, summary
from fold.timefmt import format_datetime, parse_datetime, utcnow

CHANGE_KINDS = ("entered", "left")


def to_bitmap(values: Any) -> BitMap:
    packed = np.asarray(values, dtype=np.uint32)
    bitmap = BitMap(array.array("I", packed.tobytes()))
    bitmap.run_optimize()
    return bitmap


def members_of(snapshot: SegmentSnapshot) -> BitMap:
    return BitMap.deserialize(snapshot.members)


def take(session: Session, *, row: Segment, trigger: str, user_uri: str) -> SegmentSnapshot:
    """The segment's members now, stored (once per transaction: see numbers.give)."""
    start = numbers.lock_counter(session, row.bucket)
    taken = utcnow()
    with member_selection(session, row) as selected:
        have, missing = numbers.lookup(session, row.bucket, selected)
    given = numbers.give(session, row.bucket, start, missing)
    bitmap = to_bitmap(np.concatenate([have, given]))
    snapshot = SegmentSnapshot(
        bucket=row.bucket,
        uid=new_uid(),
        segment_uid=row.uid,
        taken=taken,
        count=len(bitmap),
        members=bitmap.serialize(),
        trigger=trigger,
        user_uri=user_uri,
    )
    session.add(snapshot)
    session.flush()
    return snapshot


def take_manual(session: Session, *, caller: Caller, uid: str) -> dict[str, Any]:
    """A snapshot the caller asks for now (`edit_segment`)."""
    caller.require("edit_segment")
    row = load_for_read(session, caller, uid)
    return snapshot_out(take(session, row=row, trigger="manual", user_uri=caller.user_uri))


def snapshot_out(snapshot: SegmentSnapshot) -> dict[str, Any]:
    return {
        "uid": snapshot.uid,
        "segment": make_uri(snapshot.bucket, "segment", snapshot.segment_uid),
        "taken": format_datetime(snapshot.taken),
        "count": snapshot.count,
        "size_bytes": len(snapshot.members),
        "trigger": snapshot.trigger,
        "user": snapshot.user_uri,
    }


def listing(session: Session, row: Segment, params: dict[str, Any]) -> dict[str, Any]:
    """Newest first, with their counts (the bitmaps are not read)."""
    paging = Paging.read(params)
    total = history.count_snapshots(session, bucket=row.bucket, segment_uid=row.uid)
    chosen = history.snapshots_newest_first(
        session,
        bucket=row.bucket,
        segment_uid=row.uid,
        offset=paging.offset,
        limit=paging.page_size,
    )
    out = []
    for found in chosen:
        out.append(
            {
                "uid": found.uid,
                "segment": make_uri(row.bucket, "segment", row.uid),
                "taken": format_datetime(found.taken),
                "count": found.count,
                "size_bytes": found.size,
                "trigger": found.trigger,
                "user": found.user_uri,
            }
        )
    return {
        "snapshots": out,
        **paging.envelope(total),
        "segment": make_uri(row.bucket, "segment", row.uid),
    }


def at_or_before(session: Session, row: Segment, when: datetime) -> SegmentSnapshot | None:
    return history.snapshot_at_or_before(session, bucket=row.bucket, segment_uid=row.uid, when=when)


def resolve(session: Session, row: Segment, raw: Any, param: str) -> SegmentSnapshot:
    """A snapshot uid of this segment, or a time: the latest snapshot at or before it."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationFailed(f"{param} is a date-time or a snapshot uid.", param=param)
    text = raw.strip()
    if is_uid(text):
        found = history.snapshot(session, bucket=row.bucket, uid=text)
        if found is None or found.segment_uid != row.uid:
            raise NotFound(f"Segment {row.uid} has no snapshot {text}.")
        return found
    try:
        when = parse_datetime(text)
    except ValueError:
        raise ValidationFailed(
            f"{param} must be an ISO 8601 date-time or a snapshot uid; got {text!r}.", param=param
        ) from None
    found = at_or_before(session, row, when)
    if found is None:
        first = history.first_snapshot_taken(session, bucket=row.bucket, segment_uid=row.uid)
        hint = (
            f"the first was taken at {format_datetime(first)}"
            if first
            else "the segment has none yet (POST /snapshots takes one)"
        )
        raise ValidationFailed(
            f"{format_datetime(when)} is before the segment's first snapshot: {hint}.",
            param=param,
        )
    return found


def describe(snapshot: SegmentSnapshot) -> dict[str, Any]:
    return {"snapshot": snapshot.uid, "taken": format_datetime(snapshot.taken)}


def _record_rows(
    session: Session, row: Segment, keys: Sequence[tuple[str, str]], verbose: bool
) -> list[dict[str, Any]]:
    """Each (type, uid) as a page entry, whatever its state now."""
    by_type: dict[str, list[str]] = {}
    for resource_type, uid in keys:
        by_type.setdefault(resource_type, []).append(uid)
    found: dict[tuple[str, str], Record] = {}
    for resource_type, uids in by_type.items():
        rows = records.by_uids(session, bucket=row.bucket, resource_type=resource_type, uids=uids)
        found.update({(resource_type, u): r for u, r in rows.items()})
    schema = segment_schema(session, bucket=row.bucket, resource_type=row.resource_type)
    out = []
    for resource_type, uid in keys:
        record = found.get((resource_type, uid))
        if record is None:
            out.append(
                {
                    "uri": make_uri(row.bucket, resource_type, uid),
                    "uid": uid,
                    "resource_type": resource_type,
                    "display_value": None,
                }
            )
        else:
            out.append(record_out(record) if verbose else summary(record, schema))
    return out


def changes(session: Session, row: Segment, params: dict[str, Any]) -> dict[str, Any]:
    """Who entered and who left between `since` and `until` (default: now), paged: those
    who entered first, then those who left, each in record-number order."""
    if params.get("since") in (None, ""):
        raise ValidationFailed("since is needed: a date-time or a snapshot uid.", param="since")
    since = resolve(session, row, params.get("since"), "since")
    kind = str(params.get("change") or "all")
    if kind not in (*CHANGE_KINDS, "all"):
        raise ValidationFailed("change is entered, left or all.", param="change")
    paging = Paging.read(params)
    before = members_of(since)
    unnumbered: list[tuple[str, str]] = []
    if params.get("until") in (None, ""):
        with member_selection(session, row) as selected:
            current, unnumbered = numbers.lookup(session, row.bucket, selected)
        after = to_bitmap(current)
        until: dict[str, Any] = {"snapshot": None, "taken": None, "now": True}
    else:
        later = resolve(session, row, params.get("until"), "until")
        if later.taken < since.taken:
            raise ValidationFailed("until is before since.", param="until")
        after = members_of(later)
        until = {**describe(later), "now": False}
    entered = after - before
    left = before - after
    entered_count = len(entered) + len(unnumbered)
    # The listed sides, one after the other; the page is (change, position within it).
    shown_entered = entered_count if kind != "left" else 0
    total = shown_entered + (len(left) if kind != "entered" else 0)
    start, end = paging.offset, min(paging.offset + paging.page_size, total)
    listed = [
        ("entered", i) if i < shown_entered else ("left", i - shown_entered)
        for i in range(start, max(start, end))
    ]
    known = numbers.numbering(session, row.bucket)
    entered_numbers = entered.to_array()
    left_numbers = left.to_array()
    keys: list[tuple[str, str]] = []
    for change, i in listed:
        if change == "left":
            keys.extend(known.records([left_numbers[i]]))
        elif i < len(entered_numbers):
            keys.extend(known.records([entered_numbers[i]]))
        else:
            keys.append(unnumbered[i - len(entered_numbers)])
    results = _record_rows(session, row, keys, read_flag(params, "verbose"))
    for (change, _), result in zip(listed, results, strict=True):
        result["change"] = change
    return {
        "results": results,
        **paging.envelope(total),
        "entered": entered_count,
        "left": len(left),
        "since": describe(since),
        "until": until,
        "segment": make_uri(row.bucket, "segment", row.uid),
        "computed_at": format_datetime(utcnow()),
    }


def count_as_of(session: Session, row: Segment, raw: Any) -> dict[str, Any]:
    snapshot = resolve(session, row, raw, "as_of")
    schema = segment_schema(session, bucket=row.bucket, resource_type=row.resource_type)
    return {
        "count": snapshot.count,
        "description": row.description or sentence(session, row, schema),
        "segment": make_uri(row.bucket, "segment", row.uid),
        "as_of": describe(snapshot),
        "computed_at": format_datetime(utcnow()),
    }


UNSUPPORTED_AS_OF = ("q", "sort")


def records_as_of(session: Session, row: Segment, params: dict[str, Any]) -> dict[str, Any]:
    """A page of the members a snapshot holds, in record-number order, as they are now."""
    for name in UNSUPPORTED_AS_OF:
        if params.get(name) not in (None, ""):
            raise ValidationFailed(
                f"{name} cannot be combined with as_of: a snapshot keeps who was a member, "
                "not their fields then.",
                param=name,
            )
    snapshot = resolve(session, row, params.get("as_of"), "as_of")
    paging = Paging.read(params)
    held = members_of(snapshot).to_array()
    page = held[paging.offset : paging.offset + paging.page_size].tolist()
    keys = numbers.numbering(session, row.bucket).records(page)
    return {
        "results": _record_rows(session, row, keys, read_flag(params, "verbose")),
        **paging.envelope(len(held)),
        "segment": make_uri(row.bucket, "segment", row.uid),
        "as_of": describe(snapshot),
        "computed_at": format_datetime(utcnow()),
    }
