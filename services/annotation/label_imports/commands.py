"""The bus commands of label imports: create one (its presigned upload URL), start it, read it and its
per-image report."""

from __future__ import annotations

import uuid

import msgspec

from proto import subjects
from proto.annotation import GROUND_TRUTH
from proto.common import Caller
from proto.releases import CreateImportRequest, ImageSource, Import, ImportItemPage, ImportRef, ListImportItemsRequest
from proto.samples import DatasetRef
from services.annotation.label_imports.records import (
    COLUMNS,
    ITEM_COLUMNS,
    KeptImageSource,
    fetch,
    submit_job,
    to_import,
    to_item,
    upload_key,
)
from shared.bus import RequestContext, encoder
from shared.callers import actor
from shared.errors import LoupeError, conflict, invalid
from shared.ids import parse_uuid
from shared.service import Answers, Runtime

ANSWERS = Answers()


@ANSWERS(subjects.CREATE_LABEL_IMPORT)
async def create(rt: Runtime, request: CreateImportRequest, ctx: RequestContext) -> Import:
    caller = ctx.require_caller()
    project = parse_uuid(request.project_id, "project")
    body = request.body
    dataset = parse_uuid(body.dataset_id, "dataset", "$.dataset_id")
    await rt.nats.request(
        subjects.GET_DATASET, DatasetRef(project_id=request.project_id, dataset_id=body.dataset_id), caller=caller
    )
    if body.labelset != GROUND_TRUTH and not await rt.db.fetchval(
        "SELECT true FROM labelsets WHERE project_id = $1 AND name = $2", project, body.labelset
    ):
        raise invalid(f"the project has no labelset {body.labelset!r}; create it first", path="$.labelset")
    images = await sealed(rt, body.images, caller) if body.images else None
    row = await rt.db.fetchrow(
        f"INSERT INTO imports (project_id, org_id, dataset_id, labelset, format, images_source, create_classes, "
        f"created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}",
        project,
        uuid.UUID(caller.org_id),
        dataset,
        body.labelset,
        body.format,
        encoder.encode(images).decode() if images else None,
        body.create_classes,
        actor(caller),
    )
    return to_import(rt, row)


async def sealed(rt: Runtime, images: ImageSource, caller: Caller) -> KeptImageSource:
    """The source checked and its keys sealed by ingest, which alone holds LOUPE_SECRETS_KEY: ingest's error
    names the field below `$.images`."""
    try:
        keys = await rt.nats.request(subjects.SEAL_BUCKET_KEYS, images, caller=caller)
    except LoupeError as exc:
        if "path" not in exc.details:
            raise
        raise LoupeError(
            exc.code, exc.message, **{**exc.details, "path": "$.images" + exc.details["path"][1:]}
        ) from None
    return KeptImageSource(
        **{**msgspec.structs.asdict(images), "access_key": "", "secret_key": ""}, credentials=keys.credentials
    )


@ANSWERS(subjects.START_LABEL_IMPORT)
async def start(rt: Runtime, request: ImportRef, ctx: RequestContext) -> Import:
    row = await fetch(rt.db, request)
    if row["state"] != "WAITING":
        return to_import(rt, row)  # started already
    if not await rt.storage.exists("releases", upload_key(row)):
        raise conflict(
            "nothing was uploaded yet: upload the file to upload_url first, then start the import", path="upload_url"
        )
    async with rt.db.acquire() as conn, conn.transaction():
        started = await conn.fetchrow(
            f"UPDATE imports SET state = 'PENDING' WHERE id = $1 AND state = 'WAITING' RETURNING {COLUMNS}", row["id"]
        )
        if started is None:  # started by a concurrent call
            return to_import(rt, await fetch(conn, request))
        await submit_job(conn, row["id"], "images")
    return to_import(rt, started)


@ANSWERS(subjects.GET_LABEL_IMPORT)
async def get(rt: Runtime, request: ImportRef, ctx: RequestContext) -> Import:
    return to_import(rt, await fetch(rt.db, request))


@ANSWERS(subjects.LIST_LABEL_IMPORT_ITEMS)
async def list_items(rt: Runtime, request: ListImportItemsRequest, ctx: RequestContext) -> ImportItemPage:
    row = await fetch(rt.db, ImportRef(project_id=request.project_id, import_id=request.import_id))
    query = request.query
    rows = await rt.db.fetch(
        f"SELECT {ITEM_COLUMNS}, count(*) OVER () AS total FROM import_items "
        "WHERE import_id = $1 AND ($2::text IS NULL OR outcome = $2) ORDER BY idx LIMIT $3 OFFSET $4",
        row["id"],
        query.outcome,
        query.limit,
        query.offset,
    )
    total = (
        rows[0]["total"]
        if rows
        else await rt.db.fetchval(
            "SELECT count(*) FROM import_items WHERE import_id = $1 AND ($2::text IS NULL OR outcome = $2)",
            row["id"],
            query.outcome,
        )
    )
    return ImportItemPage(items=[to_item(r) for r in rows], total=total)
