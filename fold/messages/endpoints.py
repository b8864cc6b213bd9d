"""HTTP for messages: templates (with a preview for one record), and the signed
unsubscribe and acknowledgement links, which need no API key."""

from __future__ import annotations

import html
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from fold.api.deps import CallerDep, DbSession, Params
from fold.api.routing import OBJECT_BODY, Router, error_responses, route
from fold.messages import links, templates

router = Router(prefix="/messages/v1/{bucket}", tags=["messages"])
public = Router(prefix="/messages/v1/{bucket}", tags=["messages"])
ERRORS = error_responses(400, 401, 403, 404, 415, 429)
LINK_ERRORS = error_responses(403, 404)
# The links in an email open pages for a person, not JSON for a client.
PAGE_ANSWER = {
    **LINK_ERRORS,
    200: {"description": "A page", "content": {"text/html": {"schema": {"type": "string"}}}},
}


@route(router, ["GET"], "/templates", accepts=("page", "page_size", "channel"), responses=ERRORS)
def list_templates(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """The bucket's message templates, by name, paged; `channel` narrows them."""
    return templates.listing(session, caller=caller, params=params)


@route(
    router,
    ["POST"],
    "/templates",
    accepts=templates.ACCEPTS,
    responses=ERRORS,
    status_code=201,
    openapi_extra=OBJECT_BODY,
)
def create_template(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """A new template: `name`, `channel` (email, sms, in_app), `subject`, `text_body`,
    `html_body`; each part must parse (Jinja2, sandboxed)."""
    return templates.create(session, caller=caller, params=params)


@route(router, ["GET"], "/templates/{uid}", responses=ERRORS)
def get_template(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    """One template."""
    return templates.template_out(templates.load(session, caller, uid))


@route(
    router,
    ["PUT"],
    "/templates/{uid}",
    accepts=templates.ACCEPTS,
    responses=ERRORS,
    openapi_extra=OBJECT_BODY,
)
def replace_template(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Replace a template: every part is set to the body or emptied."""
    return templates.change(session, caller=caller, uid=uid, params=params, replace=True)


@route(
    router,
    ["PATCH"],
    "/templates/{uid}",
    accepts=templates.ACCEPTS,
    responses=ERRORS,
    openapi_extra=OBJECT_BODY,
)
def change_template(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Change the parts of a template that are sent."""
    return templates.change(session, caller=caller, uid=uid, params=params, replace=False)


@route(router, ["DELETE"], "/templates/{uid}", responses=ERRORS)
def delete_template(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    """Delete a template; jobs asked for later with it are refused."""
    return templates.delete(session, caller=caller, uid=uid)


@route(router, ["GET"], "/templates/{uid}/render", accepts=("uri",), responses=ERRORS)
def render_template(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """The template rendered for one record (`uri`), and whether it would be sent."""
    return templates.preview(
        session, request.app.state.settings, caller=caller, uid=uid, params=params
    )


@route(router, ["POST"], "/templates/{uid}/render", accepts=("uri",), responses=ERRORS)
def render_template_post(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """The same as GET, with `uri` in the body."""
    return templates.preview(
        session, request.app.state.settings, caller=caller, uid=uid, params=params
    )


def _page(title: str, body: str, form: str | None = None) -> HTMLResponse:
    button = (
        f'<form method="post" action="{html.escape(form)}"><button type="submit">'
        f"{html.escape(title)}</button></form>"
        if form
        else ""
    )
    return HTMLResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(body)}</p>{button}</body></html>"
    )


@route(
    public,
    ["GET"],
    "/unsubscribe/{resource_type}/{uid}/{sig}",
    public=True,
    response_class=HTMLResponse,
    responses=PAGE_ANSWER,
)
def unsubscribe_page(
    request: Request, bucket: str, resource_type: str, uid: str, sig: str
) -> HTMLResponse:
    """A page asking to confirm: mail scanners follow links, so GET changes nothing."""
    links.check_unsubscribe(
        request.app.state.settings, bucket=bucket, resource_type=resource_type, uid=uid, sig=sig
    )
    return _page("Unsubscribe", "Stop receiving these emails?", form=str(request.url.path))


@route(
    public,
    ["POST"],
    "/unsubscribe/{resource_type}/{uid}/{sig}",
    accepts=("List-Unsubscribe",),  # RFC 8058's one-click body
    public=True,
    response_class=HTMLResponse,
    responses=PAGE_ANSWER,
)
def unsubscribe(
    request: Request, session: DbSession, bucket: str, resource_type: str, uid: str, sig: str
) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058): sets the contact's `email_opt_out`."""
    links.unsubscribe(
        session,
        request.app.state.settings,
        bucket=bucket,
        resource_type=resource_type,
        uid=uid,
        sig=sig,
    )
    return _page("Unsubscribed", "You will not receive these emails any more.")


@route(
    public,
    ["GET"],
    "/acknowledge/{uid}/{sig}",
    public=True,
    response_class=HTMLResponse,
    responses=PAGE_ANSWER,
)
def acknowledge_page(request: Request, bucket: str, uid: str, sig: str) -> HTMLResponse:
    """A page asking to confirm the acknowledgement."""
    links.check_acknowledge(request.app.state.settings, bucket=bucket, uid=uid, sig=sig)
    return _page("Acknowledge", "Confirm that you have read this message.", str(request.url.path))


@route(
    public,
    ["POST"],
    "/acknowledge/{uid}/{sig}",
    public=True,
    response_class=HTMLResponse,
    responses=PAGE_ANSWER,
)
def acknowledge(
    request: Request, session: DbSession, bucket: str, uid: str, sig: str
) -> HTMLResponse:
    """Record the acknowledgement on the message."""
    links.acknowledge(session, request.app.state.settings, bucket=bucket, uid=uid, sig=sig)
    return _page("Thank you", "Your acknowledgement is recorded.")
