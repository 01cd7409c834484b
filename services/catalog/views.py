"""Saved views of a project: a named filter (its samples follow the filter) or a named set of samples
(changed with add/remove items). Running a view is a search with its filter or items.
"""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from proto import subjects
from proto.common import Empty
from proto.search import (
    CreateViewRequest,
    ListViewsRequest,
    RunViewRequest,
    SampleFilter,
    SamplePage,
    UpdateViewRequest,
    View,
    ViewDeleted,
    ViewItemsRequest,
    ViewPage,
    ViewRef,
    ViewUpdated,
)
from services.catalog import search
from shared import outbox
from shared.bus import RequestContext
from shared.errors import LoupeError, check_version, conflict, not_found, require_all
from shared.ids import parse_uuid
from shared.paging import keyset_page
from shared.rows import from_row
from shared.service import Answers, Runtime

ANSWERS = Answers()

# item_count only for item views; counting is an index-only scan of the view's items.
COLUMNS = (
    "v.id, v.project_id, v.name, v.description, v.filter, v.sort, v.created_by, v.version, v.created_at, "
    "v.updated_at, CASE WHEN v.filter IS NULL THEN "
    "(SELECT count(*) FROM saved_view_items i WHERE i.view_id = v.id) END AS item_count"
)


def to_view(row: asyncpg.Record) -> View:
    stored = row["filter"]
    return from_row(
        View,
        row,
        kind="items" if stored is None else "filter",
        filter=None if stored is None else msgspec.convert(stored, SampleFilter),
    )


def name_taken(name: str) -> LoupeError:
    return conflict(f"a view named {name!r} already exists in this project; choose another name", path="$.name")


def check_filter(project_id: uuid.UUID, flt: SampleFilter, path: str) -> dict:
    """The filter as stored, after compiling it once: a filter that cannot run is refused when saved."""
    search.compile_filter(project_id, flt, path)
    return msgspec.to_builtins(flt)


async def fetch_view(
    conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID, view_id: str, lock: bool = False
) -> View:
    try:
        ident = uuid.UUID(view_id)
    except ValueError:
        raise not_found("view", view_id) from None
    # FOR UPDATE cannot sit beside the aggregate of COLUMNS, so a locking read takes the row first.
    if lock:
        await conn.fetchval("SELECT 1 FROM saved_views WHERE id = $1 AND project_id = $2 FOR UPDATE", ident, project_id)
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM saved_views v WHERE v.id = $1 AND v.project_id = $2", ident, project_id
    )
    if row is None:
        raise not_found("view", view_id)
    return to_view(row)


async def insert_items(
    conn: asyncpg.Connection, project_id: uuid.UUID, view_id: str, sample_ids: list[str], path: str
) -> int:
    """Add samples of the project to the view; an id that is not one of them is a 404 at its index."""
    ids = [parse_uuid(s, "sample", path=f"{path}[{i}]") for i, s in enumerate(sample_ids)]
    known = {
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM samples WHERE project_id = $1 AND id = ANY($2::uuid[])", project_id, ids
        )
    }
    require_all("sample", ids, known, path)
    status = await conn.execute(
        "INSERT INTO saved_view_items (view_id, sample_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
        uuid.UUID(view_id),
        ids,
    )
    return int(status.split()[-1])


@ANSWERS(subjects.CREATE_VIEW)
async def create(rt: Runtime, request: CreateViewRequest, ctx: RequestContext) -> View:
    caller = ctx.require_caller()
    project_id = search.project_uuid(request.project_id)
    body = request.view
    if body.filter is not None and body.sample_ids is not None:
        raise LoupeError(
            "invalid",
            "a view is either a filter or a set of samples; send filter or sample_ids, not both",
            path="$.sample_ids",
        )
    stored = None if body.filter is None else check_filter(project_id, body.filter, "$.filter")
    name = body.name.strip()
    async with rt.db.acquire() as conn, conn.transaction():
        try:
            ident = await conn.fetchval(
                "INSERT INTO saved_views (project_id, name, description, filter, sort, created_by) "
                "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                project_id,
                name,
                body.description,
                stored,
                body.sort,
                caller.user_id or caller.key_id,
            )
        except asyncpg.UniqueViolationError:
            raise name_taken(name) from None
        except asyncpg.ForeignKeyViolationError:
            raise not_found("project", request.project_id) from None
        if body.sample_ids:
            await insert_items(conn, project_id, str(ident), body.sample_ids, "$.sample_ids")
        view = await fetch_view(conn, project_id, str(ident))
        await outbox.emit(conn, subjects.VIEW_CREATED, view, view.project_id)
    return view


@ANSWERS(subjects.LIST_VIEWS)
async def list_page(rt: Runtime, request: ListViewsRequest, ctx: RequestContext) -> ViewPage:
    project_id = search.project_uuid(request.project_id)
    query = f"SELECT {COLUMNS} FROM saved_views v WHERE v.project_id = $1"
    rows, next_cursor = await keyset_page(
        rt.db, query, [project_id], request.page.cursor, request.page.limit, key=("v.created_at", "v.id")
    )
    return ViewPage(items=[to_view(row) for row in rows], next_cursor=next_cursor)


