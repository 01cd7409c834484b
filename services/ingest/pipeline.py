"""The one path every image takes: read → validate and thumbnail → dedupe → store → register.

Items are processed a batch at a time, in three moves, and no transaction stays open while bytes move:

1. **Claim**: one statement marks up to `ingest_batch` PENDING items with a token of this claim and an expiry
   (`FOR UPDATE SKIP LOCKED`, so replicas share a run without overlap) and commits.
2. **Work**, holding no transaction: read, decode and thumbnail, ask the catalog which images the dataset
   already has (FIND_SAMPLES), store originals and thumbnails. S3 writes are harmless when repeated, because
   originals are keyed by their SHA-256. The claim is renewed meanwhile.
3. **Record**, in one transaction, for the items this claim still holds and only those: their states, the
   media rows and which of them the run's organisation now has (`org_media`, what registering by SHA-256 may
   reach), the run's counts and the MediaStored event for the catalog (through the outbox). Recording again,
   or after the claim was lost, changes nothing.

A claim lasts `job_ack_wait_s`, as a job does without a heartbeat. A process killed mid-batch stops renewing
it; once it has expired the items are claimed again, by the job JetStream delivers again (which waits the
claims out) or by any later step, so nothing is lost and nothing is recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import posixpath
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import msgspec

from proto import subjects
from proto.ingest import MediaStored, Run, StoredMedia
from proto.samples import FindSamplesByHash, sample_id_for
from services.ingest import declared, samples_made
from services.ingest.media import ImageLimits, ProcessedImage, process_image
from services.ingest.rejection import FileRejected
from services.ingest.runs import FINISHED, report, start_job
from shared import fetch, object_keys, outbox
from shared.image_formats import MIME
from shared.service import Runtime
from shared.storage import ObjectMissing

log = logging.getLogger(__name__)

# A job step works on at most this many items, so no delivery holds a run for long.
STEP_ITEMS = 1024
BATCHES_IN_FLIGHT = 3
EVENT_ITEMS = 2000  # ~500 KB: fewer, larger transactions in the catalog, well under the 16 MiB bus limit

# An item's bytes; raises FileRejected, or FetchError where it fetches them.
Reader = Callable[[asyncpg.Record], Awaitable[bytes]]
# An item as the pipeline reads it: its row, or the same fields of a file that came with its request.
Item = Mapping[str, Any]


def limits_of(rt: Runtime) -> ImageLimits:
    settings = rt.settings
    return ImageLimits(
        max_bytes=settings.ingest_max_file_bytes,
        max_pixels=settings.ingest_max_pixels,
        thumb_side=settings.ingest_thumb_side,
    )


class Prepared(msgspec.Struct, frozen=True):
    data: bytes | None  # None: the original is at its final key already (a declared upload's own PUT, or before)
    image: ProcessedImage


async def prepare(
    rt: Runtime, row: asyncpg.Record, read: Reader, owned: Mapping[str, ProcessedImage]
) -> Prepared | FileRejected:
    """Item `row`'s image read and validated, or why it is refused. An item with a SHA-256 already is an upload
    slot's declared file (services/ingest/declared.py): none of its bytes are read where the organisation
    stored that image before (`owned`), and its bytes are at their final key otherwise."""
    sha256 = row["sha256"]
    if sha256 in owned:
        return Prepared(None, owned[sha256])
    try:
        prepared = await check(rt, await read(row))
    except FileRejected as exc:
        return exc
    except fetch.FetchError as exc:  # a URL or bucket import's file: recorded like any other rejection
        return FileRejected(exc.code, exc.message)
    if sha256 is None or isinstance(prepared, FileRejected):
        return prepared
    return declared.hash_mismatch(row, prepared.image) or Prepared(None, prepared.image)


async def check(rt: Runtime, data: bytes) -> Prepared | FileRejected:
    """The image validated, hashed and thumbnailed in a worker thread, or why it is refused."""
    try:
        image = await asyncio.get_running_loop().run_in_executor(None, process_image, data, limits_of(rt))
    except FileRejected as exc:
        return exc
    return Prepared(data, image)


def stored_media(row: Item, image: ProcessedImage, sample_id: str) -> StoredMedia:
    """What the catalog learns of item `row`'s image, new as sample `sample_id`."""
    return StoredMedia(
        sample_id=sample_id,
        sha256=image.sha256,
        format=image.format,
        width=image.width,
        height=image.height,
        size=image.size,
        name=default_name(row, image),
        external_id=row["external_id"],
        metadata=row["metadata"],
        priority=row["priority"],
    )


