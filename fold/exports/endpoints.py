"""HTTP for exports: the streamed CSV, the export jobs (GET or POST), and the journal of
each export with its download."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from fold.api.deps import CallerDep, DbSession, Params
from fold.api.routing import Endpoint, Router, error_responses, route
from fold.db.engine import unit_of_work
from fold.exports import service, storage
from fold.exports.columns import Column, Reader, export_columns, row_values
from fold.exports.gdpr import Gdpr, read_gdpr
from fold.exports.run import Counts, audit_bypass, selected
from fold.exports.sheets import CsvWriter
from fold.segments import repository
from fold.segments.reads import load_for_read
from fold.timefmt import utcnow

segments = Router(prefix="/segments/v2/{bucket}/segment/{uid}", tags=["exports"])
journals = Router(prefix="/api/v2/{bucket}/journal/{uid}", tags=["exports"])
ERRORS = error_responses(400, 401, 403, 404, 409, 429)


def get_and_post(path: str) -> Callable[[Endpoint], Endpoint]:
    """The reference serves exports with GET; POST is accepted too (one OpenAPI operation
    each, so their ids differ)."""

    def register(func: Endpoint) -> Endpoint:
        route(segments, ["GET"], path, accepts=service.KNOWN_PARAMS, responses=ERRORS)(func)
        route(segments, ["POST"], path, accepts=service.KNOWN_PARAMS, responses=ERRORS)(func)
        return func

    return register


def _start(request: Request, caller: Any, session: Session, uid: str, params: Any, fmt: str) -> Any:
    return service.start_export(
        session, caller=caller, uid=uid, params=params, report_format=fmt,
        queue=request.app.state.queue,
    )  # fmt: skip


@get_and_post("/all/xlsx")
def export_xlsx(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Start an .xlsx export (`template` = a fieldset); answers the receipt."""
    return _start(request, caller, session, uid, params, "xlsx")  # type: ignore[no-any-return]


@get_and_post("/all/excel")
def export_excel(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """The same as `/all/xlsx`."""
    return _start(request, caller, session, uid, params, "excel")  # type: ignore[no-any-return]


@get_and_post("/all/pdf")
def export_pdf(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Start a PDF export: `template` = `table` (default), `labels` or a fieldset."""
    return _start(request, caller, session, uid, params, "pdf")  # type: ignore[no-any-return]


# A CSV streams at once: no job to check without starting (`debug`), no receipt to carry a
# `policy`; sent anyway, they are refused rather than ignored.
CSV_PARAMS = service.KNOWN_PARAMS - {"debug", "policy"}


@route(
    segments,
    ["GET"],
    "/all/csv",
    accepts=CSV_PARAMS,
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {
            "description": "The records as CSV, a header row first",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
)
def segment_csv(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> StreamingResponse:
    """The records as CSV, streamed; `template` names a fieldset; contacts who opted out
    (`gdpr_channel`, default `all`) are left out unless `gdpr_bypass` with a reason."""
    caller.require("export")
    service.check_params(params)
    row = load_for_read(session, caller, uid)
    template = params.get("template")
    columns = export_columns(session, row, template if isinstance(template, str) else None,
                             with_uri=True)  # fmt: skip
    gdpr = read_gdpr(caller, params, default_channel="all")
    stream = csv_stream(
        request.app.state.sessions, caller.bucket, row.uid, columns.columns, gdpr,
        caller.user_uri,
    )  # fmt: skip
    name = service.file_name(row.name, "csv", utcnow().date())
    return StreamingResponse(
        stream,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def csv_stream(
    factory: sessionmaker[Session],
    bucket: str,
    segment_uid: str,
    columns: list[Column],
    gdpr: Gdpr,
    user_uri: str,
) -> Iterator[str]:
    """The CSV a chunk at a time, read in its own session (the request's has closed). A
    bypass is audited when the stream ends, even when the client stops reading early, with
    the opted-out contacts it had sent by then."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer, columns)
    counts = Counts()
    readers = [Reader(c) for c in columns]
    with factory() as session:
        row = repository.get(session, bucket=bucket, uid=segment_uid)
        assert row is not None
        session.expunge(row)
    try:
        with factory() as session:
            for record in selected(session, row, gdpr, counts):
                writer.write(row_values(readers, record))
                counts.rows += 1
                if counts.rows % 500 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()
    finally:
        if gdpr.bypass:
            with unit_of_work(factory) as session:
                audit_bypass(session, segment=row, user_uri=user_uri, fmt="csv", gdpr=gdpr,
                             counts=counts, journal_uri=None)  # fmt: skip


@route(journals, ["GET"], "/")
def read_journal(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    """What an export wrote: segment, format, fieldset, rows, rows GDPR left out, who,
    when, and its status."""
    return service.read_journal(session, caller, uid)


@route(
    journals,
    ["GET"],
    "/download",
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {
            "description": "The export's file: .csv, .xlsx or .pdf",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in (
                    "text/csv",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "application/pdf",
                )
            },
        },
    },
)
def download(
    request: Request, caller: CallerDep, session: DbSession, uid: str
) -> StreamingResponse:
    """The export's file; 409 while the export is still running."""
    journal = service.download(session, caller, uid)
    assert journal.file_name is not None
    chunks = storage.read_chunks(request.app.state.sessions, bucket=journal.bucket,
                                 journal_uid=journal.uid)  # fmt: skip
    headers = {"Content-Disposition": f'attachment; filename="{journal.file_name}"'}
    if journal.size is not None:
        headers["Content-Length"] = str(journal.size)
    return StreamingResponse(
        chunks, media_type=journal.content_type or "application/octet-stream", headers=headers
    )
