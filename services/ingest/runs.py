"""Import runs: every way in (upload, URL list, bucket, bus, registration) records one, with an item
per file, so progress and the per-file error list survive any restart.

A run's items move WAITING (an upload slot handed out) → PENDING (ready to process) → CREATED,
DUPLICATE or FAILED. The work itself is done by `pipeline` in bounded steps driven by jobs.
"""

from __future__ import annotations

import posixpath
import uuid
from typing import Any

import asyncpg

from proto import subjects
from proto.ingest import (
    BucketSource,
    CompleteUploadRequest,
    CreateUploadRequest,
    FileSpec,
    ImportBucket,
    ImportBucketRequest,
    ImportUrlsRequest,
    ListRunItemsRequest,
    ListRunsRequest,
    MediaImportJob,
    Run,
    RunItem,
    RunItemPage,
    RunList,
    RunProgressed,
    RunRef,
    SealedKeys,
    Upload,
    UploadFile,
    UploadSlot,
)
from proto.samples import DatasetRef
from services.ingest import buckets, declared
from shared import credentials, object_keys, outbox
from shared.bus import RequestContext
from shared.errors import LoupeError, conflict, invalid
from shared.ids import parse_uuid
from shared.presign import Presigner
from shared.rows import from_row, one_of_project
from shared.service import Answers, Runtime

ANSWERS = Answers()

RUN_COLUMNS = (
    "id, project_id, dataset_id, kind, state, source, total, created, duplicates, failed, "
    "created_at, updated_at, finished_at, "
    "(SELECT count(*) FROM items i WHERE i.run_id = runs.id AND i.state IN ('PENDING', 'WAITING')) AS pending"
)
FINISHED = ("SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED")


def to_run(row: asyncpg.Record) -> Run:
    return from_row(Run, row)


async def check_dataset(rt: Runtime, project_id: str, dataset_id: str) -> None:
    """The catalog answers not_found unless the dataset belongs to the project."""
    await rt.nats.request(subjects.GET_DATASET, DatasetRef(project_id=project_id, dataset_id=dataset_id))


async def fetch_run(
    conn: asyncpg.Connection | asyncpg.Pool, project_id: str, run_id: str, lock: bool = False
) -> asyncpg.Record:
    query = f"SELECT {RUN_COLUMNS} FROM runs WHERE id = $1 AND project_id = $2" + (" FOR UPDATE" if lock else "")
    return await one_of_project(conn, query, "import run", run_id, project_id)


async def create_run(
    conn: asyncpg.Connection,
    project_id: str,
    dataset_id: str,
    kind: str,
    source: str,
    org_id: str,
    created_by: str,
    state: str = "RUNNING",
    bucket: dict[str, Any] | None = None,
    listed: bool = False,
) -> uuid.UUID:
    """A new run for the organisation `org_id`, which owns the project: the images it reads become theirs. A
    bucket run lists its bucket in steps unless it is `listed` already (given its keys)."""
    return await conn.fetchval(
        "INSERT INTO runs (project_id, dataset_id, kind, state, source, org_id, created_by, bucket, listed) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        uuid.UUID(project_id),
        uuid.UUID(dataset_id),
        kind,
        state,
        source,
        uuid.UUID(org_id),
        created_by,
        bucket,
        bucket is None or listed,
    )


async def add_items(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    first_index: int,
    entries: list[tuple[str, FileSpec]],
    state: str,
    outcomes: list[tuple[Any, ...]] | None = None,
) -> int:
    """Record files of a run; a source already in the run is skipped. Returns how many were new.

    `outcomes` (one `(index, state, sha256, sample id, error code, error)` per entry) records files
    whose fate is already known, in place of `state`.
    """
    if not entries:
        return 0
    known = outcomes or [(None, state, None, None, None, None)] * len(entries)
    sources, specs = zip(*entries, strict=True)
    added = await conn.fetch(
        "INSERT INTO items (run_id, idx, source, name, external_id, metadata, priority, state, sha256, sample_id, "
        "error_code, error) "
        "SELECT $1, r.idx, r.source, r.name, r.external_id, r.metadata, r.priority, r.state, r.sha256, r.sample_id, "
        "r.code, r.error FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::float8[], "
        "$8::text[], $9::text[], $10::uuid[], $11::text[], $12::text[]) "
        "AS r(idx, source, name, external_id, metadata, priority, state, sha256, sample_id, code, error) "
        "ON CONFLICT (run_id, source) DO NOTHING RETURNING idx",
        run_id,
        list(range(first_index, first_index + len(entries))),
        list(sources),
        [s.name for s in specs],
        [s.external_id for s in specs],
        [s.metadata for s in specs],
        [s.priority for s in specs],
        *(list(column) for column in list(zip(*known, strict=True))[1:]),
    )
    await conn.execute("UPDATE runs SET total = total + $2, updated_at = now() WHERE id = $1", run_id, len(added))
    return len(added)


