"""Rendering pages: one Jinja2 environment with autoescaping on, the security headers every
page carries, and the route class that turns errors into pages."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from fold.errors import FoldError
from fold.fields.display import value_at
from fold.ui.session import SignInNeeded, redirect

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
log = logging.getLogger("fold.ui")

# No inline script, no inline style, nothing from another origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _cell(value: Any) -> str:
    """A record value as text for a table cell (escaped by the template like any value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _query(base: dict[str, Any], **changes: Any) -> str:
    merged = {**base, **changes}
    return "?" + urlencode({k: v for k, v in merged.items() if v not in (None, "")})


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["cell"] = _cell
env.filters["attr_path"] = value_at
env.globals["query"] = _query


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def fragment(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return render(name, status, **context)


class UiRoute(APIRoute):
    """Pages answer errors as pages (same status), and a missing session as a redirect."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInNeeded:
                return redirect("/ui/login")
            except FoldError as error:
                if error.status >= 500:
                    log.exception("page failed")
                response = render(
                    "error.html",
                    error.status,
                    error=error.body(),
                    code=error.status,
                    request_id=str(getattr(request.state, "request_id", "")),
                )
                response.headers.update(error.headers)
                return response
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page_handler
