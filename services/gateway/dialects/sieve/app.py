"""The Sieve dialect's application, mounted by the gateway at `/sieve`: Sieve's `https://api.sievedata.com/v1/`
is `http://<gateway>/sieve/v1/`, with the same `X-API-Key` header. Where Sieve's prose and its examples name
a path differently, both spellings answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from services.gateway.dialects.errors import STATUS, answering_errors
from services.gateway.dialects.sieve import data, projects
from shared.errors import LoupeError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, message: str, path: str | None = None) -> web.Response:
    body: dict[str, Any] = {"description": message, "code": code}
    if path:
        body["path"] = path
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json")


def sieve_error(failure: LoupeError, http_status: int | None) -> web.Response:
    """Every failure as `{"description": ...}`, the field Sieve's answers carry their message in."""
    return error(http_status or STATUS[failure.code], failure.code, failure.message, failure.details.get("path"))


sieve_errors = answering_errors(sieve_error)


# (methods, paths, handler): every spelling the document uses for one operation.
ROUTES: list[tuple[tuple[str, ...], tuple[str, ...], Handler]] = [
    (("POST",), ("init_project",), projects.init_project),
    (("GET", "POST"), ("get_projects", "get_all_projects"), projects.get_projects),
    (("POST",), ("add_tags",), projects.add_tags),
    (("POST",), ("delete_tags",), projects.delete_tags),
    (("POST",), ("get_tag_status",), projects.get_tag_status),
    (("POST",), ("push_data",), data.push_data),
    (("POST",), ("get_metadata_by_job_id", "get_metadata_from_job_id"), data.by_job_id),
    (("POST",), ("get_metadata_by_image_ids", "get_metadata_from_image_ids"), data.by_image_ids),
    (("POST",), ("get_metadata_by_subset", "get_metadata_subset", "get_by_metadata"), data.by_subset),
]


def create_app() -> web.Application:
    app = web.Application(middlewares=[sieve_errors])
    for methods, paths, handler in ROUTES:
        for method in methods:
            for path in paths:
                # Named, so that the gateway's request metrics tell the dialect's operations apart.
                app.router.add_route(method, f"/v1/{path}", handler, name=f"sieve_{method.lower()}_{path}")
    return app
