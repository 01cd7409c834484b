"""Labelsets: named sets of labels per project. `ground-truth` exists in every project (made on first
use) and cannot be deleted; others are created, e.g. one per model whose predictions are stored."""

from __future__ import annotations

import uuid

import asyncpg

from proto import subjects
from proto.annotation import (
    GROUND_TRUTH,
    CreateLabelsetRequest,
    Labelset,
    LabelsetDeleted,
    LabelsetList,
    LabelsetRef,
    ProjectLabelsets,
    UpdateLabelsetRequest,
)
from proto.common import Empty
from shared import outbox
from shared.bus import RequestContext
from shared.errors import LoupeError, conflict, not_found
from shared.ids import parse_uuid
from shared.rows import from_row
from shared.service import Answers, Runtime

ANSWERS = Answers()

COLUMNS = "id, project_id, name, description, is_ground_truth, created_at"


def to_labelset(row: asyncpg.Record) -> Labelset:
    return from_row(Labelset, row)


async def ensure_ground_truth(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID) -> None:
    await conn.execute(
        "INSERT INTO labelsets (project_id, name, is_ground_truth, description) "
        "VALUES ($1, $2, true, 'The labels people make and review') ON CONFLICT DO NOTHING",
        project_id,
        GROUND_TRUTH,
    )


async def resolve(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID, name: str) -> asyncpg.Record:
    """The labelset called `name` in the project; ground-truth is made on first use."""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM labelsets WHERE project_id = $1 AND name = $2", project_id, name)
    if row is None and name == GROUND_TRUTH:
        await ensure_ground_truth(conn, project_id)
        return await resolve(conn, project_id, name)
    if row is None:
        raise not_found("labelset", name)
    return row


@ANSWERS(subjects.CREATE_LABELSET)
async def create(rt: Runtime, request: CreateLabelsetRequest, ctx: RequestContext) -> Labelset:
    project = parse_uuid(request.project_id, "project")
    async with rt.db.acquire() as conn, conn.transaction():
        await ensure_ground_truth(conn, project)
        row = await conn.fetchrow(
            f"INSERT INTO labelsets (project_id, name, description) VALUES ($1, $2, $3) "
            f"ON CONFLICT DO NOTHING RETURNING {COLUMNS}",
            project,
            request.labelset.name,
            request.labelset.description,
        )
        if row is None:
            raise conflict(
                f"the project already has a labelset named {request.labelset.name!r}",
                path="$.name",
                name=request.labelset.name,
            )
        labelset = to_labelset(row)
        await outbox.emit(conn, subjects.LABELSET_CREATED, labelset, request.project_id)
    return labelset


@ANSWERS(subjects.LIST_LABELSETS)
async def list_all(rt: Runtime, request: ProjectLabelsets, ctx: RequestContext) -> LabelsetList:
    project = parse_uuid(request.project_id, "project")
    await ensure_ground_truth(rt.db, project)
    rows = await rt.db.fetch(
        f"SELECT {COLUMNS} FROM labelsets WHERE project_id = $1 ORDER BY is_ground_truth DESC, created_at, name",
        project,
    )
    return LabelsetList(items=[to_labelset(row) for row in rows])


@ANSWERS(subjects.GET_LABELSET)
async def get(rt: Runtime, request: LabelsetRef, ctx: RequestContext) -> Labelset:
    return to_labelset(await resolve(rt.db, parse_uuid(request.project_id, "project"), request.labelset))


@ANSWERS(subjects.UPDATE_LABELSET)
async def update(rt: Runtime, request: UpdateLabelsetRequest, ctx: RequestContext) -> Labelset:
    project = parse_uuid(request.project_id, "project")
    row = await resolve(rt.db, project, request.labelset)
    row = await rt.db.fetchrow(
        f"UPDATE labelsets SET description = $2 WHERE id = $1 RETURNING {COLUMNS}",
        row["id"],
        request.changes.description,
    )
    return to_labelset(row)


@ANSWERS(subjects.DELETE_LABELSET)
async def delete(rt: Runtime, request: LabelsetRef, ctx: RequestContext) -> Empty:
    project = parse_uuid(request.project_id, "project")
    if request.labelset == GROUND_TRUTH:
        raise LoupeError("conflict", "ground-truth cannot be deleted; delete its labels instead", path="labelset")
    async with rt.db.acquire() as conn, conn.transaction():
        row = await resolve(conn, project, request.labelset)
        labels = await conn.fetchval("SELECT count(*) FROM labels WHERE labelset_id = $1", row["id"])
        await conn.execute("DELETE FROM labelsets WHERE id = $1", row["id"])
        await outbox.emit(
            conn,
            subjects.LABELSET_DELETED,
            LabelsetDeleted(project_id=request.project_id, id=str(row["id"]), name=row["name"], labels=labels),
            request.project_id,
        )
    return Empty()
