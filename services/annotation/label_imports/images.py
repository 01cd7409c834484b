"""A label import's images go through ingest, the one way images come into Loupe: as an ingest run (a
bucket import of the import's staged prefix, or of the user's `images` source), or registered by their
content hash. What ingest made of each image is kept in import_images.

No job waits for an ingest run. The images job records stage `images` and ends; ingest's
`RUN_PROGRESSED` event for the finished run submits the labels job. The images job also looks at the
run once, after recording the stage, for a run that finished before (its event found no import waiting
for it). Whichever moves the import on (stage `ingested`) does it with one conditional UPDATE, in the
transaction that submits the labels job: the labels job is submitted exactly once.
"""

from __future__ import annotations

import asyncio
import mimetypes
import uuid
from collections.abc import Callable

import asyncpg
import msgspec

from proto import subjects
from proto.ingest import (
    ImportBucket,
    ImportBucketRequest,
    ListRunItems,
    ListRunItemsRequest,
    MediaRef,
    RegisterMedia,
    RegisterMediaRequest,
    RunProgressed,
    RunRef,
)
from services.annotation.formats.imported import ImportedImage
from services.annotation.label_imports.archive import Upload
from services.annotation.label_imports.records import COLUMNS, KeptImageSource, caller_of, submit_job
from shared import object_keys
from shared.consumers import Delivery
from shared.errors import invalid
from shared.service import Runtime

REGISTER_BATCH = 10_000  # RegisterMedia's limit
PUT_CONCURRENCY = 16


def ingest_request(rt: Runtime, row: asyncpg.Record) -> ImportBucketRequest:
    """Ingest's bucket import of the images: from the `images` source given, with its sealed keys, else
    from the import's own prefix of the releases bucket, where the zip's images are staged."""
    project_id, dataset_id = str(row["project_id"]), str(row["dataset_id"])
    if row["images_source"]:
        given = msgspec.structs.asdict(msgspec.json.decode(row["images_source"], type=KeptImageSource))
        keys = given.pop("credentials")
        return ImportBucketRequest(
            project_id=project_id, dataset_id=dataset_id, source=ImportBucket(**given), credentials=keys or None
        )
    return ImportBucketRequest(
        project_id=project_id,
        dataset_id=dataset_id,
        staged=True,
        source=ImportBucket(
            bucket=rt.storage.bucket("releases"), prefix=object_keys.label_import_images(row["project_id"], row["id"])
        ),
    )


def registers_by_hash(row: asyncpg.Record, upload: Upload) -> bool:
    return row["format"] == "native" and not row["images_source"] and not upload.images


async def hand_over(rt: Runtime, row: asyncpg.Record, upload: Upload, parsed: list[ImportedImage]) -> None:
    """The images step: give ingest the images (stage → images), or register them by hash, which ingest
    answers at once (stage → labels, labels job submitted); a redelivered step that finds them handed
    over looks at the run again."""
    if row["stage"] == "upload":
        if registers_by_hash(row, upload):
            await register_by_hash(rt, row, parsed)
            async with rt.db.acquire() as conn, conn.transaction():
                await conn.execute("UPDATE imports SET stage = 'labels' WHERE id = $1", row["id"])
                await submit_job(conn, row["id"], "labels")
            return
        row = await start_run(rt, row, upload)
    await claim_if_finished(rt, row)


async def start_run(rt: Runtime, row: asyncpg.Record, upload: Upload) -> asyncpg.Record:
    """Ingest's bucket run of the images, staging the zip's first; the row at stage images."""
    if not upload.images and not row["images_source"]:
        raise invalid(
            "the upload has no images: zip them with the annotations, or give `images`, the bucket "
            "prefix that holds them",
            path="images",
        )
    request = ingest_request(rt, row)
    if request.staged:
        gate = asyncio.Semaphore(PUT_CONCURRENCY)

        async def put(name: str) -> None:
            async with gate:
                await rt.storage.put_file(
                    "releases",
                    request.source.prefix + name,
                    upload.root / name,
                    mimetypes.guess_type(name)[0] or "application/octet-stream",
                )

        await asyncio.gather(*(put(name) for name in upload.images))
    run = await rt.nats.request(subjects.IMPORT_BUCKET, request, caller=caller_of(row))
    return await rt.db.fetchrow(
        f"UPDATE imports SET ingest_run_id = $2, stage = 'images' WHERE id = $1 RETURNING {COLUMNS}",
        row["id"],
        uuid.UUID(run.id),
    )


