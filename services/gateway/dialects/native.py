"""How a dialect's handler sends a native command: as the request's caller, with the same role checks and
cache upkeep as the native API's operations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from proto import subjects
from proto.catalog import ListProjects, Project, Role
from proto.samples import Sample
from proto.search import SearchQuery, SearchSamples
from proto.subjects import Command
from services.gateway import auth_events
from services.gateway.auth import CALLER, ROLE_CACHE
from shared.bus import decoder
from shared.errors import LoupeError
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


SEARCH_PAGE = 500  # the most sample ids one search takes
CATALOGUED_POLL_S = 0.05


async def samples_by_id(request: web.Request, project_id: str, ids: list[str]) -> dict[str, Sample]:
    """Those of the samples that exist, by id."""
    found: dict[str, Sample] = {}
    for start in range(0, len(ids), SEARCH_PAGE):
        search = SearchQuery(sample_ids=ids[start : start + SEARCH_PAGE], limit=SEARCH_PAGE)
        page = await ask(request, subjects.SEARCH_SAMPLES, SearchSamples(project_id=project_id, query=search))
        found.update((sample.id, sample) for sample in page.items)
    return found


async def catalogued(request: web.Request, project_id: str, ids: list[str], within_s: float) -> list[Sample]:
    """The samples an import run made, in the order of `ids`, once the catalog has them: a run is done when its
    images are stored, and the catalog makes their samples from ingest's event a moment later."""
    deadline = asyncio.get_running_loop().time() + within_s
    found: dict[str, Sample] = {}
    while True:
        missing = list(dict.fromkeys(sample_id for sample_id in ids if sample_id not in found))
        if not missing:
            return [found[sample_id] for sample_id in ids]
        if asyncio.get_running_loop().time() > deadline:
            raise LoupeError(
                "unavailable", f"sample {missing[0]} is stored but not yet catalogued; try again in a moment"
            )
        found.update(await samples_by_id(request, project_id, missing))
        if any(sample_id not in found for sample_id in missing):
            await asyncio.sleep(CATALOGUED_POLL_S)
