"""Serves the web console: `/` is its page, `/console/…` its ES modules and CSS, all public (no key needed to
load them; the page then signs in with an API key and calls `/v1/…` like any other client)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

FOLDER = Path(__file__).parent
STATIC_PREFIX = "/console"
INDEX = FOLDER / "index.html"
# Always revalidate (a cheap 304 while unchanged): after an upgrade, a page from the cache must not load
# modules of another version beside the new ones.
REVALIDATE = {"Cache-Control": "no-cache"}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(INDEX, headers=REVALIDATE)


async def revalidate_modules(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(STATIC_PREFIX + "/"):
        response.headers.update(REVALIDATE)


def mount_console(app: web.Application) -> None:
    app.router.add_get("/", index, name="console")
    app.router.add_static(STATIC_PREFIX, FOLDER / "static", name="console_static")
    app.on_response_prepare.append(revalidate_modules)
