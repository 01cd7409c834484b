"""How a dialect's handler sends a native command: as the request's caller, with the same role checks and
cache upkeep as the native API's operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from proto import subjects
from proto.catalog import ListProjects, Project, Role
from proto.subjects import Command
from services.gateway import auth_events
from services.gateway.auth import CALLER, ROLE_CACHE
from shared.bus import decoder
from shared.service import RUNTIME


async def ask(
    request: web.Request,
    command: Command,
    payload: msgspec.Struct,
    *,
    project_id: str | None = None,
    role: Role | None = None,
) -> Any:
    """The decoded reply of `command`. With `project_id` and `role`, the caller must hold at least that role
    on the project first (404 when they may not see it, 403 when their role is too weak), as a native
    operation's `role` demands; the services check again, this only answers sooner and from a cache."""
    bus = request.config_dict[RUNTIME].nats
    caller = request[CALLER]
    if project_id is not None and role is not None:
        caller = await request.config_dict[ROLE_CACHE].authorize(bus, caller, project_id, role)
    reply = await bus.request_raw(command, payload, caller=caller)
    auth_events.after_reply(request, command, payload, reply)
    return decoder(command.reply).decode(reply)


async def ask_all(
    request: web.Request,
    command: Command,
    page: Callable[[str | None], msgspec.Struct],
    *,
    project_id: str | None = None,
    role: Role | None = None,
) -> list[Any]:
    """Every item of a keyset listing: `page(cursor)` is the request for the page after `cursor` (None: the
    first), asked until a reply has no `next_cursor`. For the dialects whose products list whole collections
    (Hasty's exact totals, Segments' plain arrays)."""
    items: list[Any] = []
    cursor = None
    while True:
        reply = await ask(request, command, page(cursor), project_id=project_id, role=role)
        items.extend(reply.items)
        cursor = reply.next_cursor
        if cursor is None or not reply.items:
            return items


async def visible_projects(request: web.Request) -> list[Project]:
    """Every project the caller may see."""
    return await ask_all(request, subjects.LIST_PROJECTS, lambda cursor: ListProjects(limit=500, cursor=cursor))


async def project_named(request: web.Request, name: str) -> Project | None:
    """The project the caller sees by this name (names are unique in an organisation, whatever their case)."""
    found = await ask(request, subjects.LIST_PROJECTS, ListProjects(limit=1, name=name))
    return found.items[0] if found.items else None
