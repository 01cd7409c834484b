"""Projects: create, list, get, update (rename), delete — each change with its event."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

import asyncpg

from proto import subjects
from proto.catalog import (CreateProject, ListProjects, Project, ProjectDeleted, ProjectPage, ProjectRef,
                           ProjectUpdated, UpdateProjectRequest)
from proto.common import Empty
from shared import outbox
from shared.bus import RequestContext
from shared.errors import LoupeError, conflict, invalid, not_found
from shared.service import Runtime

COLUMNS = "id, org_id, name, description, version, created_at, updated_at"


def to_project(row: asyncpg.Record) -> Project:
    return Project(id=str(row["id"]), org_id=str(row["org_id"]), name=row["name"], description=row["description"],
                   version=row["version"], created_at=row["created_at"], updated_at=row["updated_at"])


def parse_id(ident: str) -> uuid.UUID:
    try:
        return uuid.UUID(ident)
    except ValueError:
        raise not_found("project", ident) from None


def encode_cursor(project: Project) -> str:
    return base64.urlsafe_b64encode(f"{project.created_at.isoformat()}|{project.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, ident = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(ident)
    except ValueError:
        raise invalid("cursor is not one this API returned; pass next_cursor from the previous page unchanged",
                      path="$.cursor") from None


def name_taken(name: str) -> LoupeError:
    return conflict(f"a project named {name!r} already exists in this organisation; choose another name",
                    path="$.name")


async def create(rt: Runtime, request: CreateProject, ctx: RequestContext) -> Project:
    caller = ctx.require_caller()
    name = request.name.strip()
    async with rt.db.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                f"INSERT INTO projects (org_id, name, description) VALUES ($1, $2, $3) RETURNING {COLUMNS}",
                uuid.UUID(caller.org_id), name, request.description)
        except asyncpg.UniqueViolationError:
            raise name_taken(name) from None
        project = to_project(row)
        await outbox.emit(conn, subjects.PROJECT_CREATED, project, project.id)
    return project


async def list_page(rt: Runtime, request: ListProjects, ctx: RequestContext) -> ProjectPage:
    caller = ctx.require_caller()
    after = decode_cursor(request.cursor) if request.cursor else None
    rows = await rt.db.fetch(
        f"SELECT {COLUMNS} FROM projects WHERE org_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) "
        "ORDER BY created_at, id LIMIT $4",
        uuid.UUID(caller.org_id), after and after[0], after and after[1], request.limit + 1)
    items = [to_project(row) for row in rows[: request.limit]]
    next_cursor = encode_cursor(items[-1]) if len(rows) > request.limit else None
    return ProjectPage(items=items, next_cursor=next_cursor)


async def get(rt: Runtime, request: ProjectRef, ctx: RequestContext) -> Project:
    caller = ctx.require_caller()
    row = await rt.db.fetchrow(f"SELECT {COLUMNS} FROM projects WHERE id = $1 AND org_id = $2",
                               parse_id(request.id), uuid.UUID(caller.org_id))
    if row is None:
        raise not_found("project", request.id)
    return to_project(row)


async def update(rt: Runtime, request: UpdateProjectRequest, ctx: RequestContext) -> Project:
    caller = ctx.require_caller()
    changes = request.changes
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(f"SELECT {COLUMNS} FROM projects WHERE id = $1 AND org_id = $2 FOR UPDATE",
                                  parse_id(request.id), uuid.UUID(caller.org_id))
        if row is None:
            raise not_found("project", request.id)
        current = to_project(row)
        if changes.version is not None and changes.version != current.version:
            raise conflict(f"project {current.id} is at version {current.version}, not {changes.version}; "
                           "get it again and reapply your change", path="$.version", current_version=current.version)
        name = changes.name.strip() if changes.name is not None else current.name
        description = changes.description if changes.description is not None else current.description
        changed = [field for field, old, new in (("name", current.name, name),
                                                 ("description", current.description, description)) if old != new]
        if not changed:
            return current
        try:
            row = await conn.fetchrow(
                f"UPDATE projects SET name = $2, description = $3, version = version + 1, updated_at = now() "
                f"WHERE id = $1 RETURNING {COLUMNS}", row["id"], name, description)
        except asyncpg.UniqueViolationError:
            raise name_taken(name) from None
        project = to_project(row)
        await outbox.emit(conn, subjects.PROJECT_UPDATED, ProjectUpdated(project=project, changed=changed), project.id)
    return project


async def delete(rt: Runtime, request: ProjectRef, ctx: RequestContext) -> Empty:
    caller = ctx.require_caller()
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("DELETE FROM projects WHERE id = $1 AND org_id = $2 RETURNING id, org_id, name",
                                  parse_id(request.id), uuid.UUID(caller.org_id))
        if row is None:
            raise not_found("project", request.id)
        deleted = ProjectDeleted(id=str(row["id"]), org_id=str(row["org_id"]), name=row["name"])
        await outbox.emit(conn, subjects.PROJECT_DELETED, deleted, deleted.id)
    return Empty()
