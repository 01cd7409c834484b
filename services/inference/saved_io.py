"""Saved sources and sinks: pipeline configs kept by name in an organisation, and the pipelines that use them.

A pipeline carries its own copy of each config (live pipelines read only their own row); `pipeline_saved`
records which saved config it copied. Changing a saved config copies it again into every pipeline that
still carries the old one, restarting the running ones; a pipeline whose source or sink was changed by
other means no longer follows it (its reference is dropped then). Organisation admins change saved configs,
since one reaches pipelines of every project that uses it; any key of the organisation reads them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from proto import subjects
from proto.common import Caller, Empty
from proto.pipelines import PipelineRef, S3Source, Sink, Source
from proto.saved_io import (
    CreateSavedSinkRequest,
    CreateSavedSourceRequest,
    OrgScope,
    PipelineSaved,
    PipelineSavedRef,
    SavedRef,
    SavedSink,
    SavedSinkList,
    SavedSource,
    SavedSourceList,
    UpdateSavedSinkRequest,
    UpdateSavedSourceRequest,
    UseSavedRequest,
)
from services.inference.pipelines import COLUMNS, check_sinks, check_source, fetch_row, restarted, to_columns
from shared.bus import RequestContext
from shared.callers import actor
from shared.errors import LoupeError, conflict, invalid, not_found
from shared.ids import parse_uuid
from shared.service import Answers, Runtime

ANSWERS = Answers()

SAVED_COLUMNS = "id, org_id, part, name, config, created_by, created_at, updated_at"
SOURCE_POSITION = -1  # a pipeline's source in `pipeline_saved`; sinks are at 0, 1, …


@dataclass(frozen=True)
class Part:
    """What differs between saved sources and saved sinks."""

    name: str  # `source` or `sink`, as in the table
    kind: Any  # Source or Sink
    saved: Any  # SavedSource or SavedSink: how the API shows one

    def config(self, row: asyncpg.Record) -> Any:
        return msgspec.convert(row["config"], self.kind)

    def check(self, rt: Runtime, config: Any, path: str) -> None:
        if self.name == "source":
            if isinstance(config, S3Source):  # its secret is kept sealed with the pipeline, not in a saved copy
                raise invalid(
                    "an `s3` source holds a secret key: give it to the pipeline itself, not a saved source",
                    path=f"{path}.kind",
                )
            check_source(rt, config, path)
        else:
            try:
                check_sinks(rt, [config], path)
            except LoupeError as error:  # one sink, not a list of them: `$.sink[0].url` is `$.sink.url`
                error.details["path"] = str(error.details.get("path", path)).replace(f"{path}[0]", path)
                raise


SOURCE = Part("source", Source, SavedSource)
SINK = Part("sink", Sink, SavedSink)


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise LoupeError(
            "forbidden", "saved sources and sinks reach every project's pipelines: use an organisation admin key"
        )


async def fetch_saved(
    rt: Runtime, caller: Caller, part: Part, saved_id: str, path: str | None = None
) -> asyncpg.Record:
    row = await rt.db.fetchrow(
        f"SELECT {SAVED_COLUMNS} FROM saved_io WHERE id = $1 AND org_id = $2 AND part = $3",
        parse_uuid(saved_id, f"saved {part.name}", path),
        uuid.UUID(caller.org_id),
        part.name,
    )
    if row is None:
        error = not_found(f"saved {part.name}", saved_id)
        if path is not None:
            error.details["path"] = path
        raise error
    return row


async def users_of(rt: Runtime, saved: asyncpg.Record) -> list[str]:
    """The pipelines that still carry the saved config where they took it."""
    part = SOURCE if saved["part"] == "source" else SINK
    links = await rt.db.fetch(
        "SELECT l.position, p.source, p.sinks, p.id FROM pipeline_saved l JOIN pipelines p ON p.id = l.pipeline_id "
        "WHERE l.saved_id = $1 ORDER BY p.id",
        saved["id"],
    )
    config = part.config(saved)
    return sorted({str(link["id"]) for link in links if carried(link, link["position"]) == config})


async def shown(rt: Runtime, part: Part, row: asyncpg.Record) -> Any:
    return part.saved(
        id=str(row["id"]),
        name=row["name"],
        **{part.name: part.config(row)},
        pipelines=await users_of(rt, row),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert(rt: Runtime, caller: Caller, part: Part, name: str, config: Any) -> asyncpg.Record:
    require_admin(caller)
    part.check(rt, config, f"$.{part.name}")
    return await rt.db.fetchrow(
        f"INSERT INTO saved_io (id, org_id, part, name, config, created_by) VALUES ($1, $2, $3, $4, $5, $6) "
        f"RETURNING {SAVED_COLUMNS}",
        uuid.uuid4(),
        uuid.UUID(caller.org_id),
        part.name,
        name,
        to_columns(config),
        actor(caller),
    )


async def change(
    rt: Runtime, caller: Caller, part: Part, saved_id: str, name: str | None, config: Any
) -> asyncpg.Record:
    """The saved config renamed and/or changed; a new config reaches the pipelines still carrying the old one."""
    require_admin(caller)
    row = await fetch_saved(rt, caller, part, saved_id)
    if config is not None:
        part.check(rt, config, f"$.{part.name}")
    old = part.config(row)
    row = await rt.db.fetchrow(
        f"UPDATE saved_io SET name = coalesce($2, name), config = coalesce($3, config), updated_at = now() "
        f"WHERE id = $1 RETURNING {SAVED_COLUMNS}",
        row["id"],
        name,
        None if config is None else to_columns(config),
    )
    if config is not None and config != old:
        await follow(rt, part, row["id"], old, config)
    return row


async def follow(rt: Runtime, part: Part, saved_id: uuid.UUID, old: Any, new: Any) -> None:
    """Every pipeline that carries `old` where it uses the saved config takes `new`, restarting if it runs;
    one that carries something else no longer uses it."""
    links = await rt.db.fetch(
        "SELECT pipeline_id, position FROM pipeline_saved WHERE saved_id = $1 ORDER BY pipeline_id, position",
        saved_id,
    )
    for link in links:
        row = await rt.db.fetchrow(f"SELECT {COLUMNS} FROM pipelines WHERE id = $1", link["pipeline_id"])
        position = link["position"]
        if carried(row, position) != old:
            await rt.db.execute(
                "DELETE FROM pipeline_saved WHERE pipeline_id = $1 AND position = $2", row["id"], position
            )
            continue
        if position == SOURCE_POSITION:
            row = await rt.db.fetchrow(
                f"UPDATE pipelines SET source = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
                row["id"],
                to_columns(new),
            )
        else:
            sinks = msgspec.convert(row["sinks"], list[Sink])
            sinks[position] = new
            row = await rt.db.fetchrow(
                f"UPDATE pipelines SET sinks = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
                row["id"],
                to_columns(sinks),
            )
        await restarted(rt, row)


def carried(pipeline: asyncpg.Record, position: int) -> Any:
    """The pipeline's own config at `position` (its source, or the sink there; None past its last sink)."""
    if position == SOURCE_POSITION:
        return msgspec.convert(pipeline["source"], Source)
    sinks = msgspec.convert(pipeline["sinks"], list[Sink])
    return sinks[position] if position < len(sinks) else None