@ANSWERS(subjects.GET_VIEW)
async def get(rt: Runtime, request: ViewRef, ctx: RequestContext) -> View:
    return await fetch_view(rt.db, search.project_uuid(request.project_id), request.view_id)


@ANSWERS(subjects.UPDATE_VIEW)
async def update(rt: Runtime, request: UpdateViewRequest, ctx: RequestContext) -> View:
    project_id = search.project_uuid(request.project_id)
    changes = request.changes
    async with rt.db.acquire() as conn, conn.transaction():
        current = await fetch_view(conn, project_id, request.view_id, lock=True)
        check_version(changes.version, current.version, f"view {current.id}")
        if changes.filter is not None and current.kind == "items":
            raise LoupeError(
                "invalid",
                "this view is a set of samples; change it with the items endpoints, or save the filter as a new view",
                path="$.filter",
            )
        new = msgspec.structs.replace(
            current,
            name=current.name if changes.name is None else changes.name.strip(),
            description=current.description if changes.description is None else changes.description,
            filter=current.filter if changes.filter is None else changes.filter,
            sort=changes.sort or current.sort,
        )
        changed = [
            field
            for field in ("name", "description", "filter", "sort")
            if getattr(new, field) != getattr(current, field)
        ]
        if not changed:
            return current
        stored = None if new.filter is None else check_filter(project_id, new.filter, "$.filter")
        try:
            await conn.execute(
                "UPDATE saved_views SET name = $3, description = $4, filter = $5, sort = $6, version = version + 1, "
                "updated_at = now() WHERE id = $1 AND project_id = $2",
                uuid.UUID(current.id),
                project_id,
                new.name,
                new.description,
                stored,
                new.sort,
            )
        except asyncpg.UniqueViolationError:
            raise name_taken(new.name) from None
        view = await fetch_view(conn, project_id, current.id)
        await outbox.emit(conn, subjects.VIEW_UPDATED, ViewUpdated(view=view, changed=changed), view.project_id)
    return view


@ANSWERS(subjects.DELETE_VIEW)
async def delete(rt: Runtime, request: ViewRef, ctx: RequestContext) -> Empty:
    project_id = search.project_uuid(request.project_id)
    async with rt.db.acquire() as conn, conn.transaction():
        view = await fetch_view(conn, project_id, request.view_id, lock=True)
        await conn.execute("DELETE FROM saved_views WHERE id = $1", uuid.UUID(view.id))
        await outbox.emit(
            conn,
            subjects.VIEW_DELETED,
            ViewDeleted(id=view.id, project_id=view.project_id, name=view.name),
            view.project_id,
        )
    return Empty()


async def change_items(rt: Runtime, request: ViewItemsRequest, adding: bool) -> View:
    project_id = search.project_uuid(request.project_id)
    async with rt.db.acquire() as conn, conn.transaction():
        view = await fetch_view(conn, project_id, request.view_id, lock=True)
        if view.kind == "filter":
            raise conflict(
                f"view {view.name!r} is a filter view: its samples follow its filter, so items cannot "
                "be added or removed; save a set of samples as a view without a filter"
            )
        if adding:
            changed = await insert_items(conn, project_id, view.id, request.items.sample_ids, "$.sample_ids")
        else:
            # Ids not in the view (or not ids at all) are simply not there to remove.
            ids = [uuid.UUID(s) for s in request.items.sample_ids if _is_uuid(s)]
            status = await conn.execute(
                "DELETE FROM saved_view_items WHERE view_id = $1 AND sample_id = ANY($2)", uuid.UUID(view.id), ids
            )
            changed = int(status.split()[-1])
        if not changed:
            return view
        await conn.execute(
            "UPDATE saved_views SET version = version + 1, updated_at = now() WHERE id = $1", uuid.UUID(view.id)
        )
        view = await fetch_view(conn, project_id, view.id)
        await outbox.emit(conn, subjects.VIEW_UPDATED, ViewUpdated(view=view, changed=["items"]), view.project_id)
    return view


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@ANSWERS(subjects.ADD_VIEW_ITEMS)
async def add_items(rt: Runtime, request: ViewItemsRequest, ctx: RequestContext) -> View:
    return await change_items(rt, request, adding=True)


@ANSWERS(subjects.REMOVE_VIEW_ITEMS)
async def remove_items(rt: Runtime, request: ViewItemsRequest, ctx: RequestContext) -> View:
    return await change_items(rt, request, adding=False)


@ANSWERS(subjects.RUN_VIEW)
async def run(rt: Runtime, request: RunViewRequest, ctx: RequestContext) -> SamplePage:
    """The view's samples, paged like a search; a saved filter runs as it is now."""
    project_id = search.project_uuid(request.project_id)
    view = await fetch_view(rt.db, project_id, request.view_id)
    if view.filter is None:
        where = search.Where(project_id)
        search.in_view(where, uuid.UUID(view.id))
    else:
        where = search.compile_filter(project_id, view.filter, "$.filter")
    page = request.page
    return await search.find(rt, where, page.sort or view.sort, page.limit, page.cursor, page.offset, page.total)
