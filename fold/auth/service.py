"""API keys and users: creation, revocation, login, and resolving a key to a Caller."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fold.auth.policies import Caller, Policy, check_policy_name
from fold.auth.throttle import LoginThrottle
from fold.buckets.service import ensure_bucket
from fold.db.models import ApiKey, KeyGrant, User, UserGrant
from fold.errors import AuthenticationFailed, NotFound, PermissionDenied, ValidationFailed
from fold.ids import make_uri, new_uid
from fold.timefmt import format_datetime, utcnow

KEY_PREFIX = "fold_"
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
LOGIN_FAILED = "The username or password is not right."


def hash_key(key: str) -> str:
    # Keys carry 192 random bits, so a fast hash is enough; passwords get scrypt.
    return hashlib.sha256(key.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


# A hash to check against when the user does not exist, so both answers take as long.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


@dataclass(frozen=True)
class NewKey:
    id: str
    key: str


def _insert_key(session: Session, *, name: str, username: str | None) -> NewKey:
    key = KEY_PREFIX + secrets.token_hex(24)
    key_id = new_uid()
    session.add(
        ApiKey(
            id=key_id,
            key_hash=hash_key(key),
            name=name,
            username=username,
            created=utcnow(),
            revoked=None,
        )
    )
    return NewKey(key_id, key)


def create_key(session: Session, *, bucket: str, policy: str, name: str = "") -> NewKey:
    """A new key with `policy` on `bucket`; the key itself is returned once, never stored."""
    checked = check_policy_name(policy)
    ensure_bucket(session, bucket)
    new = _insert_key(session, name=name, username=None)
    session.add(KeyGrant(bucket=bucket, key_id=new.id, policy=checked))
    session.flush()
    return new


def revoke_key(session: Session, *, key_or_id: str) -> str:
    """Revoke by the key itself or by its id; answers the id."""
    found = session.scalar(
        select(ApiKey).where((ApiKey.id == key_or_id) | (ApiKey.key_hash == hash_key(key_or_id)))
    )
    if found is None:
        raise NotFound("No such key.", param="key")
    if found.revoked is None:
        found.revoked = utcnow()
    return found.id


def add_user(session: Session, *, username: str, password: str, bucket: str, policy: str) -> None:
    checked = check_policy_name(policy)
    if not username.strip() or len(username) > 150:
        raise ValidationFailed("A username needs 1 to 150 characters.", param="username")
    if len(password) < 8:
        raise ValidationFailed("A password needs at least 8 characters.", param="password")
    ensure_bucket(session, bucket)
    user = session.get(User, username)
    if user is None:
        session.add(
            User(username=username, password_hash=hash_password(password), created=utcnow())
        )
    else:
        user.password_hash = hash_password(password)
    grant = session.get(UserGrant, (bucket, username))
    if grant is None:
        session.add(UserGrant(bucket=bucket, username=username, policy=checked))
    else:
        grant.policy = checked
    session.flush()


def login(session: Session, *, username: str, password: str) -> str:
    """A fresh API key for the user; the same 403 whether the user is missing or wrong."""
    user = session.get(User, username)
    if user is None:
        verify_password(password, _DUMMY_HASH)
        raise PermissionDenied(LOGIN_FAILED, error="Login failed")
    if not verify_password(password, user.password_hash):
        raise PermissionDenied(LOGIN_FAILED, error="Login failed")
    # The key acts for the user: its policies are the user's, read on every request.
    new = _insert_key(session, name=f"login {username}", username=username)
    session.flush()
    return new.key


def login_throttled(
    session: Session, throttle: LoginThrottle, *, username: str, password: str, address: str
) -> str:
    """`login`, refused with 429 while the username or address has failed too often."""
    throttle.check(username=username, address=address)
    try:
        key = login(session, username=username, password=password)
    except PermissionDenied:
        throttle.failed(username=username, address=address)
        raise
    throttle.succeeded(username=username, address=address)
    return key


def user_buckets(session: Session, username: str) -> list[str]:
    """The buckets a user has a policy on, by name."""
    rows = session.scalars(
        select(UserGrant.bucket).where(UserGrant.username == username).order_by(UserGrant.bucket)
    )
    return list(rows)


def key_buckets(session: Session, key: ApiKey) -> list[str]:
    """The buckets a key (or the user behind it) has a policy on, by name."""
    if key.username is not None:
        return user_buckets(session, key.username)
    rows = session.scalars(
        select(KeyGrant.bucket).where(KeyGrant.key_id == key.id).order_by(KeyGrant.bucket)
    )
    return list(rows)


def _token(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationFailed(
            "Send your API key as 'Authorization: Bearer <key>'. Keys come from 'fold keys create'."
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationFailed("The Authorization header must read 'Bearer <key>'.")
    return token


def _live(key: ApiKey | None) -> ApiKey:
    if key is None:
        raise AuthenticationFailed("This API key is not known.")
    if key.revoked is not None:
        raise AuthenticationFailed("This API key has been revoked.")
    return key


def authenticate(session: Session, authorization: str | None) -> ApiKey:
    """The live key named by an `Authorization: Bearer` header, or 401."""
    token = _token(authorization)
    return _live(session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(token))))


@dataclass(frozen=True)
class LiveKey:
    """What a request needs of its live key: which key, and the user it acts for."""

    id: str
    username: str | None


class KeyLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def username(self) -> str | None: ...


# Built once: every request asks it, and building and keying the statement is CPU.
_KEY_IN_BUCKET = (
    select(ApiKey.id, ApiKey.username, ApiKey.revoked, KeyGrant.policy, UserGrant.policy)
    .outerjoin(KeyGrant, (KeyGrant.bucket == bindparam("bucket")) & (KeyGrant.key_id == ApiKey.id))
    .outerjoin(
        UserGrant,
        (UserGrant.bucket == bindparam("bucket")) & (UserGrant.username == ApiKey.username),
    )
    .where(ApiKey.key_hash == bindparam("hash"))
)


def authenticate_in(
    session: Session, authorization: str | None, bucket: str
) -> tuple[LiveKey, Policy | None]:
    """`authenticate` and the key's policy in `bucket` (None: no access), in one query: a
    request that names a bucket asks both, and each round trip is part of its time. (Plain
    columns, not the key's ORM object: every request asks this.)"""
    token = _token(authorization)
    found = session.execute(_KEY_IN_BUCKET, {"bucket": bucket, "hash": hash_key(token)}).first()
    if found is None:
        raise AuthenticationFailed("This API key is not known.")
    key_id, username, revoked, key_policy, user_policy = found
    if revoked is not None:
        raise AuthenticationFailed("This API key has been revoked.")
    granted = user_policy if username is not None else key_policy
    return LiveKey(key_id, username), check_policy_name(granted) if granted else None


def policy_for(session: Session, key: ApiKey, bucket: str) -> Policy | None:
    grant: UserGrant | KeyGrant | None
    if key.username is not None:
        grant = session.get(UserGrant, (bucket, key.username))
    else:
        grant = session.get(KeyGrant, (bucket, key.id))
    return check_policy_name(grant.policy) if grant else None


def caller_for(session: Session, key: ApiKey, bucket: str) -> Caller:
    """The key as a caller in `bucket`, or 403 — the same whatever the bucket holds."""
    return caller_with(key, bucket, policy_for(session, key, bucket))


def caller_with(key: KeyLike, bucket: str, policy: Policy | None) -> Caller:
    """The key, holding `policy` in `bucket`, as a caller there; 403 without one."""
    if policy is None:
        raise PermissionDenied(f"This key has no access to bucket '{bucket}'.")
    if key.username is not None:
        user_uri = f"/{bucket}/user/{key.username}/"
    else:
        user_uri = make_uri(bucket, "api_key", key.id)
    return Caller(bucket=bucket, policy=policy, user_uri=user_uri, key_id=key.id)


@dataclass(frozen=True)
class KeyListing:
    id: str
    name: str
    username: str | None
    created: str
    revoked: str | None
    grants: tuple[tuple[str, str], ...]  # (bucket, policy)


def list_keys(session: Session, *, bucket: str | None = None) -> list[KeyListing]:
    """Every key with its grants (never the key itself); only those on `bucket` if given."""
    grants: dict[str, list[tuple[str, str]]] = {}
    for grant in session.scalars(select(KeyGrant).order_by(KeyGrant.bucket)):
        grants.setdefault(grant.key_id, []).append((grant.bucket, grant.policy))
    out = []
    for key in session.scalars(select(ApiKey).order_by(ApiKey.created, ApiKey.id)):
        held = grants.get(key.id, [])
        if bucket is not None and not any(b == bucket for b, _ in held):
            continue
        out.append(
            KeyListing(
                key.id,
                key.name,
                key.username,
                format_datetime(key.created),
                format_datetime(key.revoked) if key.revoked else None,
                tuple(held),
            )
        )
    return out


def live_policy(session: Session, *, key: str, bucket: str) -> str | None:
    """The policy a live key holds on `bucket`, or None (unknown, revoked or no grant)."""
    try:
        found = authenticate(session, f"Bearer {key}")
    except AuthenticationFailed:
        return None
    return policy_for(session, found, bucket)
