"""The web interface's routes and files: our own static files and, from the npm package
installed by `make install`, htmx (never copied into the repository, never from a CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response

from fold.api.routing import Router
from fold.ui import history, jobs, pages, signin, writes
from fold.ui.render import SECURITY_HEADERS, STATIC

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = Path(REPO / "node_modules")
VENDOR = {"htmx.min.js": NODE_MODULES / "htmx.org" / "dist" / "htmx.min.js"}

vendor = Router(include_in_schema=False)


@vendor.get("/ui/vendor/{name}")
def vendor_file(name: str) -> Response:
    path = VENDOR.get(name)
    if path is None or not path.is_file():
        return Response(
            "Not installed: run `make install` (npm ci).",
            status_code=404,
            media_type="text/plain",
        )
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"}
    )


@vendor.get("/ui/static/{name}")
def static_file(name: str) -> Response:
    path = (STATIC / name).resolve()
    if path.parent != STATIC or not path.is_file():
        return Response("Not found", status_code=404, media_type="text/plain")
    kinds = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    return FileResponse(
        path,
        media_type=kinds.get(path.suffix, "application/octet-stream"),
        headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"},
    )


def install(app: FastAPI) -> None:
    app.include_router(vendor)
    app.include_router(signin.router)
    # The job and writing pages first: their fixed paths must win over /{bucket}/... ones.
    app.include_router(jobs.router)
    app.include_router(writes.router)
    app.include_router(history.router)
    app.include_router(pages.router)
