"""The per-bucket settings store for outside services (SMTP, SMS provider; later
Mailchimp and Xero): set by administrators, encrypted at rest, secrets never answered.

A section is one encrypted JSON object. Answers describe a section with its plain options
and, for each secret, only whether it is set."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.config import Settings
from fold.db.models import BucketSetting
from fold.errors import NotFound, Problem, ValidationFailed
from fold.settings import crypto
from fold.settings.sections import SECTIONS, Option, read_option
from fold.timefmt import format_datetime, utcnow

log = logging.getLogger("fold.settings")


class Unreadable(Exception):
    """A section is stored but cannot be decrypted: FOLD_SECRET_KEY changed."""


def _section(name: str) -> tuple[Option, ...]:
    options = SECTIONS.get(name)
    if options is None:
        raise NotFound(
            f"{name!r} is not a settings section; use one of {', '.join(SECTIONS)}.",
            param="section",
        )
    return options


def load(
    session: Session, settings: Settings, *, bucket: str, section: str
) -> dict[str, Any] | None:
    """A section's options, secrets included, for the code that calls out; None when unset."""
    row = session.get(BucketSetting, (bucket, section))
    if row is None:
        return None
    try:
        values: dict[str, Any] = json.loads(crypto.open_sealed(settings, row.sealed))
    except crypto.InvalidToken:
        raise Unreadable(
            f"the {section} settings of bucket {bucket} cannot be decrypted: "
            "FOLD_SECRET_KEY is not the key they were saved with; set them again"
        ) from None
    for option in _section(section):
        values.setdefault(option.name, option.default)
    return values


def _describe(
    name: str, values: dict[str, Any] | None, row: BucketSetting | None
) -> dict[str, Any]:
    options = SECTIONS[name]
    plain = {o.name: (values or {}).get(o.name, o.default) for o in options if not o.secret}
    secrets = {o.name: bool((values or {}).get(o.name)) for o in options if o.secret}
    return {
        "section": name,
        "configured": values is not None,
        "values": plain if values is not None else {},
        "secrets_set": secrets,
        "last_updated": format_datetime(row.last_updated) if row else None,
    }


def describe(
    session: Session, settings: Settings, *, caller: Caller, section: str
) -> dict[str, Any]:
    """One section as an administrator may see it: no secret values."""
    caller.require("manage_settings")
    _section(section)
    row = session.get(BucketSetting, (caller.bucket, section))
    try:
        values = load(session, settings, bucket=caller.bucket, section=section)
    except Unreadable as exc:
        return {**_describe(section, None, row), "configured": True, "error": str(exc)}
    return _describe(section, values, row)


def describe_all(session: Session, settings: Settings, *, caller: Caller) -> dict[str, Any]:
    caller.require("manage_settings")
    return {
        "sections": [describe(session, settings, caller=caller, section=name) for name in SECTIONS]
    }


def put(
    session: Session,
    settings: Settings,
    *,
    caller: Caller,
    section: str,
    params: dict[str, Any],
    replace: bool = False,
) -> dict[str, Any]:
    """Set a section's options: the options sent change (empty text clears one); with
    `replace` the others go back to their defaults. Every problem is answered at once."""
    caller.require("manage_settings")
    options = {o.name: o for o in _section(section)}
    problems = [
        Problem(f"{key!r} is not an option of {section}; use {', '.join(options)}.", key)
        for key in params
        if key not in options
    ]
    current: dict[str, Any] = {}
    # Settings saved under another key are replaced by what is sent now.
    with contextlib.suppress(Unreadable):
        if not replace:
            current = dict(load(session, settings, bucket=caller.bucket, section=section) or {})
    for key, raw in params.items():
        option = options.get(key)
        if option is None:
            continue
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            current.pop(key, None)
            continue
        try:
            current[key] = read_option(option, raw)
        except ValueError as exc:
            problems.append(Problem(f"{key} {exc}.", key))
    for option in options.values():
        if option.required and current.get(option.name) in (None, ""):
            problems.append(Problem(f"{section} needs {option.name}.", option.name))
    if problems:
        raise ValidationFailed.collect(problems)
    stored = {k: v for k, v in current.items() if v is not None}
    row = session.get(BucketSetting, (caller.bucket, section))
    sealed = crypto.seal(settings, json.dumps(stored, sort_keys=True).encode())
    if row is None:
        row = BucketSetting(
            bucket=caller.bucket, section=section, sealed=sealed, last_updated=utcnow()
        )
        session.add(row)
    else:
        row.sealed, row.last_updated = sealed, utcnow()
    session.flush()
    # Names only: values (secrets above all) never reach a log line.
    log.info(
        "bucket %s: %s settings set by %s (%s)",
        caller.bucket,
        section,
        caller.user_uri,
        ", ".join(sorted(params)),
    )
    return _describe(section, stored, row)


def clear(session: Session, settings: Settings, *, caller: Caller, section: str) -> dict[str, Any]:
    caller.require("manage_settings")
    _section(section)
    row = session.get(BucketSetting, (caller.bucket, section))
    if row is not None:
        session.delete(row)
        session.flush()
        log.info("bucket %s: %s settings cleared by %s", caller.bucket, section, caller.user_uri)
    return _describe(section, None, None)


def sections_set(session: Session, *, bucket: str) -> list[str]:
    return list(
        session.scalars(select(BucketSetting.section).where(BucketSetting.bucket == bucket))
    )
