"""Record identifiers: ObjectId-shaped uids, URIs and bucket names (SPEC 1)."""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from fold.errors import ValidationFailed

RESOURCE_TYPES: tuple[str, ...] = (
    "achievement",
    "booking",
    "comment",
    "contact",
    "duplicates",
    "form_response",
    "group",
    "group_member",
    "journal",
    "membership",
    "message",
    "organisation",
    "page_document",
    "payment",
    "person",
    "reservation",
    "sheep_event",
    "vehicle",
)
# `contact` means "person or organisation" and is never stored.
# What a contact action (messages, Mailchimp) takes: contacts, or a type made of them.
CONTACT_TYPES: tuple[str, ...] = ("person", "organisation", "contact")
STORED_TYPES: tuple[str, ...] = tuple(t for t in RESOURCE_TYPES if t != "contact")

_BUCKET_RE = re.compile(r"^[a-z0-9-]{2,63}$")
_UID_RE = re.compile(r"^[0-9a-f]{24}$")
_URI_RE = re.compile(r"^/([a-z0-9-]{2,63})/([a-z_]+)/([0-9a-f]{24})/?$")

_counter: Iterator[int]
_counter_lock: threading.Lock
_PROCESS_RANDOM: bytes


def _new_process() -> None:
    """Each process its own random bytes and counter start, a forked one too (`fold serve
    --workers N`): otherwise two processes would make the same uids."""
    global _counter, _PROCESS_RANDOM, _counter_lock
    _counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
    _PROCESS_RANDOM = os.urandom(5)
    _counter_lock = threading.Lock()


_new_process()
os.register_at_fork(after_in_child=_new_process)


def new_uid(at: float | None = None) -> str:
    """A 24-hex uid laid out as an ObjectId: seconds, 5 random bytes, counter."""
    seconds = int(time.time() if at is None else at)
    with _counter_lock:
        count = next(_counter) & 0xFFFFFF
    raw = seconds.to_bytes(4, "big") + _PROCESS_RANDOM + count.to_bytes(3, "big")
    return raw.hex()


def is_uid(value: str) -> bool:
    return bool(_UID_RE.match(value))


def is_bucket_name(value: str) -> bool:
    return bool(_BUCKET_RE.match(value))


def check_bucket_name(value: str, param: str = "bucket") -> str:
    if not is_bucket_name(value):
        raise ValidationFailed(
            f"{value!r} is not a bucket name: use 2 to 63 lower-case letters, digits and '-'.",
            param=param,
        )
    return value


def make_uri(bucket: str, resource_type: str, uid: str) -> str:
    return f"/{bucket}/{resource_type}/{uid}/"


@dataclass(frozen=True)
class Uri:
    bucket: str
    resource_type: str
    uid: str

    def __str__(self) -> str:
        return make_uri(self.bucket, self.resource_type, self.uid)


def uid_of(uri: str) -> str:
    """The uid of a URI Fold made itself (a receipt's); ValueError if it is not one."""
    parsed = parse_uri(uri)
    if parsed is None:
        raise ValueError(f"not a URI: {uri!r}")
    return parsed.uid


def parse_uri(value: object) -> Uri | None:
    """The parts of a record URI, with or without its trailing slash; None if not one."""
    if not isinstance(value, str):
        return None
    match = _URI_RE.match(value.strip())
    if match is None:
        return None
    return Uri(match.group(1), match.group(2), match.group(3))


def uid_block(count: int) -> tuple[str, int]:
    """For `count` uids laid out as `new_uid` makes them, made in one go (in SQL): their
    first 18 hex digits and the counter of the first; the k-th has counter
    (first + k) & 0xFFFFFF. The counters are taken from this process's, so no other uid
    made here shares one."""
    seconds = int(time.time())
    with _counter_lock:
        first = next(_counter)
        for _ in range(count - 1):
            next(_counter)
    return (seconds.to_bytes(4, "big") + _PROCESS_RANDOM).hex(), first & 0xFFFFFF
