"""Datasets (splits) of a project: create, list, get, update, delete — each change with its event.

The gateway has already checked the caller's role on the project of the path; every query here is
scoped by that project, so a dataset id of another project answers 404.
"""

from __future__ import annotations

import uuid

import asyncpg

from proto import subjects
from proto.common import Empty
from proto.samples import (
    CreateDatasetRequest,
    Dataset,
    DatasetDeleted,
    DatasetPage,
    DatasetRef,
    DatasetUpdated,
    ListDatasetsRequest,
    UpdateDatasetRequest,
)
from shared import outbox
from shared.bus import RequestContext
from shared.errors import LoupeError, check_version, conflict, not_found
from shared.ids import parse_uuid
from shared.paging import keyset_page
from shared.rows import from_row, one_of_project
from shared.service import Answers, Runtime

ANSWERS = Answers()

COLUMNS = "id, project_id, name, description, version, created_at, updated_at"


def to_dataset(row: asyncpg.Record) -> Dataset:
    return from_row(Dataset, row)


def name_taken(name: str) -> LoupeError:
    return conflict(f"a dataset named {name!r} already exists in this project; choose another name", path="$.name")


@ANSWERS(subjects.CREATE_DATASET)
async def create(rt: Runtime, request: CreateDatasetRequest, ctx: RequestContext) -> Dataset:
    name = request.dataset.name.strip()
    async with rt.db.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                f"INSERT INTO datasets (project_id, name, description) VALUES ($1, $2, $3) RETURNING {COLUMNS}",
                parse_uuid(request.project_id, "project"),
                name,
                request.dataset.description,
            )
        except asyncpg.UniqueViolationError:
            raise name_taken(name) from None
        except asyncpg.ForeignKeyViolationError:
            raise not_found("project", request.project_id) from None
        dataset = to_dataset(row)
        await outbox.emit(conn, subjects.DATASET_CREATED, dataset, dataset.project_id)
    return dataset


@ANSWERS(subjects.LIST_DATASETS)
async def list_page(rt: Runtime, request: ListDatasetsRequest, ctx: RequestContext) -> DatasetPage:
    query = f"SELECT {COLUMNS} FROM datasets WHERE project_id = $1"
    project = parse_uuid(request.project_id, "project")
    rows, next_cursor = await keyset_page(rt.db, query, [project], request.page.cursor, request.page.limit)
    return DatasetPage(items=[to_dataset(row) for row in rows], next_cursor=next_cursor)


async def fetch(
    conn: asyncpg.Connection | asyncpg.Pool, project_id: str, dataset_id: str, lock: str = ""
) -> asyncpg.Record:
    """The dataset's row, or 404 when the project has no such dataset. `lock`: "FOR UPDATE" to change
    it, "FOR KEY SHARE" to add samples to it (it cannot be deleted meanwhile)."""
    query = f"SELECT {COLUMNS} FROM datasets WHERE id = $1 AND project_id = $2 {lock}"
    return await one_of_project(conn, query, "dataset", dataset_id, project_id)


@ANSWERS(subjects.GET_DATASET)
async def get(rt: Runtime, request: DatasetRef, ctx: RequestContext) -> Dataset:
    return to_dataset(await fetch(rt.db, request.project_id, request.dataset_id))


@ANSWERS(subjects.UPDATE_DATASET)
async def update(rt: Runtime, request: UpdateDatasetRequest, ctx: RequestContext) -> Dataset:
    changes = request.changes
    async with rt.db.acquire() as conn, conn.transaction():
        current = to_dataset(await fetch(conn, request.project_id, request.dataset_id, "FOR UPDATE"))
        check_version(changes.version, current.version, f"dataset {current.id}")
        name = changes.name.strip() if changes.name is not None else current.name
        description = changes.description if changes.description is not None else current.description
        changed = [
            field
            for field, old, new in (("name", current.name, name), ("description", current.description, description))
            if old != new
        ]
        if not changed:
            return current
        try:
            row = await conn.fetchrow(
                f"UPDATE datasets SET name = $2, description = $3, version = version + 1, updated_at = now() "
                f"WHERE id = $1 RETURNING {COLUMNS}",
                uuid.UUID(current.id),
                name,
                description,
            )
        except asyncpg.UniqueViolationError:
            raise name_taken(name) from None
        dataset = to_dataset(row)
        await outbox.emit(
            conn, subjects.DATASET_UPDATED, DatasetUpdated(dataset=dataset, changed=changed), dataset.project_id
        )
    return dataset


@ANSWERS(subjects.DELETE_DATASET)
async def delete(rt: Runtime, request: DatasetRef, ctx: RequestContext) -> Empty:
    """Its samples go with it; the one event says how many, instead of one event per sample."""
    async with rt.db.acquire() as conn, conn.transaction():
        current = await fetch(conn, request.project_id, request.dataset_id, "FOR UPDATE")
        count = await conn.fetchval(
            "WITH gone AS (DELETE FROM samples WHERE dataset_id = $1 RETURNING 1) SELECT count(*) FROM gone",
            current["id"],
        )
        await conn.execute("DELETE FROM datasets WHERE id = $1", current["id"])
        deleted = DatasetDeleted(
            id=str(current["id"]), project_id=str(current["project_id"]), name=current["name"], sample_count=count
        )
        await outbox.emit(conn, subjects.DATASET_DELETED, deleted, deleted.project_id)
    return Empty()
