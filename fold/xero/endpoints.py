"""HTTP for Xero: the bucket's invoice templates (what the invoice actions raise)."""

from __future__ import annotations

from typing import Any

from fold.api.deps import CallerDep, DbSession, Params
from fold.api.routing import OBJECT_BODY, Router, error_responses, route
from fold.xero import templates

router = Router(prefix="/xero/v1/{bucket}", tags=["xero"])
ERRORS = error_responses(400, 401, 403, 404, 415, 429)


@route(router, ["GET"], "/invoice_templates", accepts=("page", "page_size"), responses=ERRORS)
def list_templates(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """The bucket's invoice templates, by name, paged."""
    return templates.listing(session, caller=caller, params=params)


@route(
    router,
    ["POST"],
    "/invoice_templates",
    accepts=templates.ACCEPTS,
    responses=ERRORS,
    status_code=201,
    openapi_extra=OBJECT_BODY,
)
def create_template(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """A new invoice template: `name`, `line_items` (each `description`, `quantity`,
    `unit_amount`, `account_code`, `tax_type`), `due` (`{"rule": "days_after_invoice_date",
    "days": 30}`, `day_of_following_month`, `day_of_current_month` with `day`, or
    `fixed_date` with `date`), `reference`, `line_amount_types` (exclusive, inclusive,
    no_tax), `currency_code`."""
    return templates.create(session, caller=caller, params=params)


@route(router, ["GET"], "/invoice_templates/{uid}", responses=ERRORS)
def get_template(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    """One invoice template."""
    return templates.template_out(templates.load(session, caller, uid))


@route(
    router,
    ["PUT"],
    "/invoice_templates/{uid}",
    accepts=templates.ACCEPTS,
    responses=ERRORS,
    openapi_extra=OBJECT_BODY,
)
def replace_template(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Replace a template: fields not sent go back to their defaults."""
    return templates.change(session, caller=caller, uid=uid, params=params, replace=True)


@route(
    router,
    ["PATCH"],
    "/invoice_templates/{uid}",
    accepts=templates.ACCEPTS,
    responses=ERRORS,
    openapi_extra=OBJECT_BODY,
)
def change_template(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Change the fields sent; a job already started keeps the template it started with."""
    return templates.change(session, caller=caller, uid=uid, params=params, replace=False)


@route(router, ["DELETE"], "/invoice_templates/{uid}", responses=ERRORS)
def delete_template(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    """Delete a template; jobs asked for later with it are refused."""
    return templates.delete(session, caller=caller, uid=uid)
