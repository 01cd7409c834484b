"""Projects: create, list, get, update (rename), delete — each change with its event."""

from __future__ import annotations

import uuid

import asyncpg

from proto import subjects
from proto.catalog import (
    ROLES,
    CreateProject,
    ListProjects,
    Project,
    ProjectDeleted,
    ProjectPage,
    ProjectRef,
    ProjectUpdated,
    Role,
    UpdateProjectRequest,
)
from proto.common import Caller, Empty
from shared import outbox
from shared.bus import RequestContext
from shared.errors import LoupeError, check_version, conflict, not_found
from shared.paging import keyset_page
from shared.rows import from_row
from shared.service import Answers, Runtime

ANSWERS = Answers()

COLUMNS = "id, org_id, name, description, task_type, content_type, public, metadata, version, created_at, updated_at"
# The projects a caller can see, each with the caller's role on it ($1 org, $2 user or NULL, $3 is admin).
VISIBLE = (
    f"SELECT {', '.join('p.' + c for c in COLUMNS.split(', '))}, "
    "CASE WHEN $3 THEN 'admin' ELSE coalesce(m.role, CASE WHEN p.public THEN 'viewer' END) END AS role "
    "FROM projects p LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = $2 "
    "WHERE p.org_id = $1 AND ($3 OR m.role IS NOT NULL OR p.public)"
)


def to_project(row: asyncpg.Record, role: Role | None = None) -> Project:
    return from_row(Project, row, role=role or row.get("role"))


def visibility_args(caller: Caller) -> tuple[uuid.UUID, uuid.UUID | None, bool]:
    return uuid.UUID(caller.org_id), uuid.UUID(caller.user_id) if caller.user_id else None, caller.is_admin


def parse_id(ident: str) -> uuid.UUID:
    try:
        return uuid.UUID(ident)
    except ValueError:
        raise not_found("project", ident) from None


def name_taken(name: str) -> LoupeError:
    return conflict(f"a project named {name!r} already exists in this organisation; choose another name", path="$.name")


@ANSWERS(subjects.CREATE_PROJECT)
async def create(rt: Runtime, request: CreateProject, ctx: RequestContext) -> Project:
    caller = ctx.require_caller()
    name = request.name.strip()
    async with rt.db.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                f"INSERT INTO projects (org_id, name, description, task_type, content_type, public, metadata) "
                f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}",
                uuid.UUID(caller.org_id),
                name,
                request.description,
                request.task_type,
                request.content_type,
                request.public,
                request.metadata,
            )
        except asyncpg.UniqueViolationError:
            raise name_taken(name) from None
        if caller.user_id:  # whoever creates a project administers it
            await conn.execute(
                "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, 'admin')",
                row["id"],
                uuid.UUID(caller.user_id),
            )
        project = to_project(row, "admin")
        await outbox.emit(conn, subjects.PROJECT_CREATED, project, project.id)
    return project


@ANSWERS(subjects.LIST_PROJECTS)
async def list_page(rt: Runtime, request: ListProjects, ctx: RequestContext) -> ProjectPage:
    caller = ctx.require_caller()
    query, args = VISIBLE, list[object](visibility_args(caller))
    if request.name is not None:
        query = f"{query} AND lower(p.name) = lower($4)"
        args.append(request.name.strip())
    rows, next_cursor = await keyset_page(
        rt.db, query, args, request.cursor, request.limit, key=("p.created_at", "p.id")
    )
    return ProjectPage(items=[to_project(row) for row in rows], next_cursor=next_cursor)


@ANSWERS(subjects.GET_PROJECT)
async def get(rt: Runtime, request: ProjectRef, ctx: RequestContext) -> Project:
    if ctx.caller is None:  # a service acting for no caller (ingest's bus feed asks a project's organisation)
        row = await rt.db.fetchrow(f"SELECT {COLUMNS} FROM projects WHERE id = $1", parse_id(request.id))
    else:
        row = await rt.db.fetchrow(f"{VISIBLE} AND p.id = $4", *visibility_args(ctx.caller), parse_id(request.id))
    if row is None:
        raise not_found("project", request.id)
    return to_project(row)


@ANSWERS(subjects.UPDATE_PROJECT)
async def update(rt: Runtime, request: UpdateProjectRequest, ctx: RequestContext) -> Project:
    caller = ctx.require_caller()
    changes = request.changes
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM projects WHERE id = $1 AND org_id = $2 FOR UPDATE",
            parse_id(request.id),
            uuid.UUID(caller.org_id),
        )
        if row is None:
            raise not_found("project", request.id)
        current = to_project(row)
        check_version(changes.version, current.version, f"project {current.id}")
        wanted = {
            "name": changes.name.strip() if changes.name is not None else None,
            "description": changes.description,
            "public": changes.public,
            "metadata": changes.metadata,
        }
        new = {field: value for field, value in wanted.items() if value is not None}
        changed = [field for field, value in new.items() if getattr(current, field) != value]
        if not changed:
            return current
        merged = {field: new.get(field, getattr(current, field)) for field in wanted}
        try:
            row = await conn.fetchrow(
                f"UPDATE projects SET name = $2, description = $3, public = $4, metadata = $5, version = version + 1, "
                f"updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
                row["id"],
                *merged.values(),
            )
        except asyncpg.UniqueViolationError:
            raise name_taken(merged["name"]) from None
        project = to_project(row, caller.role if caller.role in ROLES else None)  # the role the gateway checked
        await outbox.emit(conn, subjects.PROJECT_UPDATED, ProjectUpdated(project=project, changed=changed), project.id)
    return project


@ANSWERS(subjects.DELETE_PROJECT)
async def delete(rt: Runtime, request: ProjectRef, ctx: RequestContext) -> Empty:
    caller = ctx.require_caller()
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "DELETE FROM projects WHERE id = $1 AND org_id = $2 RETURNING id, org_id, name",
            parse_id(request.id),
            uuid.UUID(caller.org_id),
        )
        if row is None:
            raise not_found("project", request.id)
        deleted = ProjectDeleted(id=str(row["id"]), org_id=str(row["org_id"]), name=row["name"])
        await outbox.emit(conn, subjects.PROJECT_DELETED, deleted, deleted.id)
    return Empty()