def default_name(row: Item, image: ProcessedImage) -> str:
    if row["name"]:
        return row["name"]
    source = row["source"]
    if source.startswith(("http://", "https://")):
        source = unquote(urlsplit(source).path)
    base = posixpath.basename(source)
    return base if "." in base else f"{image.sha256[:16]}.{image.format}"


async def store(rt: Runtime, prepared: Prepared) -> None:
    """The original under its SHA-256 (unless it is there already), and its thumbnail where it has one of its own."""
    image = prepared.image
    puts = []
    if prepared.data is not None:
        puts.append(
            rt.storage.put_bytes("media", object_keys.original(image.sha256), prepared.data, MIME[image.format])
        )
    if image.thumbnail is not None:
        puts.append(rt.storage.put_bytes("thumbs", object_keys.thumbnail(image.sha256), image.thumbnail, "image/jpeg"))
    await asyncio.gather(*puts)


async def process_batch(rt: Runtime, run: asyncpg.Record, read: Reader, only: list[int] | None = None) -> int:
    """Process up to `ingest_batch` pending items of `run` (or just the `only` indexes) that nobody else
    holds; returns how many it claimed."""
    run_id, dataset_id, project_id = run["id"], str(run["dataset_id"]), str(run["project_id"])
    token, rows = await claim(rt, run_id, only)
    if not rows:
        return 0
    async with renewing(rt, run_id, token, [row["idx"] for row in rows]):
        owned = await declared.owned(rt, run["org_id"], (row["sha256"] for row in rows if row["sha256"]))
        outcomes = await asyncio.gather(*(prepare(rt, row, read, owned) for row in rows))
        existing, stored = await store_new(rt, project_id, dataset_id, outcomes)
    worked = list(zip(rows, outcomes, strict=True))
    recorded = {row["idx"] for row in await record(rt, run, token, worked, existing, stored)}
    if run["kind"] == "upload":
        kept = [(row, outcome) for row, outcome in worked if row["idx"] in recorded]
        await rt.storage.delete_many("staging", [row["source"] for row, _ in kept if not row["sha256"]])
        await declared.discard(rt, kept)
    return len(rows)


async def store_new(
    rt: Runtime, project_id: str, dataset_id: str, outcomes: Iterable[Prepared | FileRejected]
) -> tuple[dict[str, str], set[str]]:
    """Store the valid images that are not stored yet; returns which of them the dataset has already (sha256 →
    sample id) and which were stored before."""
    images = {o.image.sha256: o for o in outcomes if isinstance(o, Prepared)}
    if not images:
        return {}, set()
    existing = (
        await rt.nats.request(
            subjects.FIND_SAMPLES,
            FindSamplesByHash(project_id=project_id, dataset_id=dataset_id, content_hashes=list(images)),
        )
    ).found
    stored = {r["sha256"] for r in await rt.db.fetch("SELECT sha256 FROM media WHERE sha256 = ANY($1)", list(images))}
    await asyncio.gather(*(store(rt, prepared) for sha, prepared in images.items() if sha not in stored))
    return existing, stored


# $1 run, $2 batch size, $3 only these indexes (or null), $4 claim token, $5 seconds the claim lasts.
# The batch is chosen by an uncorrelated ARRAY(...), which Postgres runs once, before the update. Joined as a
# subquery instead, it could be rerun for each of the run's items (a nested loop, planned when the run's items
# came after the table's last ANALYZE), each rerun locking the next free items: one claim took the whole run.
CLAIM = (
    "UPDATE items SET claimed_by = $4, claimed_until = now() + make_interval(secs => $5) "
    "WHERE run_id = $1 AND idx = ANY(ARRAY("
    "  SELECT idx FROM items WHERE run_id = $1 AND state = 'PENDING' "
    "  AND (claimed_until IS NULL OR claimed_until < now()) AND ($3::int[] IS NULL OR idx = ANY($3)) "
    "  ORDER BY idx LIMIT $2 FOR UPDATE SKIP LOCKED)) "
    "RETURNING idx, source, name, external_id, metadata, priority, sha256"
)


