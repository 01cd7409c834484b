"""The ingest service: every way images come in, one pipeline for all of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from proto import subjects
from proto.catalog import ProjectDeleted
from proto.ingest import MediaImportJob
from services.ingest import bucket, buckets, direct, feeds, pipeline, runs, samples_made
from shared import fetch
from shared.consumers import Delivery
from shared.ids import parse_uuid
from shared.service import Runtime, Service

service = Service("ingest", migrations=Path(__file__).parent / "migrations", buckets=("staging", "media", "thumbs"))

READERS = {
    "upload": lambda rt, run: pipeline.staged_reader(rt),
    "url": lambda rt, run: pipeline.url_reader(rt),
    "bucket": bucket.bucket_reader,
}


@service.context
async def workers(rt: Runtime) -> AsyncIterator[None]:
    """Threads for decoding (Pillow releases the GIL) and the synchronous S3 SDK."""
    executor = ThreadPoolExecutor(rt.settings.ingest_workers, thread_name_prefix="ingest")
    asyncio.get_running_loop().set_default_executor(executor)
    yield
    executor.shutdown(wait=False, cancel_futures=True)


# The guarded HTTP client URL imports fetch with, and the policy bucket imports connect within.
service.context(fetch.fetching)


@service.consumer("import", subjects.JOBS_STREAM, subjects.MEDIA_IMPORT_JOB.subject, MediaImportJob)
async def import_step(rt: Runtime, job: MediaImportJob, delivery: Delivery) -> None:
    await pipeline.step(
        rt, parse_uuid(job.run_id, "import run"), READERS, bucket.list_more, redelivered=delivery.attempt > 1
    )


service.consumer("bus", subjects.JOBS_STREAM, subjects.BUS_MEDIA.subject, subjects.BUS_MEDIA.payload)(
    feeds.ingest_from_bus
)

service.on_event(subjects.SAMPLES_DELETED)(samples_made.on_samples_gone)
service.on_event(subjects.SAMPLES_MOVED)(samples_made.on_samples_gone)
service.on_event(subjects.DATASET_DELETED)(samples_made.on_dataset_deleted)


@service.on_event(subjects.PROJECT_DELETED)
async def project_deleted(rt: Runtime, project_id: str | None, event: ProjectDeleted, delivery: Delivery) -> None:
    await samples_made.on_project_deleted(rt, project_id, event, delivery)
    await buckets.on_project_deleted(rt, project_id, event, delivery)


service.answer([*runs.ANSWERS, *direct.ANSWERS, *feeds.ANSWERS, *buckets.ANSWERS])
