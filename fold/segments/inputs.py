"""Reading a segment definition from JSON, a form or the query string alike."""

from __future__ import annotations

import json
from typing import Any

from fold import jsontext
from fold.errors import Problem
from fold.fields.types import read_boolean
from fold.ids import RESOURCE_TYPES, parse_uri
from fold.segments.schemas import Definition

SEGMENT_TYPES = ("dynamic", "static", "hybrid", "auxiliary")
VIEW_CONTEXTS = (
    "comments",
    "crm",
    "documents",
    "events",
    "forms",
    "giving",
    "membership",
    "minimal_membership_directory",
    "reservations",
    "teams",
    "vehicles",
)
DEFAULT_VIEW = {
    "person": "crm",
    "organisation": "crm",
    "contact": "crm",
    "membership": "membership",
    "payment": "giving",
    "booking": "events",
    "reservation": "reservations",
    "comment": "comments",
    "page_document": "documents",
    "form_response": "forms",
    "group": "teams",
    "group_member": "teams",
    "vehicle": "vehicles",
}
FIELDS = (
    "name",
    "description",
    "segment_type",
    "view_context",
    "parent_segment",
    "active",
    "rules",
    "uris_include",
    "uris_exclude",
    "resource_type",
    "system_segment",
    "tags",
    "mailchimp_sync",
)
# What Fold adds to a segment it answers; read back in, they are known and left alone.
ANSWERED_FIELDS = (
    "uid",
    "uri",
    "created",
    "last_updated",
    "record_state",
    "display_value",
    "legacy_uid",
    "user_interface",
    "mailchimp_last_sync",
)
MAX_URIS = 100_000


def _string_list(value: Any) -> list[Any] | None:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = jsontext.loads(text)
            except json.JSONDecodeError:
                return None
            return parsed if isinstance(parsed, list) else None
        return [p.strip() for p in text.split(",") if p.strip()]
    if isinstance(value, list):
        return value
    return None


def read_definition(
    params: dict[str, Any], base: Definition, problems: list[Problem]
) -> Definition:
    """`base` with every field that `params` gives read over it."""
    out = base.model_copy()

    def fail(description: str, param: str) -> None:
        problems.append(Problem(description, param))

    if "name" in params and params["name"] is None:
        out.name = ""  # named by default in service.check
    elif "name" in params:
        name = params["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            fail("name is text of 1 to 200 characters", "name")
        else:
            out.name = name.strip()
    if "description" in params:
        description = params["description"]
        if description is None:
            out.description = ""
        elif not isinstance(description, str) or len(description) > 5000:
            fail("description is text of at most 5,000 characters", "description")
        else:
            out.description = description
    if "segment_type" in params:
        if params["segment_type"] not in SEGMENT_TYPES:
            fail(f"segment_type is one of {', '.join(SEGMENT_TYPES)}", "segment_type")
        else:
            out.segment_type = params["segment_type"]
    if "resource_type" in params:
        if params["resource_type"] not in RESOURCE_TYPES:
            fail(f"resource_type is one of {', '.join(RESOURCE_TYPES)}", "resource_type")
        else:
            out.resource_type = params["resource_type"]
    if "view_context" in params:
        contexts = _string_list(params["view_context"])
        if contexts is None or any(c not in VIEW_CONTEXTS for c in contexts):
            fail(f"view_context is one or more of {', '.join(VIEW_CONTEXTS)}", "view_context")
        else:
            out.view_context = list(dict.fromkeys(contexts))
    if "parent_segment" in params:
        parent = params["parent_segment"]
        if parent in (None, ""):
            out.parent_segment = None
        else:
            parsed = parse_uri(parent)
            if parsed is None or parsed.resource_type != "segment":
                fail(
                    "parent_segment is a segment URI like /bucket/segment/<uid>/", "parent_segment"
                )
            else:
                out.parent_segment = str(parsed)
    for flag in ("active", "system_segment", "mailchimp_sync"):
        if flag in params:
            try:
                setattr(out, flag, read_boolean(params[flag]))
            except ValueError:
                fail(f"{flag} is true or false", flag)
    if "rules" in params:
        out.rules = params["rules"]
    for name in ("uris_include", "uris_exclude"):
        if name in params:
            uris = _string_list(params[name])
            if uris is None or not all(isinstance(u, str) for u in uris):
                fail(f"{name} is a list of record URIs", name)
            elif len(uris) > MAX_URIS:
                fail(f"{name} holds at most {MAX_URIS:,} URIs", name)
            else:
                setattr(out, name, uris)
    if "tags" in params:
        tags = _string_list(params["tags"])
        if tags is None or not all(isinstance(t, str) for t in tags):
            fail("tags is a list of text", "tags")
        else:
            out.tags = tags
    return out