async def claim(rt: Runtime, run_id: uuid.UUID, only: list[int] | None) -> tuple[uuid.UUID, list[asyncpg.Record]]:
    """Claim a batch of the run's pending items that no live claim holds, committed at once; the items in order."""
    token = uuid.uuid4()
    rows = await rt.db.fetch(
        CLAIM,
        run_id,
        rt.settings.ingest_batch,
        only,
        token,
        rt.settings.job_ack_wait_s,
    )
    return token, sorted(rows, key=lambda row: row["idx"])


@contextlib.asynccontextmanager
async def renewing(rt: Runtime, run_id: uuid.UUID, token: uuid.UUID, indexes: list[int]) -> AsyncIterator[None]:
    """Keep the claim alive while its batch is worked on (URL fetches alone may take `fetch_timeout_s`), as
    a job's heartbeat keeps it; a process that dies stops renewing, and its claim expires."""
    expiry_s = rt.settings.job_ack_wait_s

    async def renew() -> None:
        while True:
            await asyncio.sleep(expiry_s / 3)
            with contextlib.suppress(Exception):  # a missed renewal only risks the claim; the next may succeed
                await rt.db.execute(
                    "UPDATE items SET claimed_until = now() + make_interval(secs => $4) "
                    "WHERE run_id = $1 AND idx = ANY($2) AND claimed_by = $3 AND state = 'PENDING'",
                    run_id,
                    indexes,
                    token,
                    expiry_s,
                )

    renewal = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewal.cancel()


async def record(
    rt: Runtime,
    run: asyncpg.Record,
    token: uuid.UUID,
    worked: list[tuple[asyncpg.Record, Prepared | FileRejected]],
    existing: dict[str, str],
    stored: set[str],
) -> list[asyncpg.Record]:
    """The outcome of the items the claim `token` still holds, in one transaction; returns those items.

    An item claimed again after this claim expired, or cancelled meanwhile, is left to whoever holds it now."""
    run_id, project_id = run["id"], str(run["project_id"])
    async with rt.db.acquire() as conn, conn.transaction():
        held = {
            r["idx"]
            for r in await conn.fetch(
                "SELECT idx FROM items WHERE run_id = $1 AND idx = ANY($2) AND claimed_by = $3 AND state = 'PENDING' "
                "ORDER BY idx FOR UPDATE",
                run_id,
                [row["idx"] for row, _ in worked],
                token,
            )
        }
        kept = [(row, outcome) for row, outcome in worked if row["idx"] in held]
        if not kept:
            return []
        outcomes = await settle(conn, run, kept, existing, stored)
        await save_outcomes(conn, run_id, outcomes)
        await register_outcomes(conn, run_id, project_id, outcomes)
        await report(conn, run_id)
    return [row for row, _ in kept]


async def settle(
    conn: asyncpg.Connection,
    run: Item,
    worked: list[tuple[Item, Prepared | FileRejected]],
    existing: dict[str, str],
    stored: set[str],
) -> Outcomes:
    """In the caller's transaction: what became of each worked item of `run`, the media rows of the images new to
    storage, and which images the run's organisation now has."""
    project_id, dataset_id = str(run["project_id"]), str(run["dataset_id"])
    images = {outcome.image.sha256: outcome for _, outcome in worked if isinstance(outcome, Prepared)}
    existing = existing | await samples_made.made_before(conn, project_id, dataset_id, images.keys() - existing.keys())
    outcomes = Outcomes(dataset_id, existing)
    for row, outcome in worked:
        if isinstance(outcome, FileRejected):
            outcomes.failed(row["idx"], outcome.code, outcome.message)
            continue
        image = outcome.image
        outcomes.stored(row["idx"], functools.partial(stored_media, row, image), image.sha256)
    new = sorted(
        (sha, p.image.format, p.image.width, p.image.height, p.image.size)
        for sha, p in images.items()
        if sha not in stored
    )
    if new:  # one statement, in one order (no deadlock with a batch that shares images)
        await conn.execute(
            "INSERT INTO media (sha256, format, width, height, size_bytes) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bigint[]) ON CONFLICT DO NOTHING",
            *(list(column) for column in zip(*new, strict=True)),
        )
    if run["org_id"] is not None:  # null only on runs made before runs knew their organisation
        await conn.execute(
            "INSERT INTO org_media (org_id, sha256) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            run["org_id"],
            sorted(images),
        )  # one order: no deadlock
    return outcomes


