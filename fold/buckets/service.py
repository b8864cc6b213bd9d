"""Creating buckets, each with the system segments it starts with."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fold.buckets.defaults import create_system_segments
from fold.db.models import Bucket
from fold.ids import check_bucket_name
from fold.timefmt import utcnow


def ensure_bucket(session: Session, name: str) -> bool:
    """Create the bucket if it does not exist; True when it was created."""
    check_bucket_name(name)
    if session.get(Bucket, name) is not None:
        return False
    session.add(Bucket(name=name, created=utcnow()))
    session.flush()
    create_system_segments(session, name)
    return True


def set_webhook_secret(session: Session, name: str, secret: str | None) -> str:
    """Set (or, with None, generate) the secret that signs the bucket's JSON webhooks."""
    import secrets

    from fold.errors import ValidationFailed

    ensure_bucket(session, name)
    value = secret if secret is not None else secrets.token_urlsafe(32)
    if not 16 <= len(value) <= 200:
        raise ValidationFailed("A webhook secret needs 16 to 200 characters.", param="secret")
    bucket = session.get(Bucket, name)
    assert bucket is not None
    bucket.webhook_secret = value
    return value
