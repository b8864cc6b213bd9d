"""The local outbox: where messages go when a bucket has no SMTP server or SMS provider
set (the embedded default), so nothing is silently dropped. One `.eml` file per email and
one `.json` file per SMS under `FOLD_DATA_DIR/outbox/{bucket}/`; `fold outbox` lists them."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from fold.timefmt import utcnow


def folder(data_dir: str, bucket: str) -> Path:
    return Path(data_dir) / "outbox" / bucket


def _path(data_dir: str, bucket: str, message_uid: str, suffix: str) -> Path:
    where = folder(data_dir, bucket)
    where.mkdir(parents=True, exist_ok=True)
    return where / f"{utcnow():%Y%m%dT%H%M%S}-{message_uid}{suffix}"


def write_email(data_dir: str, bucket: str, message_uid: str, message: Message) -> Path:
    path = _path(data_dir, bucket, message_uid, ".eml")
    path.write_bytes(message.as_bytes())
    return path


def write_sms(data_dir: str, bucket: str, message_uid: str, sms: dict[str, Any]) -> Path:
    path = _path(data_dir, bucket, message_uid, ".json")
    path.write_text(json.dumps(sms, indent=2, ensure_ascii=False) + "\n")
    return path


@dataclass(frozen=True)
class Entry:
    path: Path
    bucket: str
    channel: str
    to: str
    subject: str


def entries(data_dir: str, bucket: str | None = None) -> Iterator[Entry]:
    """What the outbox holds, oldest first."""
    root = Path(data_dir) / "outbox"
    if not root.is_dir():
        return
    buckets = [root / bucket] if bucket else sorted(p for p in root.iterdir() if p.is_dir())
    for where in buckets:
        if not where.is_dir():
            continue
        for path in sorted(where.iterdir()):
            if path.suffix == ".eml":
                parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                yield Entry(path, where.name, "email", str(parsed["To"]), str(parsed["Subject"]))
            elif path.suffix == ".json":
                sms = json.loads(path.read_text())
                yield Entry(path, where.name, "sms", str(sms.get("to")), str(sms.get("body"))[:60])
