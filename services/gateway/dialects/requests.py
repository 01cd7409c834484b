"""Reading a dialect's request: its JSON body and the UUIDs in its path."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from shared.bus import decode
from shared.errors import LoupeError, invalid


async def body(request: web.Request, kind: type, missing: str = "send a JSON body") -> Any:
    """The request's JSON as `kind`; a mismatch is a 400 naming the field, no body at all one saying `missing`."""
    data = await request.read()
    if not data:
        raise invalid(missing, path="$")
    return decode(kind, data)


def uuid_param(request: web.Request, name: str) -> str:
    """A path parameter that must be a UUID (Loupe's ids are); anything else names nothing (404)."""
    value = request.match_info[name]
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise LoupeError("not_found", f"{name} {value!r} is not a UUID, so it names nothing", path=name) from None


def project_id(request: web.Request) -> str:
    return uuid_param(request, "project_id")
