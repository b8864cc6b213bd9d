"""What the segments API answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from fold.schemas import Open, Page


class Definition(BaseModel):
    """A segment's definition as it comes in (JSON, a form or the query string, read by
    `inputs.read_definition`), each field read but not yet checked against the bucket."""

    name: str = ""
    description: str = ""
    segment_type: str = "dynamic"
    view_context: list[str] = Field(default_factory=list)
    parent_segment: str | None = None
    active: bool = True
    rules: Any = None  # the rule document as sent; `Checked.rules` once normalised
    uris_include: list[str] = Field(default_factory=list)
    uris_exclude: list[str] = Field(default_factory=list)
    resource_type: str = ""
    system_segment: bool = False
    tags: list[str] = Field(default_factory=list)
    mailchimp_sync: bool = False


class Checked(BaseModel):
    """A definition that passed every check (`service.check`), as it is stored: the
    normalised rules, the lists as record uids, the parent as a uid."""

    d: Definition
    rules: list[dict[str, Any]]
    include: list[str]
    exclude: list[str]
    parent_uid: str | None


class Segment(Open):
    uid: str
    uri: str
    name: str
    display_value: str
    description: str
    segment_type: str
    resource_type: str
    view_context: list[str]
    parent_segment: str | None
    active: bool
    rules: Any
    uris_include: list[str]
    uris_exclude: list[str]
    system_segment: bool
    tags: list[str]
    mailchimp_sync: bool
    created: str
    last_updated: str
    record_state: str


class SegmentPage(Page):
    segments: list[Segment]


class SegmentTree(Segment):
    children: list[SegmentTree]


class Trees(Open):
    segments: list[SegmentTree]


class Member(Open):
    """A record as a segment lists it: its uri and the fieldset's columns."""

    uri: str
    uid: str
    resource_type: str
    display_value: str | None


class Members(Page):
    results: list[Member]
    computed_at: str


class Preview(Members):
    count: int
    description: str


class Count(Open):
    count: int
    description: str
    segment: str
    computed_at: str


class Validation(Open):
    valid: bool
    errors: list[Any]
    rules: Any


class Fieldset(Open):
    uid: str
    uri: str
    name: str
    description: str
    fields: list[str]
    applicable_resources: list[str]
    locked: bool
    created: str
    last_updated: str


class FieldsetPage(Page):
    fieldsets: list[Fieldset]


class Config(Open):
    mapping: dict[str, Any]
    resource_type: str
    segment: str
    segment_type: str
    view_context: list[str]
    user_interface: dict[str, Any]


class LookupItem(Open):
    id: str
    uri: str
    value: str
    label: str | None
    text: str | None
    display_value: str | None


class Explanation(Open):
    """Without `uri`: `base_count`, `steps` and `count`; with it, why that record is in
    or out (`in_segment`, `rules`, `included`, `excluded`, `parent`, `reasons`)."""

    segment: str
    base_count: int | None = None
    steps: list[Any] | None = None
    count: int | None = None
    in_segment: bool | None = None
    reasons: list[str] | None = None
