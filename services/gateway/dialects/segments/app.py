"""The Segments.ai dialect's application: routes, auth and error shapes.

Paths are served with and without their trailing slash: the SDK sends most with one, the API document
writes them without."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from services.gateway.auth import CALLER_CACHE, ROLE_CACHE, authenticate
from services.gateway.dialects.segments import datasets, files, releases, samples
from services.gateway.dialects.segments.common import segments_errors
from services.gateway.problems import BODY_LIMITS, read_body, request_context
from services.gateway.uploads import HTTP_CLIENT
from shared.service import RUNTIME

# Routes that take no API key: an asset upload is signed by its policy, an asset's URL is its secret, and
# files/ hands out presigned URLs (see files.py).
UNSIGNED_PREFIXES = ("/assets/", files.PREFIX)
DATASET = "/datasets/{owner}/{name}"
Handler = Any


async def api_status(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@web.middleware
async def authenticate_api(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(UNSIGNED_PREFIXES) and request.path != "/assets/":
        return await handler(request)
    return await authenticate(request, handler)


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/api_status", api_status),
    ("GET", "/user", datasets.get_me),
    ("GET", "/users/{user}", datasets.get_user),
    ("GET", "/user/datasets", datasets.list_datasets),
    ("POST", "/user/datasets", datasets.create_dataset),
    ("GET", "/users/{owner}/datasets", datasets.list_datasets),
    ("POST", "/users/{owner}/datasets", datasets.create_dataset),
    ("GET", "/organizations/{owner}/datasets", datasets.list_datasets),
    ("POST", "/organizations/{owner}/datasets", datasets.create_dataset),
    ("GET", DATASET, datasets.get_dataset),
    ("PATCH", DATASET, datasets.update_dataset),
    ("DELETE", DATASET, datasets.delete_dataset),
    ("POST", DATASET + "/clone", datasets.clone_dataset),
    ("POST", DATASET + "/collaborators", datasets.set_collaborator),
    ("GET", DATASET + "/collaborators/{user}", datasets.get_collaborator),
    ("PATCH", DATASET + "/collaborators/{user}", datasets.set_collaborator),
    ("DELETE", DATASET + "/collaborators/{user}", datasets.delete_collaborator),
    ("GET", DATASET + "/labelsets", datasets.list_labelsets),
    ("POST", DATASET + "/labelsets", datasets.create_labelset),
    ("GET", DATASET + "/labelsets/{labelset}", datasets.get_labelset),
    ("DELETE", DATASET + "/labelsets/{labelset}", datasets.delete_labelset),
    ("GET", DATASET + "/samples", samples.list_samples),
    ("POST", DATASET + "/samples", samples.create_sample),
    ("POST", DATASET + "/samples_bulk", samples.create_samples),
    ("DELETE", DATASET + "/samples_bulk", samples.delete_samples),
    ("GET", "/samples/{sample}", samples.get_sample),
    ("PATCH", "/samples/{sample}", samples.update_sample),
    ("DELETE", "/samples/{sample}", samples.delete_sample),
    ("GET", "/labels/{sample}/{labelset}", samples.get_label),
    ("PUT", "/labels/{sample}/{labelset}", samples.put_label),
    ("PATCH", "/labels/{sample}/{labelset}", samples.put_label),
    ("DELETE", "/labels/{sample}/{labelset}", samples.delete_label),
    ("GET", DATASET + "/releases", releases.list_releases),
    ("POST", DATASET + "/releases", releases.create_release),
    ("GET", DATASET + "/releases/{release}", releases.get_release),
    ("DELETE", DATASET + "/releases/{release}", releases.delete_release),
    ("GET", DATASET + "/issues", releases.list_issues),
    ("POST", "/samples/{sample}/issues", releases.create_issue),
    ("GET", "/samples/{sample}/issues", releases.list_sample_issues),
    ("PATCH", "/issues/{issue}", releases.update_issue),
    ("DELETE", "/issues/{issue}", releases.delete_issue),
    ("GET", DATASET + "/workunits", releases.list_workunits),
    ("POST", "/assets", samples.create_asset),
    ("POST", "/assets/upload", samples.upload_asset),
    ("GET", "/assets/{org}/{asset}/{filename}", samples.get_asset),
    ("GET", files.PREFIX + "images/{token}", files.get_image),
    ("GET", files.PREFIX + "releases/{token}/release.json", files.get_release_file),
    ("GET", files.PREFIX + "releases/{token}/bitmaps/{labelset}/{name}", files.get_release_bitmap),
    ("GET", files.PREFIX + "bitmaps/{token}", files.get_bitmap),
)


def route_name(index: int, handler: Handler) -> str:
    return f"segments_{index}_{handler.__name__}"


def create_app(gateway: web.Application) -> web.Application:
    """The dialect's app, sharing the gateway's runtime, key and role caches, body limits and HTTP client."""
    app = web.Application(
        middlewares=[request_context, segments_errors, authenticate_api, read_body],
        client_max_size=gateway[BODY_LIMITS].max_bytes,
    )
    app[RUNTIME] = gateway[RUNTIME]
    app[CALLER_CACHE] = gateway[CALLER_CACHE]
    app[ROLE_CACHE] = gateway[ROLE_CACHE]
    # The asset upload reads its multipart form itself, as a stream with its own limit.
    streamed = {
        name
        for index, (_, _, handler) in enumerate(ROUTES)
        if handler is samples.upload_asset
        for name in (route_name(index, handler), route_name(index, handler) + "_")
    }
    app[BODY_LIMITS] = msgspec.structs.replace(gateway[BODY_LIMITS], streamed=frozenset(streamed))
    app[HTTP_CLIENT] = gateway[HTTP_CLIENT]
    settings = gateway[RUNTIME].settings
    public = settings.segments_public_url or f"http://{settings.http_host}:{settings.segments_port}"
    app[files.PUBLIC_URL] = public.rstrip("/")
    for index, (method, path, handler) in enumerate(ROUTES):
        app.router.add_route(method, path + "/", handler, name=route_name(index, handler))
        app.router.add_route(method, path, handler, name=route_name(index, handler) + "_")
    return app
