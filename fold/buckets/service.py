"""Creating buckets, each with the system segments it starts with."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fold.db.models import Bucket
from fold.ids import check_bucket_name
from fold.timefmt import utcnow


def ensure_bucket(session: Session, name: str) -> bool:
    """Create the bucket if it does not exist; True when it was created."""
    from fold.segments.defaults import create_system_segments

    check_bucket_name(name)
    if session.get(Bucket, name) is not None:
        return False
    session.add(Bucket(name=name, created=utcnow()))
    session.flush()
    create_system_segments(session, name)
    return True
