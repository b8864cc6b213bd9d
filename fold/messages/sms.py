"""SMS through an HTTP provider of the common shape (Twilio's Messages API): a form POST
of To, From and Body with basic auth to `{base_url}/2010-04-01/Accounts/{sid}/Messages.json`,
through the one outbound client (fold.outbound.http)."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

import httpx
import phonenumbers

from fold.outbound import http

# The GSM 03.38 basic set and its extension (which takes two septets).
GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class Sent:
    state: str  # sent, failed, unknown
    reason: str = ""
    provider_id: str = ""


def e164(number: str, region: str) -> str:
    """The number in E.164 form (+447700900123); ValueError says why it is unusable."""
    try:
        parsed = phonenumbers.parse(number, (region or "GB").upper())
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{number!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{number!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def segments(body: str) -> int:
    """How many SMS parts the body takes: 160/153 GSM-7 septets, or 70/67 UCS-2 units."""
    if all(c in GSM or c in GSM_EXTENDED for c in body):
        units = sum(2 if c in GSM_EXTENDED else 1 for c in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    if units <= single:
        return 1
    return math.ceil(units / part)


def send(
    config: dict[str, Any],
    *,
    to: str,
    body: str,
    allow_private: bool,
    timeout: float,
    client: httpx.Client | None,
) -> Sent:
    sid = str(config["account_sid"])
    url = f"{config['base_url']}/2010-04-01/Accounts/{sid}/Messages.json"
    token = base64.b64encode(f"{sid}:{config['auth_token']}".encode()).decode()
    # One attempt: a provider that took the request but whose answer was lost may have
    # sent the text, and a text is never sent twice.
    policy = http.Policy(allow_private=allow_private, timeout=timeout, attempts=1)
    result = http.post(
        url,
        policy=policy,
        data={"To": to, "From": str(config["from_number"]), "Body": body},
        headers={"Authorization": f"Basic {token}"},
        client=client,
    )
    if result.ok:
        try:
            answer = json.loads(result.text or "{}")
        except ValueError:
            answer = {}
        return Sent("sent", "", str(answer.get("sid") or ""))
    never_left = result.attempts == 0 or result.error.startswith(("ConnectError", "ConnectTimeout"))
    if result.status is None and not never_left:
        return Sent("unknown", f"no answer from the SMS provider ({result.error}); not sent again")
    detail = result.error
    if result.text:
        try:
            detail = f"{detail}: {json.loads(result.text).get('message') or result.text}"
        except (ValueError, AttributeError):
            detail = f"{detail}: {result.text}"
    return Sent("failed", f"the SMS provider refused it: {detail}"[:300])
