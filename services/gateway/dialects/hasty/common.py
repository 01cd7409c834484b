"""What every part of the Hasty dialect shares: its error shape, its pagination, bodies, and the
translation of native sample statuses and ids."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from proto.samples import SampleStatus
from services.gateway.dialects.errors import STATUS as DIALECT_STATUS
from services.gateway.dialects.errors import answering_errors
from services.gateway.dialects.native import ask
from shared.errors import LoupeError, invalid
from shared.hasty_format import IMAGE_STATUSES

__all__ = ["IMAGE_STATUSES", "ask"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Routes = list[tuple[str, str, Handler]]
PROJECT = "/v1/projects/{project_id}"
GROUND_TRUTH = "ground-truth"
MAX_PAGE = 500  # the native search's page limit; a larger `limit` gets this many, and the SDK asks for the rest

# Hasty answers a refused body with 400 and reads `message`. The SDK retries any status above 299 it does not
# know for 14 s and then fails without the message, so a conflict (a duplicate name, a workflow step Loupe
# refuses) is a 400 too; its `code` still says "conflict".
STATUS: dict[str, int] = {**DIALECT_STATUS, "conflict": 400}

SAMPLE_STATUSES: dict[str, SampleStatus] = {hasty: native for native, hasty in IMAGE_STATUSES.items()}


def error_response(status: int, code: str, message: str, path: str | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message, "code": code}
    if path:
        body["path"] = path
    return web.json_response(body, status=status)


def hasty_error(error: LoupeError, http_status: int | None) -> web.Response:
    """Every failure as Hasty's JSON `{"message": ...}` with the status its SDK maps to an exception."""
    path = error.details.get("path")
    message = error.message if not path or path in error.message else f"{error.message} (field `{path}`)"
    return error_response(http_status or STATUS[error.code], error.code, message, body_path(path))


hasty_errors = answering_errors(hasty_error)


def body_path(path: str | None) -> str | None:
    """A field's path in the body as Hasty users write it: `[0].bbox`, `name` (no JSONPath `$`)."""
    return path.removeprefix("$").removeprefix(".") if path else path


def json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status, content_type="application/json")


def no_content() -> web.Response:
    return web.Response(status=204)


def not_implemented(message: str) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        return error_response(501, "not_implemented", message)

    return answer


def query_int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"query parameter `{name}` must be a whole number, not {raw!r}", path=name) from None
    if value < 0:
        raise invalid(f"query parameter `{name}` must be 0 or more", path=name)
    return value


def query_list(request: web.Request, name: str) -> list[str]:
    """A list parameter, repeated (`a=1&a=2`) or comma-separated (`a=1,2`, as the SDK sends it)."""
    return [part for value in request.query.getall(name, []) for part in value.split(",") if part]


def paging(request: web.Request) -> tuple[int, int]:
    """(offset, limit) of a Hasty list call; `limit` defaults to 100 like the SDK's."""
    return query_int(request, "offset", 0), query_int(request, "limit", 100)


def page(items: Sequence[Any], total: int, offset: int, limit: int) -> web.Response:
    """Hasty's list shape; `total` must be exact: the SDK keeps asking until it has that many."""
    return json({"items": list(items), "meta": {"total": total, "offset": offset, "limit": limit}})


def page_of(request: web.Request, everything: Sequence[Any]) -> web.Response:
    """One page of a list that is read whole (schema items, datasets, one image's labels)."""
    offset, limit = paging(request)
    return page(everything[offset : offset + limit], len(everything), offset, limit)


def image_status(value: str, path: str) -> SampleStatus:
    try:
        return SAMPLE_STATUSES[value]
    except KeyError:
        raise invalid(f"{value!r} is not an image status; use one of {', '.join(SAMPLE_STATUSES)}", path=path) from None


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def norder(value: float | None) -> int | None:
    """Hasty orders are numbers; Loupe's are whole numbers, so a fraction is rounded."""
    return None if value is None else round(value)


_INDEXED_ITEM = re.compile(r"^\$\.items\[(\d+)\]")


def item_path(path: str | None, prefix: str = "") -> str | None:
    """A native bulk call's `$.items[i]...` path as the Hasty body's `[i]...`."""
    if not path:
        return path
    return _INDEXED_ITEM.sub(lambda match: f"{prefix}[{match.group(1)}]", path)
