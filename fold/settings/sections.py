"""The sections of a bucket's settings store and the options each takes. An integration
(Mailchimp, Xero) adds its section here; nothing else changes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
MAILCHIMP_KEY_RE = re.compile(r"^[0-9a-f]{32}-[a-z]+[0-9]+$", re.IGNORECASE)
UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)
# Xero's account codes (up to 10 characters) and tax types (OUTPUT2, NONE, TAX001...).
XERO_CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # text, int, float, choice, email, url, mailchimp_key, uuid, xero_code
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    secret: bool = False  # stored encrypted like the rest, and never answered or logged


SECTIONS: dict[str, tuple[Option, ...]] = {
    "smtp": (
        Option("host", "text", required=True),
        Option("port", "int", default=587),
        Option("security", "choice", default="starttls", choices=("starttls", "tls", "none")),
        Option("username", "text"),
        Option("password", "text", secret=True),
        Option("from_address", "email", required=True),
        Option("from_name", "text"),
        Option("reply_to", "email"),
        Option("per_second", "float", default=0.0),  # 0: as fast as the server takes them
        Option("timeout", "float", default=20.0),
    ),
    "sms": (
        Option("base_url", "url", required=True),
        Option("account_sid", "text", required=True),
        Option("auth_token", "text", required=True, secret=True),
        Option("from_number", "text", required=True),
        Option("default_region", "text", default="GB"),
    ),
    "mailchimp": (
        # The key's data-centre suffix (`-us6`) gives the API's address; `base_url`
        # overrides it (a local stand-in server in tests).
        Option("api_key", "mailchimp_key", required=True, secret=True),
        Option("audience_id", "text", required=True),
        Option("base_url", "url"),
    ),
    "xero": (
        # A Xero custom connection: its client id and secret get tokens by the client
        # credentials grant; the tenant is the organisation invoices are raised in.
        Option("client_id", "text", required=True),
        Option("client_secret", "text", required=True, secret=True),
        Option("tenant_id", "uuid", required=True),
        Option("default_account_code", "xero_code", default="200"),
        Option("default_tax_type", "xero_code"),
        # Xero's own addresses unless set (a local stand-in server in tests).
        Option("identity_url", "url"),
        Option("api_url", "url"),
    ),
}


def read_option(option: Option, raw: Any) -> Any:
    """`raw` read as the option's kind; ValueError says why it cannot be."""
    if option.kind == "int":
        if isinstance(raw, bool):
            raise ValueError("must be a whole number")
        value = int(str(raw).strip())
        if not 0 < value < 65536:
            raise ValueError("must be between 1 and 65535")
        return value
    if option.kind == "float":
        number = float(str(raw).strip())
        if number < 0 or number != number:
            raise ValueError("must be a number, 0 or more")
        return number
    if not isinstance(raw, str):
        raise ValueError("must be text")
    text = raw.strip()
    if option.kind == "choice" and text not in option.choices:
        raise ValueError(f"must be one of {', '.join(option.choices)}")
    if option.kind == "mailchimp_key" and not MAILCHIMP_KEY_RE.match(text):
        raise ValueError("must be a Mailchimp API key: 32 hex digits, a dash, the data centre")
    if option.kind == "uuid" and not UUID_RE.match(text):
        raise ValueError("must be a UUID like 00000000-0000-0000-0000-000000000000")
    if option.kind == "xero_code" and not XERO_CODE_RE.match(text):
        raise ValueError("must be a Xero code: letters, digits, '_', '.' or '-', at most 50")
    if option.kind == "email" and not EMAIL_RE.match(text):
        raise ValueError("must be an email address")
    if option.kind == "url":
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        text = text.rstrip("/")
    if len(text) > 2000:
        raise ValueError("is too long")
    return text
