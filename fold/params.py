"""Reading request parameters that services share: flags (booleans) in their usual spellings."""

from __future__ import annotations

from typing import Any

from fold.errors import ValidationFailed

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def read_flag(params: dict[str, Any], name: str, default: bool = False) -> bool:
    """`params[name]` as a boolean; anything but the usual spellings is a 400 naming it."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    text = raw.strip().lower() if isinstance(raw, str) else None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValidationFailed(
        f"'{name}' is true or false (also 1/0, yes/no, on/off); got {raw!r}.", param=name
    )