async def remove(rt: Runtime, caller: Caller, part: Part, saved_id: str) -> Empty:
    require_admin(caller)
    row = await fetch_saved(rt, caller, part, saved_id)
    users = await users_of(rt, row)
    if users:
        raise conflict(
            f"pipelines {', '.join(users)} use this saved {part.name}: give them another one first", path="$"
        )
    async with rt.db.acquire() as db, db.transaction():  # links of pipelines that no longer carry it go too
        await db.execute("DELETE FROM pipeline_saved WHERE saved_id = $1", row["id"])
        await db.execute("DELETE FROM saved_io WHERE id = $1", row["id"])
    return Empty()


async def listing(rt: Runtime, caller: Caller, part: Part) -> list[asyncpg.Record]:
    return await rt.db.fetch(
        f"SELECT {SAVED_COLUMNS} FROM saved_io WHERE org_id = $1 AND part = $2 ORDER BY created_at, id",
        uuid.UUID(caller.org_id),
        part.name,
    )


async def saved_of(rt: Runtime, pipeline: asyncpg.Record) -> PipelineSaved:
    """The saved configs the pipeline still carries, by position."""
    links = await rt.db.fetch(
        "SELECT l.position, l.saved_id, s.config FROM pipeline_saved l JOIN saved_io s ON s.id = l.saved_id "
        "WHERE l.pipeline_id = $1",
        pipeline["id"],
    )
    followed: dict[int, str] = {}
    for link in links:
        part = SOURCE if link["position"] == SOURCE_POSITION else SINK
        if carried(pipeline, link["position"]) == part.config(link):
            followed[link["position"]] = str(link["saved_id"])
    return PipelineSaved(
        pipeline_id=str(pipeline["id"]),
        source_id=followed.get(SOURCE_POSITION),
        sink_ids=[followed.get(i) for i in range(len(pipeline["sinks"]))],
    )


# -- commands ---------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_SAVED_SOURCE)
async def create_source(rt: Runtime, request: CreateSavedSourceRequest, ctx: RequestContext) -> SavedSource:
    new = request.source
    return await shown(rt, SOURCE, await insert(rt, ctx.require_caller(), SOURCE, new.name, new.source))


@ANSWERS(subjects.CREATE_SAVED_SINK)
async def create_sink(rt: Runtime, request: CreateSavedSinkRequest, ctx: RequestContext) -> SavedSink:
    new = request.sink
    return await shown(rt, SINK, await insert(rt, ctx.require_caller(), SINK, new.name, new.sink))