async def outwait_claims(rt: Runtime, run_id: uuid.UUID, only: list[int] | None = None) -> bool:
    """Sleep until the earliest live claim on the run's pending items (of the `only` indexes) expires, and
    say True; say False at once when there is none, because whatever was claimed has been recorded."""
    wait_s = await rt.db.fetchval(
        "SELECT extract(epoch FROM min(claimed_until) - now()) FROM items "
        "WHERE run_id = $1 AND state = 'PENDING' AND claimed_until >= now() AND ($2::int[] IS NULL OR idx = ANY($2))",
        run_id,
        only,
    )
    if wait_s is None:
        return False
    await asyncio.sleep(float(wait_s))
    return True


class Outcomes:
    """What became of each item of a batch: failed, a duplicate of a sample (already in the dataset, or
    earlier in this batch), or a new sample to register."""

    def __init__(self, dataset_id: str, existing: dict[str, str]) -> None:
        self.dataset_id = dataset_id
        self.sample_of = dict(existing)  # sha256 → sample id
        self.updates: list[tuple[Any, ...]] = []  # (index, state, sha256, sample id, error code, error)
        self.new_media: list[StoredMedia] = []

    def failed(self, index: int, code: str, message: str, sha256: str | None = None) -> None:
        self.updates.append((index, "FAILED", sha256, None, code, message))

    def stored(self, index: int, media: Callable[[str], StoredMedia], sha256: str) -> None:
        if sha256 in self.sample_of:
            self.updates.append((index, "DUPLICATE", sha256, self.sample_of[sha256], None, None))
            return
        sample_id = self.sample_of[sha256] = sample_id_for(self.dataset_id, sha256)
        self.updates.append((index, "CREATED", sha256, sample_id, None, None))
        self.new_media.append(media(sample_id))


async def save_outcomes(conn: asyncpg.Connection, run_id: uuid.UUID, outcomes: Outcomes) -> None:
    """Write what became of each item onto the item."""
    await conn.execute(
        "UPDATE items i SET state = u.state, sha256 = u.sha256, sample_id = u.sample_id, error_code = u.code, "
        "error = u.error FROM unnest($2::int[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[]) "
        "AS u(idx, state, sha256, sample_id, code, error) WHERE i.run_id = $1 AND i.idx = u.idx",
        run_id,
        *map(list, zip(*outcomes.updates, strict=True)),
    )


async def register_outcomes(conn: asyncpg.Connection, run_id: uuid.UUID, project_id: str, outcomes: Outcomes) -> None:
    """The run's counts, and the events that make the new images samples — in the caller's transaction."""
    updates, new_media, dataset_id = outcomes.updates, outcomes.new_media, outcomes.dataset_id
    states = [u[1] for u in updates]
    await conn.execute(
        "UPDATE runs SET created = created + $2, duplicates = duplicates + $3, failed = failed + $4, "
        "updated_at = now() WHERE id = $1",
        run_id,
        states.count("CREATED"),
        states.count("DUPLICATE"),
        states.count("FAILED"),
    )
    for start in range(0, len(new_media), EVENT_ITEMS):
        await outbox.emit(
            conn,
            subjects.MEDIA_STORED,
            MediaStored(
                project_id=project_id,
                dataset_id=dataset_id,
                items=new_media[start : start + EVENT_ITEMS],
                run_id=str(run_id),
            ),
            project_id,
        )


