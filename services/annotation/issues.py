"""Issues: a note that something on a sample (optionally one of its objects) needs another look,
OPEN until someone closes it, with a thread of comments. Issues go with their sample."""

from __future__ import annotations

import uuid
from collections import defaultdict

import asyncpg
import msgspec

from proto import subjects
from proto.common import Empty
from proto.review import (
    Comment,
    CreateCommentRequest,
    CreateIssue,
    CreateIssueRequest,
    Issue,
    IssuePage,
    IssueRef,
    ListIssuesRequest,
    UpdateIssueRequest,
)
from services.annotation import labelsets, sample_facts
from services.annotation.refs import actor
from shared.bus import RequestContext
from shared.errors import LoupeError, invalid, not_found
from shared.ids import parse_uuid
from shared.paging import decode_cursor, encode_cursor
from shared.service import Runtime

COLUMNS = "id, project_id, sample_id, labelset, object_id, description, status, created_by, created_at, updated_at"


def to_issue(row: asyncpg.Record, comments: list[Comment]) -> Issue:
    return Issue(
        id=str(row["id"]),
        project_id=str(row["project_id"]),
        sample_id=str(row["sample_id"]),
        labelset=row["labelset"],
        object_id=row["object_id"] and str(row["object_id"]),
        description=row["description"],
        status=row["status"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        comments=comments,
    )


async def with_comments(conn: asyncpg.Connection | asyncpg.Pool, rows: list[asyncpg.Record]) -> list[Issue]:
    """The issues of these rows, each with its comments, oldest first."""
    comments: dict[uuid.UUID, list[Comment]] = defaultdict(list)
    for row in await conn.fetch(
        "SELECT id, issue_id, text, created_by, created_at FROM comments WHERE issue_id = ANY($1::uuid[]) ORDER BY seq",
        [row["id"] for row in rows],
    ):
        comments[row["issue_id"]].append(
            Comment(
                id=str(row["id"]),
                issue_id=str(row["issue_id"]),
                text=row["text"],
                created_by=row["created_by"],
                created_at=row["created_at"],
            )
        )
    return [to_issue(row, comments[row["id"]]) for row in rows]


def found(row: asyncpg.Record | None, issue_id: str) -> asyncpg.Record:
    if row is None:
        raise not_found("issue", issue_id)
    return row


async def where_it_points(
    conn: asyncpg.Connection, project: uuid.UUID, sample: uuid.UUID, body: CreateIssue
) -> tuple[str | None, uuid.UUID | None]:
    """The issue's labelset and object, checked against the sample; an object names its labelset."""
    labelset = None
    if body.labelset is not None:
        try:
            labelset = await labelsets.resolve(conn, project, body.labelset)
        except LoupeError as exc:
            if exc.code != "not_found":
                raise
            raise invalid(
                f"the project has no labelset named {body.labelset!r}; create it or leave `labelset` out",
                path="$.labelset",
            ) from None
    if body.object_id is None:
        return body.labelset, None
    object_id = parse_uuid(body.object_id, "object", "$.object_id")
    name = await conn.fetchval(
        "SELECT ls.name FROM objects o JOIN labelsets ls ON ls.id = o.labelset_id "
        "WHERE o.id = $1 AND o.sample_id = $2 AND ls.project_id = $3 AND ($4::uuid IS NULL OR ls.id = $4)",
        object_id,
        sample,
        project,
        labelset and labelset["id"],
    )
    if name is None:
        where = f" in labelset {body.labelset!r}" if body.labelset else ""
        raise invalid(
            f"object {object_id} is not an object of sample {sample}{where}; take `object_id` from "
            "the sample's label, or leave it out",
            path="$.object_id",
        )
    return name, object_id


async def create(rt: Runtime, request: CreateIssueRequest, ctx: RequestContext) -> Issue:
    project = parse_uuid(request.project_id, "project")
    sample = parse_uuid(request.sample_id, "sample")
    async with rt.db.acquire() as conn:
        await sample_facts.load(rt, conn, project, [sample], ctx.caller)
        labelset, object_id = await where_it_points(conn, project, sample, request.issue)
        row = await conn.fetchrow(
            f"INSERT INTO issues (project_id, sample_id, labelset, object_id, description, created_by) "
            f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}",
            project,
            sample,
            labelset,
            object_id,
            request.issue.description,
            actor(ctx.caller),
        )
    return to_issue(row, [])


