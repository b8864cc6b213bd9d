"""The system segments every new bucket starts with."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fold.db.models import Segment
from fold.ids import new_uid
from fold.timefmt import utcnow

DEFAULTS: tuple[tuple[str, str, list[dict[str, Any]]], ...] = (
    ("All people", "person", []),
    ("All organisations", "organisation", []),
    ("All contacts", "contact", []),
    (
        "Current members",
        "person",
        [{"field": "membership_status", "operator": "equals", "value": "active"}],
    ),
)


def create_system_segments(session: Session, bucket: str) -> None:
    now = utcnow()
    for name, resource_type, rules in DEFAULTS:
        session.add(
            Segment(
                bucket=bucket,
                uid=new_uid(),
                name=name,
                description="",
                segment_type="dynamic",
                resource_type=resource_type,
                view_context=["crm"],
                parent_uid=None,
                active=True,
                rules=rules,
                system_segment=True,
                tags=[],
                mailchimp_sync=False,
                legacy_uid=None,
                record_state="active",
                version=1,
                created=now,
                last_updated=now,
            )
        )
    session.flush()
