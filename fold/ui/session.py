"""Who is signed in to the web interface, and the CSRF check on every form."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from fold.api.deps import DbSession
from fold.auth import service as auth
from fold.auth import sessions
from fold.auth.policies import Caller
from fold.db.models import ApiKey
from fold.errors import AuthenticationFailed, FoldError, PermissionDenied

UI_KEY_PREFIX = "ui "


class SignInNeeded(Exception):
    """Raised where a page needs a session; answered with a redirect to the sign-in page."""


@dataclass(frozen=True)
class UiSession:
    key: ApiKey
    token: str  # the session's secret (its API key); never rendered
    caller: Caller
    buckets: list[str]

    @property
    def csrf(self) -> str:
        return sessions.csrf_token(self.token)

    @property
    def who(self) -> str:
        return self.key.username or f"API key {self.key.name or self.key.id}"


def session_key(request: Request, db: Any) -> tuple[ApiKey, str]:
    token = request.cookies.get(sessions.SESSION_COOKIE)
    if not token:
        raise SignInNeeded
    try:
        return auth.authenticate(db, f"Bearer {token}"), token
    except AuthenticationFailed:
        raise SignInNeeded from None


def ui_session(request: Request, db: DbSession, bucket: Annotated[str, Path()]) -> UiSession:
    """The signed-in session acting in `bucket` (403 without a policy there)."""
    key, token = session_key(request, db)
    caller = auth.caller_for(db, key, bucket)
    return UiSession(key, token, caller, auth.key_buckets(db, key))


UiDep = Annotated[UiSession, Depends(ui_session)]


async def form_data(request: Request) -> dict[str, Any]:
    """A submitted form as a dict (repeated names become lists)."""
    form = await request.form()
    out: dict[str, Any] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            continue
        if name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out


async def checked_form(request: Request, ui: UiSession) -> dict[str, Any]:
    """The form, refused (403) unless it carries the session's CSRF token."""
    data = await form_data(request)
    given = data.pop(sessions.CSRF_FIELD, None) or request.headers.get(sessions.CSRF_HEADER)
    if not sessions.csrf_ok(ui.token, given if isinstance(given, str) else None):
        raise PermissionDenied(
            "The form came without this session's CSRF token; reload the page and try again.",
            error="CSRF token missing or wrong",
        )
    return data


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        sessions.SESSION_COOKIE,
        token,
        max_age=sessions.SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(sessions.SESSION_COOKIE, path="/")


def login_csrf(request: Request) -> tuple[str, bool]:
    """The sign-in form's token (double-submit cookie) and whether it is new."""
    token = request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
    if token and len(token) == 43:
        return token, False
    return secrets.token_urlsafe(32), True


def set_login_csrf(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        sessions.LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/ui/",
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


__all__ = ["FoldError", "SignInNeeded", "UiDep", "UiSession", "checked_form", "redirect"]
