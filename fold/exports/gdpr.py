"""Which contacts an export leaves out: those who opted out of the export's channel.

One definition, used by every format, the API and the CLI alike (docs/decisions.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fold.auth.policies import Caller
from fold.errors import PermissionDenied, ValidationFailed
from fold.params import read_flag

OPT_OUTS = {"email": "email_opt_out", "post": "post_opt_out", "sms": "sms_opt_out"}
CHANNELS = (*OPT_OUTS, "all")
MAX_REASON = 1000


@dataclass(frozen=True)
class Gdpr:
    channel: str
    bypass: bool = False
    reason: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(OPT_OUTS.values()) if self.channel == "all" else (OPT_OUTS[self.channel],)

    def opted_out(self, data: dict[str, Any]) -> bool:
        """True when the record's owner opted out of this channel (any, for `all`)."""
        return any(data.get(name) is True for name in self.fields)


def read_gdpr(caller: Caller, params: dict[str, Any], *, default_channel: str) -> Gdpr:
    """`gdpr_channel`, `gdpr_bypass` and `gdpr_bypass_reason`, checked: a bypass needs a
    reason (400) and a policy that may bypass (403)."""
    channel = params.get("gdpr_channel") or default_channel
    if channel not in CHANNELS:
        raise ValidationFailed(
            f"{channel!r} is not a GDPR channel; use one of {', '.join(CHANNELS)}.",
            param="gdpr_channel",
        )
    bypass = read_flag(params, "gdpr_bypass")
    reason = params.get("gdpr_bypass_reason")
    if reason is not None and not isinstance(reason, str):
        raise ValidationFailed("gdpr_bypass_reason is text.", param="gdpr_bypass_reason")
    reason = (reason or "").strip()[:MAX_REASON] or None
    if not bypass:
        return Gdpr(str(channel))
    if reason is None:
        raise ValidationFailed(
            "Including contacts who opted out needs a reason: send gdpr_bypass_reason. "
            "It goes into the audit trail.",
            param="gdpr_bypass_reason",
        )
    if not caller.can("gdpr_bypass"):
        raise PermissionDenied(
            f"The {caller.policy} policy may not include contacts who opted out "
            "(gdpr_bypass); ask an administrator."
        )
    return Gdpr(str(channel), True, reason)
