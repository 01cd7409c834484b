"""Images from the bus, and the images an organisation already stored: which they are, and their registration.

An outside producer publishes `BusMedia` to `loupe.job.ingest.media`; each dataset's messages land in
one long-lived run of kind `bus`, an item per message keyed by its message id, so a redelivery finds
its item already done. A message has no caller, so the run works for the project's organisation, which
the catalog names once, when the run is made.
"""

from __future__ import annotations

import functools
import uuid

import asyncpg

from proto import subjects
from proto.catalog import ProjectRef
from proto.ingest import (
    BusMedia,
    FileSpec,
    MediaRef,
    OwnedMedia,
    OwnedMediaRequest,
    RegisterMediaRequest,
    Run,
    StoredMedia,
)
from proto.samples import FindSamplesByHash
from services.ingest import declared, pipeline, samples_made
from services.ingest.rejection import FileRejected
from services.ingest.runs import add_items, check_dataset, create_run
from shared import fetch
from shared.bus import RequestContext
from shared.consumers import Delivery
from shared.errors import LoupeError
from shared.ids import parse_uuid
from shared.service import Answers, Runtime

ANSWERS = Answers()


async def feed_run(rt: Runtime, project_id: str, dataset_id: str) -> uuid.UUID:
    known = await rt.db.fetchrow(
        "SELECT id, org_id FROM runs WHERE dataset_id = $1 AND kind = 'bus' AND project_id = $2",
        uuid.UUID(dataset_id),
        uuid.UUID(project_id),
    )
    if known is not None and known["org_id"] is not None:
        return known["id"]
    await check_dataset(rt, project_id, dataset_id)
    # No caller: the catalog answers a service the project itself, whose organisation never changes.
    org_id = (await rt.nats.request(subjects.GET_PROJECT, ProjectRef(id=project_id))).org_id
    async with rt.db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"ingest.feed.{dataset_id}")
        return await conn.fetchval(  # a feed made before runs knew their organisation learns it here
            "UPDATE runs SET org_id = $2 WHERE dataset_id = $1 AND kind = 'bus' RETURNING id",
            uuid.UUID(dataset_id),
            uuid.UUID(org_id),
        ) or await create_run(conn, project_id, dataset_id, "bus", "bus", org_id, "bus")


async def ingest_from_bus(rt: Runtime, message: BusMedia, delivery: Delivery) -> None:
    try:
        uuid.UUID(message.project_id), uuid.UUID(message.dataset_id)
        run_id = await feed_run(rt, message.project_id, message.dataset_id)
    except (ValueError, LoupeError) as exc:
        # Nothing to record it on: the producer named no dataset of ours. Say so once and drop it.
        pipeline.log.error(
            "bus image %s names project %s dataset %s, which do not exist: %s",
            delivery.msg_id,
            message.project_id,
            message.dataset_id,
            exc,
        )
        return
    spec = FileSpec(
        name=message.name or (None if message.url else f"{delivery.msg_id}"),
        external_id=message.external_id,
        metadata=message.metadata,
        priority=message.priority,
    )
    source = message.url or f"bus:{delivery.msg_id}"
    async with rt.db.acquire() as conn, conn.transaction():
        total = await conn.fetchval("SELECT total FROM runs WHERE id = $1 FOR UPDATE", run_id)
        # Delivered before, its item exists already, and is processed below only if still pending.
        await add_items(conn, run_id, total, [(source, spec)], "PENDING")
        index = await conn.fetchval("SELECT idx FROM items WHERE run_id = $1 AND source = $2", run_id, source)

    async def read(row) -> bytes:
        if message.data is not None:
            return message.data
        if message.url is None:
            raise FileRejected("empty", "the message carries neither `data` nor `url`")
        return (await fetch.download(rt, message.url)).data

    run = await rt.db.fetchrow("SELECT * FROM runs WHERE id = $1", run_id)
    # Claimed already when a delivery before this one is at work on it, or died at it: wait that claim out.
    while not await pipeline.process_batch(rt, run, read, only=[index]):
        if not await pipeline.outwait_claims(rt, run_id, [index]):
            return  # recorded before: a delivery before this one processed it


@ANSWERS(subjects.OWNED_MEDIA)
async def owned_media(rt: Runtime, request: OwnedMediaRequest, ctx: RequestContext) -> OwnedMedia:
    """Which of the hashes the organisation stored (the catalog asks before a sample names one): one look-up
    in org_media's primary key, however many hashes. Nobody's image and another organisation's are alike."""
    rows = await rt.db.fetch(
        "SELECT sha256 FROM org_media WHERE org_id = $1 AND sha256 = ANY($2::text[])",
        parse_uuid(request.org_id, "organisation"),
        request.hashes,
    )
    return OwnedMedia(owned=[row["sha256"] for row in rows])


def registered_media(item: MediaRef, row: asyncpg.Record, sample_id: str) -> StoredMedia:
    """What the catalog learns of a registered image, stored before as media row `row`, new as sample `sample_id`."""
    return StoredMedia(
        sample_id=sample_id,
        sha256=item.sha256,
        format=row["format"],
        width=row["width"],
        height=row["height"],
        size=row["size_bytes"],
        name=item.name or f"{item.sha256[:16]}.{row['format']}",
        external_id=item.external_id,
        metadata=item.metadata,
        priority=item.priority,
    )


@ANSWERS(subjects.REGISTER_MEDIA)
async def register_media(rt: Runtime, request: RegisterMediaRequest, ctx: RequestContext) -> Run:
    """Samples for images the caller's organisation already stored: no bytes move, so it is one transaction.

    An image only another organisation stored answers exactly as one nobody stored, so that whether anyone
    has some file stays as private as the file."""
    caller = ctx.require_caller()
    items = request.media.items
    await check_dataset(rt, request.project_id, request.dataset_id)
    hashes = list({item.sha256 for item in items})
    existing = (
        await rt.nats.request(
            subjects.FIND_SAMPLES,
            FindSamplesByHash(project_id=request.project_id, dataset_id=request.dataset_id, content_hashes=hashes),
        )
    ).found
    async with rt.db.acquire() as conn, conn.transaction():
        media = await declared.owned_media(conn, uuid.UUID(caller.org_id), hashes)
        run_id = await create_run(
            conn, request.project_id, request.dataset_id, "register", "media", caller.org_id, caller.key_id
        )
        new = {item.sha256 for item in items if item.sha256 in media} - existing.keys()
        existing = existing | await samples_made.made_before(conn, request.project_id, request.dataset_id, new)
        outcomes = pipeline.Outcomes(request.dataset_id, existing)
        for i, item in enumerate(items):
            row = media.get(item.sha256)
            if row is None:
                outcomes.failed(
                    i,
                    "unknown_media",
                    f"this organisation never ingested an image with SHA-256 {item.sha256}; upload it first",
                    item.sha256,
                )
                continue
            outcomes.stored(i, functools.partial(registered_media, item, row), item.sha256)
        await add_items(
            conn, run_id, 0, [(f"{i}:{item.sha256}", item) for i, item in enumerate(items)], "PENDING", outcomes.updates
        )
        await pipeline.register_outcomes(conn, run_id, request.project_id, outcomes)
        return await pipeline.finish_at_once(conn, run_id)
