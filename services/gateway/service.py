"""The gateway service: an aiohttp app whose routes are the operations, each a bus request."""

from __future__ import annotations

from pathlib import Path

import msgspec
from aiohttp import web
from swagger_ui.utils import SWAGGER_UI_PY_ROOT

from proto.common import Redirect
from proto.ingest import UploadedFiles
from services.gateway import auth_events, backends, events, uploads
from services.gateway.auth import CALLER, CALLER_CACHE, ROLE_CACHE, CallerCache, RoleCache, authenticate
from services.gateway.console.serve import mount_console
from services.gateway.dialects.geti.app import create_app as create_geti_app
from services.gateway.dialects.hasty.app import create_app as create_hasty_app
from services.gateway.dialects.segments.listener import segments_listener
from services.gateway.dialects.sieve.app import create_app as create_sieve_app
from services.gateway.openapi import openapi_document
from services.gateway.operations import Operation
from services.gateway.problems import BODY_LIMITS, BodyLimits, read_body, request_context
from services.gateway.routes import OPERATIONS
from shared.bus import decode, decoder, encoder
from shared.errors import LoupeError
from shared.service import RUNTIME, Service
from shared.settings import Settings

DOCS_PAGE = Path(__file__).with_name("docs_page.html")


def parse_query(kind: type, request: web.Request) -> msgspec.Struct:
    try:
        return msgspec.convert(dict(request.query), kind, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = message.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in message else ""
        raise LoupeError(
            "invalid", message.replace(" - at `$.", " at query parameter `"), path=f"query.{path}" if path else "query"
        ) from None


def handler_for(op: Operation):
    async def handle(request: web.Request) -> web.Response:
        caller = request[CALLER]
        if op.admin and not caller.is_admin:
            raise LoupeError("forbidden", f"{op.operation_id} needs an admin API key")
        params = request.match_info
        if op.role is not None:
            caller = await request.app[ROLE_CACHE].authorize(
                request.app[RUNTIME].nats, caller, params["project_id"], op.role
            )
        command = op.command(params)
        query = parse_query(op.query, request) if op.query else None
        body = decode(op.body, await request.read()) if op.body else None
        sent = op.to_request(params, query, body)
        # The catalog's JSON is already the response body: passing it on saves a decode and an encode.
        result = await request.app[RUNTIME].nats.request_raw(command, sent, caller=caller)
        auth_events.after_reply(request, command, sent, result)
        if op.status == 204:
            return web.Response(status=204)
        if op.status == 302:
            return web.Response(status=302, headers={"Location": decoder(Redirect).decode(result).url})
        return web.Response(body=result, status=op.status, content_type="application/json")

    return handle


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[request_context, authenticate, read_body], client_max_size=settings.max_body_bytes
    )
    app[CALLER_CACHE] = CallerCache(settings.auth_cache_s)
    app[ROLE_CACHE] = RoleCache(settings.auth_cache_s)
    app.on_startup.append(auth_events.share_caches)
    app[BODY_LIMITS] = BodyLimits(
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.request_timeout_s,
        streamed=frozenset({uploads.OPERATION_ID}),
    )
    server_url = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    handwritten = {("get", events.PATH): events.OPENAPI, ("post", uploads.PATH): uploads.OPENAPI}
    document = encoder.encode(openapi_document(OPERATIONS, server_url, handwritten, (UploadedFiles,)))

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    async def docs(request: web.Request) -> web.FileResponse:
        return web.FileResponse(DOCS_PAGE)

    for op in OPERATIONS:
        app.router.add_route(op.method, op.path, handler_for(op), name=op.operation_id)
    events.mount(app)
    app.router.add_post(uploads.PATH, uploads.upload_files, name=uploads.OPERATION_ID)
    app.cleanup_ctx.append(uploads.http_client)
    app.add_subapp("/hasty", create_hasty_app())
    app.add_subapp("/sieve", create_sieve_app())
    app.add_subapp("/api", create_geti_app())
    app.cleanup_ctx.append(segments_listener)
    app.router.add_get("/openapi.json", openapi, name="openapi")
    app.router.add_get("/docs", docs, name="docs")
    app.router.add_static("/docs/static", SWAGGER_UI_PY_ROOT / "static")
    mount_console(app)
    return app


service = Service("gateway", uses_db=False, make_app=create_app)
service.on_startup(auth_events.follow_events)
backends.check_backends(service)
