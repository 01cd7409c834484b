"""The Geti Tune dialect's application, mounted by the gateway at `/api`: every endpoint of Geti Tune's REST
API, with Loupe's API keys (`X-Api-Key` or `Authorization: Bearer`)."""

from __future__ import annotations

from aiohttp import web

from services.gateway.dialects.geti import (
    annotating,
    datasets,
    io,
    jobs,
    models,
    pipeline,
    projects,
    revisions,
    views,
)
from services.gateway.dialects.geti.common import geti_errors


def create_app() -> web.Application:
    app = web.Application(middlewares=[geti_errors])
    for module in (projects, datasets, annotating, views, models, revisions, io, pipeline, jobs):
        for method, path, handler in module.ROUTES:
            # Named, so that the gateway's request metrics tell the dialect's operations apart.
            app.router.add_route(method, path, handler, name=f"geti_{handler.__name__}")
    return app
