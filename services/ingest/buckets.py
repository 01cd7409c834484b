"""A project's stored buckets: an S3 bucket outside Loupe and the keys that read it, sealed with
LOUPE_SECRETS_KEY (shared/credentials.py) and never shown again, so that imports name the bucket by id.

A run that reads a stored bucket records only its id; the keys are looked up at each step, so deleting the
bucket stops every import still reading it.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from proto import subjects
from proto.catalog import ProjectDeleted
from proto.common import Empty
from proto.ingest import (
    CreateStoredBucketRequest,
    ListStoredBucketsRequest,
    StoredBucket,
    StoredBucketList,
    StoredBucketRef,
)
from shared import credentials
from shared.bus import RequestContext
from shared.consumers import Delivery
from shared.errors import conflict
from shared.ids import parse_uuid
from shared.rows import from_row, one_of_project
from shared.service import Answers, Runtime

ANSWERS = Answers()

COLUMNS = "id, project_id, name, bucket, endpoint, secure, region, created_by, created_at"


async def stored_row(conn: asyncpg.Connection | asyncpg.Pool, project_id: str, bucket_id: str) -> asyncpg.Record:
    """The stored bucket with its sealed keys, or not_found: one of another project is no different from none."""
    return await one_of_project(
        conn,
        f"SELECT {COLUMNS}, credentials FROM stored_buckets WHERE id = $1 AND project_id = $2",
        "stored bucket",
        bucket_id,
        project_id,
    )


def run_source(row: asyncpg.Record) -> dict[str, Any]:
    """What a run reading the stored bucket `row` needs of it to list and read, keys sealed as stored."""
    return {
        "bucket": row["bucket"],
        "endpoint": row["endpoint"],
        "secure": row["secure"],
        "region": row["region"],
        "credentials": row["credentials"],
    }


@ANSWERS(subjects.CREATE_STORED_BUCKET)
async def create_stored_bucket(rt: Runtime, request: CreateStoredBucketRequest, ctx: RequestContext) -> StoredBucket:
    caller = ctx.require_caller()
    new = request.bucket
    sealed = credentials.seal(rt.settings, new.access_key, new.secret_key)
    try:
        row = await rt.db.fetchrow(
            "INSERT INTO stored_buckets (project_id, name, bucket, endpoint, secure, region, credentials, created_by) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}",
            parse_uuid(request.project_id, "project"),
            new.name,
            new.bucket,
            new.endpoint,
            new.secure,
            new.region,
            sealed,
            caller.key_id,
        )
    except asyncpg.UniqueViolationError:
        raise conflict(
            f"the project already has a stored bucket named {new.name!r}; choose another name", path="$.name"
        ) from None
    return from_row(StoredBucket, row)


@ANSWERS(subjects.LIST_STORED_BUCKETS)
async def list_stored_buckets(rt: Runtime, request: ListStoredBucketsRequest, ctx: RequestContext) -> StoredBucketList:
    rows = await rt.db.fetch(
        f"SELECT {COLUMNS} FROM stored_buckets WHERE project_id = $1 ORDER BY created_at, id",
        parse_uuid(request.project_id, "project"),
    )
    return StoredBucketList(items=[from_row(StoredBucket, row) for row in rows])


@ANSWERS(subjects.GET_STORED_BUCKET)
async def get_stored_bucket(rt: Runtime, request: StoredBucketRef, ctx: RequestContext) -> StoredBucket:
    return from_row(StoredBucket, await stored_row(rt.db, request.project_id, request.id))


@ANSWERS(subjects.DELETE_STORED_BUCKET)
async def delete_stored_bucket(rt: Runtime, request: StoredBucketRef, ctx: RequestContext) -> Empty:
    row = await stored_row(rt.db, request.project_id, request.id)
    await rt.db.execute("DELETE FROM stored_buckets WHERE id = $1", row["id"])
    return Empty()


async def on_project_deleted(rt: Runtime, project_id: str | None, event: ProjectDeleted, delivery: Delivery) -> None:
    await rt.db.execute("DELETE FROM stored_buckets WHERE project_id = $1", uuid.UUID(event.id))
