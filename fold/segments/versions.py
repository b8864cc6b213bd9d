"""Numbered versions of a segment's definition (SPEC 12): one for every change (create,
PUT, PATCH, delete, restore, revert) with who and when, and the difference between two.
Reverting lives in the service, which owns writing a definition."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.db.models import Segment, SegmentVersion
from fold.errors import NotFound, ValidationFailed
from fold.ids import make_uri
from fold.paging import Paging
from fold.segments import history_repository as history
from fold.segments.inputs import FIELDS
from fold.timefmt import format_datetime, utcnow

# What a version keeps: every field a client sets, and the state.
DEFINITION = (*FIELDS, "record_state")
LISTS = ("uris_include", "uris_exclude")
FIRST = 100  # list URIs added or removed shown by a diff; the counts are always exact


def record(
    session: Session, *, caller: Caller, row: Segment, out: dict[str, Any], action: str
) -> int:
    """Store the definition `out` (the segment as answered) as the next version."""
    number = history.last_version_number(session, bucket=row.bucket, segment_uid=row.uid) + 1
    session.add(
        SegmentVersion(
            bucket=row.bucket,
            segment_uid=row.uid,
            number=number,
            created=utcnow(),
            user_uri=caller.user_uri,
            action=action,
            definition={k: out[k] for k in DEFINITION},
        )
    )
    session.flush()
    return number


def read_number(raw: str, param: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationFailed(f"{param} is a version number from 1; got {raw!r}.", param=param)
    return int(raw)


def get(session: Session, row: Segment, number: int) -> SegmentVersion:
    found = history.version(session, bucket=row.bucket, segment_uid=row.uid, number=number)
    if found is None:
        raise NotFound(f"Segment {row.uid} has no version {number}.")
    return found


def version_out(row: Segment, version: SegmentVersion, *, full: bool) -> dict[str, Any]:
    out = {
        "version": version.number,
        "segment": make_uri(row.bucket, "segment", row.uid),
        "created": format_datetime(version.created),
        "user": version.user_uri,
        "action": version.action,
    }
    if full:
        out["definition"] = version.definition
    return out


def listing(session: Session, row: Segment, params: dict[str, Any]) -> dict[str, Any]:
    """Newest first; each with the fields it changed from the version before."""
    paging = Paging.read(params)
    total = history.count_versions(session, bucket=row.bucket, segment_uid=row.uid)
    # One more than the page: the version before the page's last, for its changes.
    chosen = history.versions_newest_first(
        session,
        bucket=row.bucket,
        segment_uid=row.uid,
        offset=paging.offset,
        limit=paging.page_size + 1,
    )
    versions = []
    for i, version in enumerate(chosen[: paging.page_size]):
        before = chosen[i + 1].definition if i + 1 < len(chosen) else None
        out = version_out(row, version, full=False)
        out["fields_changed"] = changed_fields(before, version.definition)
        versions.append(out)
    return {
        "versions": versions,
        **paging.envelope(total),
        "segment": make_uri(row.bucket, "segment", row.uid),
    }


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    if before is None:
        return [k for k in DEFINITION if k in after]
    return [k for k in DEFINITION if before.get(k) != after.get(k)]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _conditions(definition: dict[str, Any]) -> list[dict[str, Any]]:
    rules = definition.get("rules") or {}
    conditions = rules.get("conditions", []) if isinstance(rules, dict) else rules
    return list(conditions)


def _added(first: list[Any], second: list[Any]) -> list[Any]:
    """What `second` has that `first` has not, counting repeats."""
    left: dict[str, int] = {}
    for item in first:
        left[_key(item)] = left.get(_key(item), 0) + 1
    out = []
    for item in second:
        key = _key(item)
        if left.get(key, 0):
            left[key] -= 1
        else:
            out.append(item)
    return out


def diff(session: Session, row: Segment, a: int, b: int) -> dict[str, Any]:
    """From version a to version b: fields changed, rules and list URIs added and removed."""
    first, second = get(session, row, a).definition, get(session, row, b).definition
    fields = [
        {"field": k, "from": first.get(k), "to": second.get(k)}
        for k in DEFINITION
        if k not in ("rules", *LISTS) and first.get(k) != second.get(k)
    ]
    before_rules, after_rules = _conditions(first), _conditions(second)
    out: dict[str, Any] = {
        "segment": make_uri(row.bucket, "segment", row.uid),
        "from": a,
        "to": b,
        "fields": fields,
        "rules": {
            "added": _added(before_rules, after_rules),
            "removed": _added(after_rules, before_rules),
        },
    }
    for name in LISTS:
        old, new = first.get(name) or [], second.get(name) or []
        old_set, new_set = set(old), set(new)
        added = [u for u in new if u not in old_set]
        removed = [u for u in old if u not in new_set]
        out[name] = {
            "added_count": len(added),
            "removed_count": len(removed),
            "added": added[:FIRST],
            "removed": removed[:FIRST],
        }
    out["changed"] = bool(
        fields or out["rules"]["added"] or out["rules"]["removed"]
        or any(out[n]["added_count"] or out[n]["removed_count"] for n in LISTS)
    )  # fmt: skip
    return out


def revert_params(version: SegmentVersion) -> dict[str, Any]:
    """The inputs that make a segment's definition this version's again (a PUT)."""
    return {k: version.definition[k] for k in FIELDS if k in version.definition}
