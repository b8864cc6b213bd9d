"""What the audit API answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fold.schemas import Open


class AuditEntry(Open):
    uid: str
    date: str
    uri: str | None
    user: str | None
    resource: str | None
    message: str | None
    clean_diff: list[Any]


class AuditPage(Open):
    audit: list[AuditEntry]
    total: int
    limit: int
    skip: int


AuditAnswer = AuditPage | list[AuditEntry]
"""`format=json` (the default) answers the envelope, `format=list` the bare array."""
