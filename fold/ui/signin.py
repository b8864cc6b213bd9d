"""Signing in and out of the web interface."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from fold.api.deps import DbSession, client_address
from fold.api.routing import Router
from fold.auth import service as auth
from fold.auth import sessions
from fold.auth.throttle import LoginThrottle
from fold.errors import AuthenticationFailed, FoldError, PermissionDenied, RateLimited
from fold.ui import session as ui
from fold.ui.render import UiRoute, render

router = Router(prefix="/ui", route_class=UiRoute, include_in_schema=False)


def _form(request: Request, status: int = 200, **context: object) -> Response:
    token, new = ui.login_csrf(request)
    response = render("login.html", status, login_csrf=token, **context)
    if new:
        ui.set_login_csrf(response, request, token)
    return response


@router.get("")
@router.get("/")
def home(request: Request, db: DbSession) -> Response:
    """The first bucket the session may use, or the sign-in page."""
    try:
        key, _ = ui.session_key(request, db)
    except ui.SignInNeeded:
        return ui.redirect("/ui/login")
    buckets = auth.key_buckets(db, key)
    if not buckets:
        return _form(request, 403, error="This account has no bucket to work in.")
    return ui.redirect(f"/ui/{buckets[0]}/")


@router.get("/login")
def login_page(request: Request) -> Response:
    return _form(request)


@router.post("/login")
async def login(request: Request, db: DbSession) -> Response:
    """Username and password, or an API key for a quick look."""
    data = await ui.form_data(request)
    expected = request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
    if not expected or data.get(sessions.CSRF_FIELD) != expected:
        raise PermissionDenied(
            "The sign-in form came without its CSRF token; reload the page and try again.",
            error="CSRF token missing or wrong",
        )
    username = str(data.get("username") or "")
    api_key = str(data.get("api_key") or "").strip()
    throttle: LoginThrottle = request.app.state.login_throttle
    address = client_address(request)
    try:
        if api_key:
            # A wrong key counts against the address like a wrong password.
            throttle.check(username="", address=f"key:{address}")
            try:
                key = auth.authenticate(db, f"Bearer {api_key}")
            except AuthenticationFailed:
                throttle.failed(username="", address=f"key:{address}")
                raise
            token = api_key
        else:
            password = str(data.get("password") or "")
            if not username or not password:
                return _form(
                    request, 400, error="Give a username and a password.", username=username
                )
            token = auth.login_throttled(
                db, throttle, username=username, password=password, address=address
            )
            key = auth.authenticate(db, f"Bearer {token}")
            key.name = ui.UI_KEY_PREFIX + key.name
    except (AuthenticationFailed, PermissionDenied) as error:
        return _form(request, error.status, error=error.description, username=username)
    except RateLimited as error:
        response = _form(request, 429, error=error.description, username=username)
        response.headers.update(error.headers)
        return response
    buckets = auth.key_buckets(db, key)
    if not buckets:
        return _form(request, 403, error="This account has no bucket to work in.")
    response = ui.redirect(f"/ui/{buckets[0]}/")
    ui.set_session(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request, db: DbSession) -> Response:
    """Ends the session; a key made by signing in with a password is revoked."""
    try:
        key, token = ui.session_key(request, db)
    except ui.SignInNeeded:
        return ui.redirect("/ui/login")
    data = await ui.form_data(request)
    if not sessions.csrf_ok(token, data.get(sessions.CSRF_FIELD)):
        raise PermissionDenied("The sign-out form came without its CSRF token.")
    if key.username is not None and key.name.startswith(ui.UI_KEY_PREFIX):
        auth.revoke_key(db, key_or_id=key.id)
    response = ui.redirect("/ui/login")
    ui.clear_session(response)
    return response


__all__ = ["FoldError", "router"]
