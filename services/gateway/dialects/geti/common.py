"""What the Geti Tune dialect's parts share: reading bodies and query parameters, checking the caller's role on
the path's project, answering JSON (plain and paginated), and Geti's error shape."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from proto.catalog import Role
from services.gateway.auth import CALLER, ROLE_CACHE
from services.gateway.dialects import requests
from services.gateway.dialects.errors import STATUS, answering_errors
from services.gateway.dialects.requests import project_id
from shared.errors import LoupeError, invalid
from shared.service import RUNTIME

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (method, path under /api, handler). A path's `:verb` suffix needs its id matched without colons:
# `/sources/{source_id:[^/:]+}:export`.
Route = tuple[str, str, Handler]


MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status, content_type="application/json")


def geti_error(failure: LoupeError, http_status: int | None) -> web.Response:
    """Every failure as Geti's `{"error_code", "message", "http_status"}`, with the field's `path` when known."""
    status = http_status or STATUS[failure.code]
    error: dict[str, Any] = {"error_code": failure.code, "message": failure.message, "http_status": status}
    if path := failure.details.get("path"):
        error["path"] = path
    return answer(error, status)


geti_errors = answering_errors(geti_error)


# -- what the parts of the dialect share beyond the error shape -------------------------------------

PROJECT = "/projects/{project_id}"
ITEM = PROJECT + "/dataset/items/{item_id}"


def no_content() -> web.Response:
    return web.Response(status=204)


async def authorized(request: web.Request, role: Role) -> str:
    """The path's project id, once the caller is known to hold at least `role` on it, the role the native
    operation doing the same needs: 404 when they may not see the project, 403 when their role is too weak,
    before anything is asked or made (the services check again; this answers first, from a cache)."""
    pid = project_id(request)
    await request.config_dict[ROLE_CACHE].authorize(request.config_dict[RUNTIME].nats, request[CALLER], pid, role)
    return pid


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"query parameter `{name}` must be a whole number, not {raw!r}", path=name) from None
    if not low <= value <= high:
        raise invalid(f"query parameter `{name}` must be from {low} to {high}", path=name)
    return value


def query_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0", ""):
        raise invalid(f"query parameter `{name}` must be true or false, not {raw!r}", path=name)
    return raw in ("true", "1")


def query_uuid(request: web.Request, name: str) -> str | None:
    """An optional query parameter that must be an id (a UUID) when given."""
    raw = request.query.get(name, "")
    if raw == "":
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise invalid(f"query parameter `{name}` must be an id (a UUID), not {raw!r}", path=name) from None


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def paginated(items: list[Any], limit: int, offset: int, total: int) -> web.Response:
    """Geti's paginated list: the items and `{limit, offset, total, count}`."""
    return answer(
        {"items": items, "pagination": {"limit": limit, "offset": offset, "total": total, "count": len(items)}}
    )


def naming_missing_field(error: LoupeError) -> LoupeError:
    """msgspec places a missing field at the object that lacks it; Geti's clients are told the field itself."""
    missing = MISSING_FIELD.search(error.message)
    path = error.details.get("path")
    if missing and isinstance(path, str):
        error.details["path"] = f"{path}.{missing.group(1)}"
    return error


async def body(request: web.Request, kind: type) -> Any:
    """The request's JSON as `kind`; a mismatch is a 400 naming the field, a missing one by its own path."""
    try:
        return await requests.body(request, kind)
    except LoupeError as error:
        raise naming_missing_field(error) from None