async def list_issues(rt: Runtime, request: ListIssuesRequest, ctx: RequestContext) -> IssuePage:
    query = request.query
    before = (decode_cursor(query.cursor, int) or (None,))[0]
    rows = await rt.db.fetch(
        f"SELECT {COLUMNS}, seq FROM issues WHERE project_id = $1 AND ($2::bigint IS NULL OR seq < $2) "
        "AND ($3::uuid IS NULL OR sample_id = $3) AND ($4::text IS NULL OR status = $4) ORDER BY seq DESC LIMIT $5",
        parse_uuid(request.project_id, "project"),
        before,
        query.sample_id and parse_uuid(query.sample_id, "sample", "sample_id"),
        query.status,
        query.limit + 1,
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return IssuePage(
        items=await with_comments(rt.db, rows), next_cursor=encode_cursor(rows[-1]["seq"]) if more else None
    )


async def get(rt: Runtime, request: IssueRef, ctx: RequestContext) -> Issue:
    row = await rt.db.fetchrow(
        f"SELECT {COLUMNS} FROM issues WHERE id = $1 AND project_id = $2",
        parse_uuid(request.issue_id, "issue"),
        parse_uuid(request.project_id, "project"),
    )
    return (await with_comments(rt.db, [found(row, request.issue_id)]))[0]


async def update(rt: Runtime, request: UpdateIssueRequest, ctx: RequestContext) -> Issue:
    changes = request.changes
    row = await rt.db.fetchrow(
        f"UPDATE issues SET description = coalesce($3, description), status = coalesce($4, status), "
        f"updated_at = now() WHERE id = $1 AND project_id = $2 RETURNING {COLUMNS}",
        parse_uuid(request.issue_id, "issue"),
        parse_uuid(request.project_id, "project"),
        None if changes.description is msgspec.UNSET else changes.description,
        None if changes.status is msgspec.UNSET else changes.status,
    )
    return (await with_comments(rt.db, [found(row, request.issue_id)]))[0]


async def delete(rt: Runtime, request: IssueRef, ctx: RequestContext) -> Empty:
    row = await rt.db.fetchrow(
        "DELETE FROM issues WHERE id = $1 AND project_id = $2 RETURNING id",
        parse_uuid(request.issue_id, "issue"),
        parse_uuid(request.project_id, "project"),
    )
    found(row, request.issue_id)
    return Empty()


async def create_comment(rt: Runtime, request: CreateCommentRequest, ctx: RequestContext) -> Issue:
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE issues SET updated_at = now() WHERE id = $1 AND project_id = $2 RETURNING {COLUMNS}",
            parse_uuid(request.issue_id, "issue"),
            parse_uuid(request.project_id, "project"),
        )
        found(row, request.issue_id)
        await conn.execute(
            "INSERT INTO comments (issue_id, text, created_by) VALUES ($1, $2, $3)",
            row["id"],
            request.comment.text,
            actor(ctx.caller),
        )
        return (await with_comments(conn, [row]))[0]


COMMAND_HANDLERS = (
    (subjects.CREATE_ISSUE, create),
    (subjects.LIST_ISSUES, list_issues),
    (subjects.GET_ISSUE, get),
    (subjects.UPDATE_ISSUE, update),
    (subjects.DELETE_ISSUE, delete),
    (subjects.CREATE_COMMENT, create_comment),
)
