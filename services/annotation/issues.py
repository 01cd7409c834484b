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
from shared.bus import RequestContext
from shared.callers import actor
from shared.errors import LoupeError, invalid, not_found
from shared.ids import parse_uuid
from shared.paging import keyset_page
from shared.rows import from_row
from shared.service import Answers, Runtime

ANSWERS = Answers()

COLUMNS = "id, project_id, sample_id, labelset, object_id, description, status, created_by, created_at, updated_at"


def to_issue(row: asyncpg.Record, comments: list[Comment]) -> Issue:
    return from_row(Issue, row, comments=comments)


async def with_comments(conn: asyncpg.Connection | asyncpg.Pool, rows: list[asyncpg.Record]) -> list[Issue]:
    """The issues of these rows, each with its comments, oldest first."""
    comments: dict[uuid.UUID, list[Comment]] = defaultdict(list)
    for row in await conn.fetch(
        "SELECT id, issue_id, text, created_by, created_at FROM comments WHERE issue_id = ANY($1::uuid[]) ORDER BY seq",
        [row["id"] for row in rows],
    ):
        comments[row["issue_id"]].append(from_row(Comment, row))
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


@ANSWERS(subjects.CREATE_ISSUE)
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


@ANSWERS(subjects.LIST_ISSUES)
async def list_issues(rt: Runtime, request: ListIssuesRequest, ctx: RequestContext) -> IssuePage:
    query = request.query
    rows, next_cursor = await keyset_page(
        rt.db,
        f"SELECT {COLUMNS}, seq FROM issues WHERE project_id = $1 "
        "AND ($2::uuid IS NULL OR sample_id = $2) AND ($3::text IS NULL OR status = $3)",
        [
            parse_uuid(request.project_id, "project"),
            query.sample_id and parse_uuid(query.sample_id, "sample", "sample_id"),
            query.status,
        ],
        query.cursor,
        query.limit,
        key=("seq",),
        types=(int,),
        newest_first=True,
    )
    return IssuePage(items=await with_comments(rt.db, rows), next_cursor=next_cursor)


@ANSWERS(subjects.GET_ISSUE)
async def get(rt: Runtime, request: IssueRef, ctx: RequestContext) -> Issue:
    row = await rt.db.fetchrow(
        f"SELECT {COLUMNS} FROM issues WHERE id = $1 AND project_id = $2",
        parse_uuid(request.issue_id, "issue"),
        parse_uuid(request.project_id, "project"),
    )
    return (await with_comments(rt.db, [found(row, request.issue_id)]))[0]


@ANSWERS(subjects.UPDATE_ISSUE)
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


@ANSWERS(subjects.DELETE_ISSUE)
async def delete(rt: Runtime, request: IssueRef, ctx: RequestContext) -> Empty:
    row = await rt.db.fetchrow(
        "DELETE FROM issues WHERE id = $1 AND project_id = $2 RETURNING id",
        parse_uuid(request.issue_id, "issue"),
        parse_uuid(request.project_id, "project"),
    )
    found(row, request.issue_id)
    return Empty()


@ANSWERS(subjects.CREATE_COMMENT)
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