async def start_job(conn: asyncpg.Connection, run_id: uuid.UUID) -> None:
    """Queue the run's next step; each has its own number, so a job id is never reused."""
    step = await conn.fetchval("UPDATE runs SET steps = steps + 1 WHERE id = $1 RETURNING steps", run_id)
    await outbox.submit_job(
        conn, subjects.MEDIA_IMPORT_JOB, MediaImportJob(run_id=str(run_id), step=step), f"{run_id}:{step}"
    )


async def report(conn: asyncpg.Connection, run_id: uuid.UUID) -> Run:
    run = to_run(await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = $1", run_id))
    await outbox.emit(conn, subjects.RUN_PROGRESSED, RunProgressed(run=run), run.project_id)
    return run


# -- the ways in ---------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_UPLOAD)
async def create_upload(rt: Runtime, request: CreateUploadRequest, ctx: RequestContext) -> Upload:
    caller = ctx.require_caller()
    files = request.upload.files or [UploadFile() for _ in range(request.upload.count)]
    if not files:
        raise invalid("ask for at least one slot: give `files` or a `count`", path="$.count")
    if request.upload.files and request.upload.count not in (0, len(files)):
        raise invalid("`count` disagrees with the number of `files`; give one of them", path="$.count")
    for i, file in enumerate(files):
        if (file.sha256 is None) != (file.content_type is None):
            raise invalid(
                "give `sha256` and `content_type` together (the file's SHA-256 in hex and its image type), or neither",
                path=f"$.files[{i}].{'content_type' if file.content_type is None else 'sha256'}",
            )
    await check_dataset(rt, request.project_id, request.dataset_id)
    owned = await declared.owned(rt, uuid.UUID(caller.org_id), (file.sha256 for file in files if file.sha256))
    async with rt.db.acquire() as conn, conn.transaction():
        run_id = await create_run(
            conn,
            request.project_id,
            request.dataset_id,
            "upload",
            "upload",
            caller.org_id,
            caller.key_id,
            state="WAITING",
        )
        await add_items(
            conn,
            run_id,
            0,
            [(object_keys.upload_slot(run_id, i), spec) for i, spec in enumerate(files)],
            "WAITING",
            [(None, "WAITING", file.sha256, None, None, None) for file in files],  # an item's SHA-256: declared
        )
    expiry = rt.settings.upload_url_expiry_s
    # Signed at one moment: a slot costs one HMAC, not the SDK's 40+ µs (up to 10,000 slots a call).
    staging, media = (
        Presigner(rt.storage.public, rt.storage.bucket(bucket), rt.settings, "PUT", expiry)
        for bucket in ("staging", "media")
    )

    def slot(index: int, file: UploadFile) -> UploadSlot:
        if file.sha256 is None:
            return UploadSlot(index=index, name=file.name, url=staging(object_keys.upload_slot(run_id, index)))
        if file.sha256 in owned:
            return UploadSlot(index=index, name=file.name, url=None, stored=True)
        headers = declared.put_headers(file, run_id)
        url = media(object_keys.original(file.sha256), headers)
        return UploadSlot(index=index, name=file.name, url=url, headers=headers)

    return Upload(
        run_id=str(run_id),
        slots=[slot(i, file) for i, file in enumerate(files)],
        expires_in_s=expiry,
        complete_url=f"/v1/projects/{request.project_id}/imports/{run_id}/complete",
    )


@ANSWERS(subjects.COMPLETE_UPLOAD)
async def complete_upload(rt: Runtime, request: CompleteUploadRequest, ctx: RequestContext) -> Run:
    async with rt.db.acquire() as conn, conn.transaction():
        row = await fetch_run(conn, request.project_id, request.run_id, lock=True)
        if row["kind"] != "upload":
            raise conflict(f"run {request.run_id} is a {row['kind']} import, not an upload")
        if row["state"] in FINISHED:
            raise conflict(f"run {request.run_id} is already {row['state']}")
        indexes = request.complete.indexes
        marked = await conn.fetchval(
            "WITH marked AS (UPDATE items SET state = 'PENDING' WHERE run_id = $1 AND state = 'WAITING' "
            "AND (cardinality($2::int[]) = 0 OR idx = ANY($2)) RETURNING 1) SELECT count(*) FROM marked",
            row["id"],
            indexes,
        )
        if indexes and marked != len(set(indexes)):
            known = await conn.fetchval(
                "SELECT count(*) FROM items WHERE run_id = $1 AND idx = ANY($2)", row["id"], indexes
            )
            if known != len(set(indexes)):
                raise invalid(
                    f"run {request.run_id} has {row['total']} slots, indexes 0 to {row['total'] - 1}", path="$.indexes"
                )
        await conn.execute("UPDATE runs SET state = 'RUNNING', updated_at = now() WHERE id = $1", row["id"])
        await start_job(conn, row["id"])
        return await report(conn, row["id"])


@ANSWERS(subjects.IMPORT_URLS)
async def import_urls(rt: Runtime, request: ImportUrlsRequest, ctx: RequestContext) -> Run:
    caller = ctx.require_caller()
    for i, item in enumerate(request.urls.items):
        if not item.url.lower().startswith(("http://", "https://")):
            raise invalid(f"only http and https URLs can be imported, not {item.url[:40]!r}", path=f"$.items[{i}].url")
    await check_dataset(rt, request.project_id, request.dataset_id)
    async with rt.db.acquire() as conn, conn.transaction():
        run_id = await create_run(
            conn, request.project_id, request.dataset_id, "url", "urls", caller.org_id, caller.key_id
        )
        await add_items(conn, run_id, 0, [(item.url, item) for item in request.urls.items], "PENDING")
        await start_job(conn, run_id)
        return await report(conn, run_id)


@ANSWERS(subjects.IMPORT_BUCKET)
async def import_bucket(rt: Runtime, request: ImportBucketRequest, ctx: RequestContext) -> Run:
    caller = ctx.require_caller()
    source = request.source
    if source.keys and source.prefix:
        raise invalid("give `prefix` (import everything under it) or `keys` (only those), not both", path="$.keys")
    bucket: dict[str, Any] = {"prefix": source.prefix, "metadata": source.metadata}
    if source.bucket_id is not None:
        check_no_inline_source(source)
        stored = await buckets.stored_row(rt.db, request.project_id, source.bucket_id)
        # Only the id: the keys are looked up at each step, so deleting the stored bucket stops the import.
        bucket["bucket_id"] = source.bucket_id
        where = f"s3://{stored['endpoint']}/{stored['bucket']}/{source.prefix}"
    else:
        bucket |= {
            "bucket": source.bucket,
            "endpoint": source.endpoint,
            "secure": source.secure,
            "region": source.region,
        }
        if request.staged:
            check_staged(rt, request)
            bucket["staged"] = True
        else:
            check_source(source, keys_sealed=request.credentials is not None)
            if request.credentials is not None:  # sealed earlier: a LOUPE_SECRETS_KEY changed since fails now
                credentials.unseal(rt.settings, request.credentials)
            bucket["credentials"] = request.credentials or credentials.seal(
                rt.settings, source.access_key, source.secret_key
            )
        where = f"s3://{source.endpoint + '/' if source.endpoint else ''}{source.bucket}/{source.prefix}"
    await check_dataset(rt, request.project_id, request.dataset_id)
    async with rt.db.acquire() as conn, conn.transaction():
        run_id = await create_run(
            conn,
            request.project_id,
            request.dataset_id,
            "bucket",
            where,
            caller.org_id,
            caller.key_id,
            bucket=bucket,
            listed=bool(source.keys),
        )
        await add_items(conn, run_id, 0, [key_entry(key, source.metadata) for key in source.keys], "PENDING")
        await start_job(conn, run_id)
        return await report(conn, run_id)


def key_entry(key: str, metadata: dict[str, Any]) -> tuple[str, FileSpec]:
    """A bucket import's item for the object at `key`: named after it, with the key in its metadata."""
    return key, FileSpec(name=posixpath.basename(key), metadata={**metadata, "s3_key": key})


def check_no_inline_source(source: ImportBucket) -> None:
    """A stored bucket brings its own place and keys; naming others beside it would be ambiguous."""
    for field in ("bucket", "endpoint", "region", "access_key", "secret_key"):
        if getattr(source, field):
            raise invalid(
                f"`bucket_id` names a stored bucket, which has its own {field.replace('_', ' ')}; leave `{field}` out",
                path=f"$.{field}",
            )


@ANSWERS(subjects.SEAL_BUCKET_KEYS)
async def seal_bucket_keys(rt: Runtime, source: BucketSource, ctx: RequestContext) -> SealedKeys:
    """A bucket source checked as its import will be, and its keys sealed, for a service that keeps the source
    until it starts the import (annotation's label imports): only ingest holds LOUPE_SECRETS_KEY."""
    check_source(source)
    return SealedKeys(credentials=credentials.seal(rt.settings, source.access_key, source.secret_key))


def check_source(source: BucketSource | ImportBucket, keys_sealed: bool = False) -> None:
    """A bucket, an endpoint (never Loupe's own storage) and, unless they were sealed before, the keys that read it."""
    if not source.bucket:
        raise invalid("name the `bucket` to import from, or a stored bucket's `bucket_id`", path="$.bucket")
    if not source.endpoint:
        raise invalid(
            'give the `endpoint` of the S3 that holds the bucket, such as "s3.amazonaws.com" or '
            '"minio.example.com:9000": Loupe never imports from its own storage',
            path="$.endpoint",
        )
    if not keys_sealed and not (source.access_key and source.secret_key):
        raise invalid("an external bucket needs `access_key` and `secret_key`", path="$.access_key")


def check_staged(rt: Runtime, request: ImportBucketRequest) -> None:
    """Files a Loupe service staged on Loupe's own S3 are read only from the project's own area: its label
    imports' prefix of the releases bucket, so not even a service's mistake reaches another's files."""
    area, prefix = object_keys.label_imports(request.project_id), request.source.prefix
    if (
        request.source.bucket != rt.storage.bucket("releases")
        or not prefix.startswith(area)
        or ".." in prefix.split("/")
    ):
        raise invalid(
            f"staged files are read only under {area} of the releases bucket, not "
            f"s3://{request.source.bucket}/{prefix}",
            path="$.prefix",
        )


# -- reading runs --------------------------------------------------------------------------------------


@ANSWERS(subjects.GET_RUN)
async def get_run(rt: Runtime, request: RunRef, ctx: RequestContext) -> Run:
    return to_run(await fetch_run(rt.db, request.project_id, request.id))


@ANSWERS(subjects.LIST_RUNS)
async def list_runs(rt: Runtime, request: ListRunsRequest, ctx: RequestContext) -> RunList:
    dataset = request.query.dataset_id
    rows = await rt.db.fetch(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE project_id = $1 AND ($2::uuid IS NULL OR dataset_id = $2) "
        "ORDER BY created_at DESC LIMIT $3",
        parse_uuid(request.project_id, "project"),
        dataset and parse_uuid(dataset, "dataset"),
        request.query.limit,
    )
    return RunList(items=[to_run(row) for row in rows])


@ANSWERS(subjects.LIST_RUN_ITEMS)
async def list_items(rt: Runtime, request: ListRunItemsRequest, ctx: RequestContext) -> RunItemPage:
    run = await fetch_run(rt.db, request.project_id, request.id)
    query = request.query
    rows = await rt.db.fetch(
        "SELECT idx, source, name, state, sample_id, sha256, error_code, error FROM items "
        "WHERE run_id = $1 AND idx > $2 AND ($3::text IS NULL OR state = $3) ORDER BY idx LIMIT $4",
        run["id"],
        query.after,
        query.state,
        query.limit + 1,
    )
    items = [
        RunItem(
            index=r["idx"],
            source=r["source"],
            name=r["name"],
            state=r["state"],
            sample_id=r["sample_id"] and str(r["sample_id"]),
            sha256=r["sha256"],
            error_code=r["error_code"],
            error=r["error"],
        )
        for r in rows[: query.limit]
    ]
    return RunItemPage(items=items, next_after=items[-1].index if len(rows) > query.limit else None)


@ANSWERS(subjects.CANCEL_RUN)
async def cancel_run(rt: Runtime, request: RunRef, ctx: RequestContext) -> Run:
    async with rt.db.acquire() as conn, conn.transaction():
        row = await fetch_run(conn, request.project_id, request.id, lock=True)
        if row["state"] in FINISHED:
            return to_run(row)
        if row["kind"] == "bus":
            raise LoupeError("conflict", "a dataset's bus feed cannot be cancelled; stop publishing instead")
        await conn.execute(
            "UPDATE items SET state = 'CANCELLED' WHERE run_id = $1 AND state IN ('WAITING', 'PENDING')", row["id"]
        )
        await conn.execute(
            "UPDATE runs SET state = 'CANCELLED', listed = true, finished_at = now(), updated_at = now() WHERE id = $1",
            row["id"],
        )
        return await report(conn, row["id"])
