"""HTTP for the per-bucket settings store (administrators only; secrets never answered)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from fold.api.deps import CallerDep, DbSession, Params
from fold.api.routing import OBJECT_BODY, Router, error_responses, route
from fold.settings import service

router = Router(prefix="/settings/v1/{bucket}", tags=["settings"])


def any_option(name: str) -> bool:
    """Options differ by section: the settings service refuses a name the section lacks."""
    return True


ERRORS = error_responses(400, 401, 403, 404, 415, 429)


@route(router, ["GET"], "", responses=ERRORS)
def list_sections(request: Request, caller: CallerDep, session: DbSession) -> dict[str, Any]:
    """Every settings section: plain options and which secrets are set."""
    return service.describe_all(session, request.app.state.settings, caller=caller)


@route(router, ["GET"], "/{section}", responses=ERRORS)
def get_section(
    request: Request, caller: CallerDep, session: DbSession, section: str
) -> dict[str, Any]:
    """One section (`smtp`, `sms`): plain options and which secrets are set."""
    return service.describe(session, request.app.state.settings, caller=caller, section=section)


@route(
    router, ["PUT"], "/{section}", accepts=any_option, responses=ERRORS, openapi_extra=OBJECT_BODY
)
def replace_section(
    request: Request, caller: CallerDep, session: DbSession, section: str, params: Params
) -> dict[str, Any]:
    """Set a section's options; those not sent go back to their defaults."""
    settings = request.app.state.settings
    return service.put(
        session, settings, caller=caller, section=section, params=params, replace=True
    )


@route(
    router, ["PATCH"], "/{section}", accepts=any_option, responses=ERRORS, openapi_extra=OBJECT_BODY
)
def change_section(
    request: Request, caller: CallerDep, session: DbSession, section: str, params: Params
) -> dict[str, Any]:
    """Change the options sent; the others (secrets included) stay."""
    settings = request.app.state.settings
    return service.put(
        session, settings, caller=caller, section=section, params=params, replace=False
    )


@route(router, ["DELETE"], "/{section}", responses=ERRORS)
def clear_section(
    request: Request, caller: CallerDep, session: DbSession, section: str
) -> dict[str, Any]:
    """Forget a section's settings (messages then go to the local outbox)."""
    return service.clear(session, request.app.state.settings, caller=caller, section=section)