async def finish_at_once(conn: asyncpg.Connection, run_id: uuid.UUID) -> Run:
    """Settle the final state of a run whose every item was recorded in the caller's transaction, and report it."""
    await conn.execute(
        "UPDATE runs SET state = CASE WHEN failed = 0 THEN 'SUCCEEDED' WHEN failed = total "
        "THEN 'FAILED' ELSE 'PARTIAL' END, finished_at = now(), updated_at = now() WHERE id = $1",
        run_id,
    )
    return await report(conn, run_id)


async def finish_or_continue(rt: Runtime, run_id: uuid.UUID) -> None:
    """After a step: queue the next one while work remains, else settle the run's final state."""
    async with rt.db.acquire() as conn, conn.transaction():
        run = await conn.fetchrow("SELECT * FROM runs WHERE id = $1 FOR UPDATE", run_id)
        if run["state"] in FINISHED:
            return
        claimable = await conn.fetchval(
            "SELECT EXISTS (SELECT FROM items WHERE run_id = $1 AND state = 'PENDING' "
            "AND (claimed_until IS NULL OR claimed_until < now()))",
            run_id,
        )
        if claimable or not run["listed"]:
            await start_job(conn, run_id)
            return
        if run["kind"] == "bus":
            return
        if await items_in(conn, run_id, "PENDING"):
            return  # all claimed: their claimer continues the run, or if its process died, its job delivered again
        if await items_in(conn, run_id, "WAITING"):  # an upload whose other slots the client has yet to complete
            await conn.execute("UPDATE runs SET state = 'WAITING', updated_at = now() WHERE id = $1", run_id)
        else:
            good = run["created"] + run["duplicates"]
            state = "SUCCEEDED" if not run["failed"] else "PARTIAL" if good else "FAILED"
            await conn.execute(
                "UPDATE runs SET state = $2, finished_at = now(), updated_at = now() WHERE id = $1", run_id, state
            )
        await report(conn, run_id)


async def items_in(conn: asyncpg.Connection, run_id: uuid.UUID, state: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT FROM items WHERE run_id = $1 AND state = $2)", run_id, state)


# -- where the bytes come from -------------------------------------------------------------------------


def staged_reader(rt: Runtime) -> Reader:
    """An upload slot's bytes: in staging, or at their final key where the file was declared by its SHA-256."""

    async def read(row: asyncpg.Record) -> bytes:
        if row["sha256"]:
            return await declared.read(rt, row)
        try:
            return await rt.storage.get_bytes("staging", row["source"])
        except ObjectMissing:
            raise declared.not_uploaded() from None

    return read


def url_reader(rt: Runtime) -> Reader:
    async def read(row: asyncpg.Record) -> bytes:
        return (await fetch.download(rt, row["source"])).data

    return read


async def step(
    rt: Runtime,
    run_id: uuid.UUID,
    readers: Mapping[str, Callable[[Runtime, asyncpg.Record], Reader]],
    list_more: Callable[[Runtime, asyncpg.Record], Awaitable[None]],
    redelivered: bool = False,
) -> None:
    """One job step of a run: list more of a bucket if needed, process up to STEP_ITEMS, then continue.

    A step delivered again may be one whose process died holding claims, which no other step takes over
    before they expire: it waits them out and processes their items."""
    run = await rt.db.fetchrow("SELECT * FROM runs WHERE id = $1", run_id)
    if run is None or run["state"] in FINISHED:
        return
    if not run["listed"]:
        await list_more(rt, run)
    read = readers[run["kind"]](rt, run)
    done = 0

    async def worker() -> None:
        # Several batches in flight: one decodes while another waits on S3, the catalog or Postgres.
        nonlocal done
        while done < STEP_ITEMS:
            if await rt.db.fetchval("SELECT state FROM runs WHERE id = $1", run_id) in FINISHED:
                return  # cancelled meanwhile
            processed = await process_batch(rt, run, read)
            if not processed:
                return
            done += processed

    await asyncio.gather(*(worker() for _ in range(BATCHES_IN_FLIGHT)))
    while redelivered and done < STEP_ITEMS and await outwait_claims(rt, run_id):
        await asyncio.gather(*(worker() for _ in range(BATCHES_IN_FLIGHT)))
    await finish_or_continue(rt, run_id)
