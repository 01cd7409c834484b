"""The Hasty dialect's application, mounted by the gateway at `/hasty`: the Hasty SDK's
`Client(api_key, base_url="http://<gateway>/hasty")` runs against it unchanged."""

from __future__ import annotations

from aiohttp import web

from services.gateway.dialects.hasty import (
    buckets,
    exports,
    images,
    inference,
    labels,
    ml,
    projects,
    qa,
    schema,
    unsupported,
)
from services.gateway.dialects.hasty.common import hasty_errors


def create_app() -> web.Application:
    app = web.Application(middlewares=[hasty_errors])
    routes = [
        route
        for part in (projects, images, labels, schema, exports, qa, buckets, ml, inference, unsupported)
        for route in part.ROUTES
    ]
    for index, (method, path, handler) in enumerate(routes):
        # Named, so that the gateway's request metrics tell the dialect's operations apart.
        app.router.add_route(method, path, handler, name=f"hasty_{index}_{handler.__name__}")
    return app
