"""HTTP for Mailchimp: start a segment's sync (SPEC 2.6, 5)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from fold.api.deps import CallerDep, DbSession, Params
from fold.api.routing import Router, error_responses, route
from fold.mailchimp import service

router = Router(prefix="/segments/v2/{bucket}/segment/{uid}", tags=["mailchimp"])
ERRORS = error_responses(400, 401, 403, 404, 415, 429)
# The parameters the sync reads (the reference's three, and safe_mode).
SYNC_PARAMS = ("segment_name", "mailchimp_batch_size", "verbose", "safe_mode")


@route(
    router,
    ["GET"],
    "/all/sync_mailchimp",
    accepts=SYNC_PARAMS,
    responses=ERRORS,
    operation_id="segmentAllSyncMailchimp",
)
@route(
    router,
    ["POST"],
    "/all/sync_mailchimp",
    accepts=SYNC_PARAMS,
    responses=ERRORS,
    operation_id="segmentAllSyncMailchimpPost",
)
def sync_mailchimp(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Start a Mailchimp sync job of the segment's contacts (`segment_name`,
    `mailchimp_batch_size` at most 500, `safe_mode` skips removals, `verbose`)."""
    state = request.app.state
    return service.start_sync(
        session, caller=caller, uid=uid, params=params, queue=state.queue, settings=state.settings
    )
