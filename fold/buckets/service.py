"""Creating buckets. A new bucket is where per-bucket defaults get made."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from fold.db.models import Bucket
from fold.ids import check_bucket_name
from fold.timefmt import utcnow

# Other domains (segments) register what every new bucket should start with.
NEW_BUCKET_HOOKS: list[Callable[[Session, str], None]] = []


def ensure_bucket(session: Session, name: str) -> bool:
    """Create the bucket if it does not exist; True when it was created."""
    check_bucket_name(name)
    if session.get(Bucket, name) is not None:
        return False
    session.add(Bucket(name=name, created=utcnow()))
    session.flush()
    for hook in NEW_BUCKET_HOOKS:
        hook(session, name)
    return True
