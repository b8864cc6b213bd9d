"""Browser sessions for the web interface: the cookie that carries the session's API key,
and the CSRF token bound to it.

The cookie is HttpOnly, so page scripts never see the key; a request that authenticates
with the cookie and changes something must also carry the session's CSRF token (a form
field or the `X-CSRF-Token` header), which a page on another site cannot read."""

from __future__ import annotations

import hashlib
import hmac

SESSION_COOKIE = "fold_session"
LOGIN_CSRF_COOKIE = "fold_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_SECONDS = 12 * 3600


def csrf_token(session_key: str) -> str:
    """The CSRF token of a session: derived from its secret key, so it needs no storage
    and a page on another site cannot compute it."""
    return hmac.new(session_key.encode(), b"fold-ui-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_key: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(session_key), str(given))
