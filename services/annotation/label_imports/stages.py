"""The label import's jobs: the images step hands the images to ingest, the labels step writes the labels
and settles the import. Each takes the import on from the stage its row records."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path

import asyncpg

from proto import subjects
from proto.releases import LabelImportJob, LabelImportStep
from services.annotation.label_imports import images, writing
from services.annotation.label_imports.archive import fetch_upload, no_sizes, parse
from services.annotation.label_imports.records import COLUMNS, COUNTS, load, to_import
from shared import outbox
from shared.consumers import Delivery
from shared.errors import LoupeError
from shared.service import Runtime

# The stages each step works on; at any other, its job has nothing to do (the import moved past it, or
# finished: stage `done`).
STAGES: dict[LabelImportStep, tuple[str, ...]] = {"images": ("upload", "images"), "labels": ("ingested", "labels")}


async def run_job(rt: Runtime, job: LabelImportJob, delivery: Delivery) -> None:
    row = await load(rt.db, uuid.UUID(job.import_id))
    if row is None or row["stage"] not in STAGES[job.step]:
        return  # deleted since, or a redelivery of a step that is over
    await rt.db.execute("UPDATE imports SET state = 'RUNNING' WHERE id = $1", row["id"])
    scratch = Path(tempfile.mkdtemp(prefix="loupe-label-import-"))
    try:
        upload = await fetch_upload(rt, row, scratch, with_images=job.step == "images")
        # A thread: parsing is CPU work, and the loop must keep the job's heartbeat going. The images step
        # parses too, so that a malformed file fails before any image is ingested.
        parsed = await asyncio.to_thread(parse, row["format"], row["labelset"], upload.annotations, no_sizes)
        if job.step == "images":
            await images.hand_over(rt, row, upload, parsed)
            return
        if row["stage"] == "ingested":
            await images.save_run_report(rt, row)
        await writing.write_labels(rt, row, upload, parsed)
    except LoupeError as exc:
        if exc.code == "unavailable":
            raise  # a service is down: the job is redelivered later and goes on from its stage
        await finish(rt, row, error=exc.message)
        return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    await finish(rt, row)


async def finish(rt: Runtime, row: asyncpg.Record, error: str | None = None) -> None:
    """Settle the state from the items (or the file's error) and announce it."""
    async with rt.db.acquire() as conn, conn.transaction():
        counts = await conn.fetchrow(COUNTS, row["id"])
        if error is None and not counts["images"]:
            error = "the file names no images"
        state = "FAILED" if error or not counts["imported"] else "PARTIAL" if counts["failed"] else "SUCCEEDED"
        done = await conn.fetchrow(
            f"UPDATE imports SET state = $2, stage = 'done', error = $3, images = greatest(images, $4), "
            f"imported = $5, failed = $6, objects = $7, finished_at = now() WHERE id = $1 RETURNING {COLUMNS}",
            row["id"],
            state,
            error,
            counts["images"],
            counts["imported"],
            counts["failed"],
            counts["objects"],
        )
        await outbox.emit(conn, subjects.LABEL_IMPORT_FINISHED, to_import(rt, done), str(row["project_id"]))