@ANSWERS(subjects.LIST_SAVED_SOURCES)
async def list_sources(rt: Runtime, request: OrgScope, ctx: RequestContext) -> SavedSourceList:
    return SavedSourceList(
        items=[await shown(rt, SOURCE, row) for row in await listing(rt, ctx.require_caller(), SOURCE)]
    )


@ANSWERS(subjects.LIST_SAVED_SINKS)
async def list_sinks(rt: Runtime, request: OrgScope, ctx: RequestContext) -> SavedSinkList:
    return SavedSinkList(items=[await shown(rt, SINK, row) for row in await listing(rt, ctx.require_caller(), SINK)])


@ANSWERS(subjects.GET_SAVED_SOURCE)
async def get_source(rt: Runtime, request: SavedRef, ctx: RequestContext) -> SavedSource:
    return await shown(rt, SOURCE, await fetch_saved(rt, ctx.require_caller(), SOURCE, request.id))


@ANSWERS(subjects.GET_SAVED_SINK)
async def get_sink(rt: Runtime, request: SavedRef, ctx: RequestContext) -> SavedSink:
    return await shown(rt, SINK, await fetch_saved(rt, ctx.require_caller(), SINK, request.id))


@ANSWERS(subjects.UPDATE_SAVED_SOURCE)
async def update_source(rt: Runtime, request: UpdateSavedSourceRequest, ctx: RequestContext) -> SavedSource:
    changes = request.changes
    row = await change(rt, ctx.require_caller(), SOURCE, request.id, changes.name, changes.source)
    return await shown(rt, SOURCE, row)


@ANSWERS(subjects.UPDATE_SAVED_SINK)
async def update_sink(rt: Runtime, request: UpdateSavedSinkRequest, ctx: RequestContext) -> SavedSink:
    changes = request.changes
    return await shown(rt, SINK, await change(rt, ctx.require_caller(), SINK, request.id, changes.name, changes.sink))


@ANSWERS(subjects.DELETE_SAVED_SOURCE)
async def delete_source(rt: Runtime, request: SavedRef, ctx: RequestContext) -> Empty:
    return await remove(rt, ctx.require_caller(), SOURCE, request.id)


@ANSWERS(subjects.DELETE_SAVED_SINK)
async def delete_sink(rt: Runtime, request: SavedRef, ctx: RequestContext) -> Empty:
    return await remove(rt, ctx.require_caller(), SINK, request.id)


@ANSWERS(subjects.USE_SAVED_IO)
async def use(rt: Runtime, request: UseSavedRequest, ctx: RequestContext) -> PipelineSaved:
    caller = ctx.require_caller()
    row = await fetch_row(rt, PipelineRef(project_id=request.project_id, pipeline_id=request.pipeline_id))
    if str(row["org_id"]) != caller.org_id:
        raise not_found("pipeline", request.pipeline_id)
    chosen = request.use
    links: list[tuple[int, uuid.UUID]] = []
    assignments: dict[str, Any] = {}
    if chosen.source_id is not None:
        saved = await fetch_saved(rt, caller, SOURCE, str(chosen.source_id), "$.source_id")
        links.append((SOURCE_POSITION, saved["id"]))
        assignments["source"] = saved["config"]
    if chosen.sink_ids is not None:
        sinks = []
        for i, sink_id in enumerate(chosen.sink_ids):
            saved = await fetch_saved(rt, caller, SINK, str(sink_id), f"$.sink_ids[{i}]")
            links.append((i, saved["id"]))
            sinks.append(saved["config"])
        assignments["sinks"] = sinks
    if not assignments:
        raise invalid("name a `source_id`, `sink_ids` or both", path="$")
    async with rt.db.acquire() as db, db.transaction():
        sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(assignments, start=2))
        row = await db.fetchrow(
            f"UPDATE pipelines SET {sets}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
            row["id"],
            *assignments.values(),
        )
        if "sinks" in assignments:
            await db.execute("DELETE FROM pipeline_saved WHERE pipeline_id = $1 AND position >= 0", row["id"])
        await db.executemany(
            "INSERT INTO pipeline_saved (pipeline_id, position, saved_id) VALUES ($1, $2, $3) "
            "ON CONFLICT (pipeline_id, position) DO UPDATE SET saved_id = excluded.saved_id",
            [(row["id"], position, saved_id) for position, saved_id in links],
        )
    await restarted(rt, row)
    return await saved_of(rt, row)


@ANSWERS(subjects.GET_PIPELINE_SAVED_IO)
async def saved_of_pipeline(rt: Runtime, request: PipelineSavedRef, ctx: RequestContext) -> PipelineSaved:
    row = await fetch_row(rt, PipelineRef(project_id=request.project_id, pipeline_id=request.pipeline_id))
    return await saved_of(rt, row)