async def register_by_hash(rt: Runtime, row: asyncpg.Record, parsed: list[ImportedImage]) -> None:
    """Make samples of the media Loupe already has, named and described as the file says; hashes a
    previous delivery registered are not sent again."""
    first: dict[str, ImportedImage] = {}
    for image in parsed:
        if image.content_hash:
            first.setdefault(image.content_hash, image)
    done = {r["key"] for r in await rt.db.fetch("SELECT key FROM import_images WHERE import_id = $1", row["id"])}
    todo = [sha for sha in first if sha not in done]
    for begin in range(0, len(todo), REGISTER_BATCH):
        refs = [
            MediaRef(
                sha256=sha, name=first[sha].file_name, external_id=first[sha].external_id, metadata=first[sha].metadata
            )
            for sha in todo[begin : begin + REGISTER_BATCH]
        ]
        registered = await rt.nats.request(
            subjects.REGISTER_MEDIA,
            RegisterMediaRequest(
                project_id=str(row["project_id"]), dataset_id=str(row["dataset_id"]), media=RegisterMedia(items=refs)
            ),
            caller=caller_of(row),
        )
        await save_run_items(rt, row, registered.id, lambda source: source.partition(":")[2])  # `<index>:<sha>`


async def claim(conn: asyncpg.Connection, run_id: uuid.UUID) -> None:
    """Move the import waiting for ingest run `run_id` on to stage `ingested` and submit its labels job, in
    the caller's transaction; nothing when no import waits for the run (any more)."""
    import_id = await conn.fetchval(
        "UPDATE imports SET stage = 'ingested' WHERE ingest_run_id = $1 AND stage = 'images' RETURNING id", run_id
    )
    if import_id is not None:
        await submit_job(conn, import_id, "labels")


async def claim_if_finished(rt: Runtime, row: asyncpg.Record) -> None:
    """Claim the import now if its run already finished; else the run's finish event will."""
    ref = RunRef(project_id=str(row["project_id"]), id=str(row["ingest_run_id"]))
    if (await rt.nats.request(subjects.GET_RUN, ref, caller=caller_of(row))).finished_at is not None:
        async with rt.db.acquire() as conn, conn.transaction():
            await claim(conn, row["ingest_run_id"])


async def on_run_progressed(rt: Runtime, project_id: str | None, progressed: RunProgressed, delivery: Delivery) -> None:
    """Claim the label import whose images an ingest run brought in, once the run finished. A redelivered
    event claims nothing twice: the import has left stage `images`."""
    run = progressed.run
    if run.kind == "bucket" and run.finished_at is not None:  # label imports' runs are bucket imports
        async with rt.db.acquire() as conn, conn.transaction():
            await claim(conn, uuid.UUID(run.id))


async def save_run_report(rt: Runtime, row: asyncpg.Record) -> None:
    """Keep what ingest's finished run made of each image (stage ingested → labels)."""
    prefix = ingest_request(rt, row).source.prefix
    await save_run_items(rt, row, str(row["ingest_run_id"]), lambda source: source[len(prefix) :].lstrip("/"))
    unlisted = await rt.db.fetchval(
        "SELECT error FROM import_images WHERE import_id = $1 AND error_code = 'listing_failed' LIMIT 1", row["id"]
    )
    if unlisted is not None:  # else every image would only be reported missing
        raise invalid(f"ingest could not list the images: {unlisted}", path="$.images")
    await rt.db.execute("UPDATE imports SET stage = 'labels' WHERE id = $1", row["id"])


async def save_run_items(rt: Runtime, row: asyncpg.Record, run_id: str, key_of: Callable[[str], str]) -> None:
    """Each item of an ingest run as an import_images row, keyed by `key_of` its source."""
    after = -1
    while True:
        page = await rt.nats.request(
            subjects.LIST_RUN_ITEMS,
            ListRunItemsRequest(
                project_id=str(row["project_id"]), id=run_id, query=ListRunItems(after=after, limit=1000)
            ),
            caller=caller_of(row),
        )
        made = [item.state in ("CREATED", "DUPLICATE") for item in page.items]
        await rt.db.execute(
            "INSERT INTO import_images (import_id, key, sample_id, error_code, error) "
            "SELECT $1, i.key, i.sample_id, i.code, i.error "
            "FROM unnest($2::text[], $3::uuid[], $4::text[], $5::text[]) AS i (key, sample_id, code, error) "
            "ON CONFLICT DO NOTHING",
            row["id"],
            [key_of(item.source) for item in page.items],
            [uuid.UUID(item.sample_id) if ok else None for item, ok in zip(page.items, made, strict=True)],
            [None if ok else item.error_code or item.state.lower() for item, ok in zip(page.items, made, strict=True)],
            [
                None if ok else item.error or f"ingest left the image {item.state}"
                for item, ok in zip(page.items, made, strict=True)
            ],
        )
        if page.next_after is None:
            return
        after = page.next_after
