"""The application: routers, middleware, error handlers and offline API docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, text

from fold import __version__
from fold.api.ratelimit import make_rate_limiter
from fold.api.routing import error_responses, without_phantoms
from fold.audit import endpoints as audit_endpoints
from fold.auth.throttle import ThrottleLimits, make_login_throttle
from fold.columns.index import ColumnIndex, Options
from fold.config import Settings
from fold.db.engine import connections, make_engine, make_sessionmaker, server_limits
from fold.exports import endpoints as export_endpoints
from fold.jobs import endpoints as job_endpoints
from fold.jobs.queue import Queue
from fold.mailchimp import endpoints as mailchimp_endpoints
from fold.messages import endpoints as message_endpoints
from fold.records import clock, prepare
from fold.records import endpoints as record_endpoints
from fold.rules.sqlite import FUNCTIONS as SQLITE_FUNCTIONS
from fold.schemas import Open
from fold.segments import endpoints as segment_endpoints
from fold.segments import history as segment_history
from fold.settings import endpoints as settings_endpoints
from fold.ui import endpoints as ui_endpoints
from fold.web import errors, login
from fold.web.middleware import Admission, GiveBackWhenQuiet, RequestContext
from fold.web.prefork import heap_trimmer
from fold.xero import endpoints as xero_endpoints


class Health(Open):
    status: str
    version: str


DOCS_STATIC = Path(fastapi_offline.__file__).resolve().parent / "static"

# Connections a serving process takes from its pool besides its requests': the embedded
# queue's two job threads and a store's catalogue thread, and one to spare.
BACKGROUND_CONNECTIONS = 4

DESCRIPTION = """Fold keeps segments — stored queries and lists — over CRM records, and acts on
them in bulk. Every call but `/health` and the login needs `Authorization: Bearer <key>`.
Errors are JSON `{error, description, type, param}`."""


def _lifespan(embedded_worker: bool) -> Any:
    """In the embedded default, jobs run in worker threads of the serving process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        consumer = None
        if embedded_worker:
            queue: Queue = app.state.queue
            consumer = queue.consumer(workers=2, embedded=True)
            consumer.start()
            queue.recover()
        try:
            yield
        finally:
            if consumer is not None:
                consumer.stop(graceful=True)
            prepare.shutdown()

    return lifespan


def create_app(
    settings: Settings, engine: Engine | None = None, *, embedded_worker: bool = False
) -> FastAPI:
    app = FastAPI(
        title="Fold",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        lifespan=_lifespan(embedded_worker),
    )
    engine = engine or make_engine(
        settings.database_url, server_limits(settings), sqlite_functions=SQLITE_FUNCTIONS
    )
    prepare.configure(workers=settings.import_workers)
    app.state.settings = settings
    app.state.engine = engine
    # The application's column index, used by sessions of its own factories only.
    app.state.columns = columns = ColumnIndex(Options.from_settings(settings))
    app.state.sessions = columns.attach(clock.install(make_sessionmaker(engine)))
    app.state.write_sessions = columns.attach(clock.install(make_sessionmaker(engine, writes=True)))
    app.state.rate_limiter = make_rate_limiter(settings.rate_limit_per_minute, settings.redis_url)
    app.state.queue = Queue(settings, engine, columns=columns)
    app.state.login_throttle = make_login_throttle(
        ThrottleLimits(
            per_user=settings.login_failures_per_user,
            per_address=settings.login_failures_per_address,
            window_seconds=settings.login_window_seconds,
        ),
        settings.redis_url,
    )

    errors.install(app)
    spare = BACKGROUND_CONNECTIONS
    app.add_middleware(Admission, connections=lambda: connections(engine) - spare)
    if (trim := heap_trimmer()) is not None:
        app.add_middleware(GiveBackWhenQuiet, trim=trim)
    app.add_middleware(
        RequestContext,
        max_body=settings.max_body_bytes,
        max_import=settings.max_import_bytes,
    )
    app.include_router(login.router)
    app.include_router(audit_endpoints.router)
    app.include_router(job_endpoints.jobs)
    app.include_router(job_endpoints.actions)
    app.include_router(job_endpoints.action_records)
    app.include_router(export_endpoints.journals)
    app.include_router(export_endpoints.segments)
    app.include_router(record_endpoints.router)
    app.include_router(segment_endpoints.schema_router)
    app.include_router(segment_history.router)
    app.include_router(segment_endpoints.router)
    app.include_router(message_endpoints.router)
    app.include_router(message_endpoints.public)
    app.include_router(settings_endpoints.router)
    ui_endpoints.install(app)
    app.include_router(mailchimp_endpoints.router)
    app.include_router(xero_endpoints.router)
    app.mount("/static/docs", StaticFiles(directory=DOCS_STATIC), name="docs-static")

    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = without_phantoms(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get(
        "/health",
        tags=["service"],
        response_model=None,
        responses={200: {"model": Health, "description": "OK"}, **error_responses(503)},
    )
    def health(request: Request) -> Any:
        """200 once the server can serve: the database answers."""
        try:
            with request.app.state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse(
                {
                    "error": "Unavailable",
                    "description": "The database does not answer.",
                    "type": "unavailable",
                },
                status_code=503,
            )
        return {"status": "ok", "version": __version__}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Fold API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
        )

    return app
