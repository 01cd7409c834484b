"""The ingest service: every way images come in, one pipeline for all of them."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from proto import subjects
from proto.ingest import MediaImportJob
from services.ingest import bucket, feeds, fetch, pipeline, runs, samples_made
from shared.consumers import Delivery
from shared.ids import parse_uuid
from shared.service import Runtime, Service
from shared.settings import Settings

service = Service("ingest", migrations=Path(__file__).parent / "migrations", buckets=("staging", "media", "thumbs"))

READERS = {
    "upload": lambda rt, run: pipeline.staged_reader(rt),
    "url": lambda rt, run: pipeline.url_reader(rt),
    "bucket": bucket.bucket_reader,
}


def policy_from(settings: Settings, internal: tuple[str, ...]) -> fetch.FetchPolicy:
    allow = tuple(entry.strip() for entry in settings.fetch_allow.split(",") if entry.strip())
    hosts = dict(entry.strip().split("=", 1) for entry in settings.fetch_hosts.split(",") if "=" in entry)
    return fetch.FetchPolicy(
        max_bytes=settings.ingest_max_file_bytes,
        timeout_s=settings.fetch_timeout_s,
        allow=allow,
        hosts=hosts,
        internal=internal,
    )


async def resolve_own_storage(settings: Settings) -> tuple[str, ...]:
    """Every address:port Loupe's own S3 answers on, from its endpoint and its public endpoint as they resolve
    now: URL and bucket imports refuse them all. The endpoint must resolve (ingest needs it anyway); a public
    endpoint that does not resolve here cannot be reached by name from here either, so it is only logged."""
    entries: list[str] = []
    for endpoint in dict.fromkeys(e for e in (settings.s3_endpoint, settings.s3_public_endpoint) if e):
        where = urlsplit(f"//{endpoint}")
        port = where.port or (443 if settings.s3_secure else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(where.hostname, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            if endpoint == settings.s3_endpoint:
                raise
            pipeline.log.warning(
                "the S3 public endpoint %s does not resolve here (%s): imports are kept away "
                "from the S3 endpoint's addresses only",
                endpoint,
                e.strerror,
            )
            continue
        for info in infos:
            entries += fetch.own_storage(ipaddress.ip_address(info[4][0]), port)
    return tuple(dict.fromkeys(entries))


@service.context
async def workers(rt: Runtime) -> AsyncIterator[None]:
    """Threads for decoding (Pillow releases the GIL) and the synchronous S3 SDK, and the guarded HTTP
    client URL imports fetch with."""
    executor = ThreadPoolExecutor(rt.settings.ingest_workers, thread_name_prefix="ingest")
    asyncio.get_running_loop().set_default_executor(executor)
    policy = policy_from(rt.settings, await resolve_own_storage(rt.settings))
    rt.state[fetch.POLICY] = policy
    async with fetch.make_session(policy) as session:
        rt.state[fetch.SESSION] = session
        yield
    executor.shutdown(wait=False, cancel_futures=True)


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
service.on_event(subjects.PROJECT_DELETED)(samples_made.on_project_deleted)

service.answer([*runs.ANSWERS, *feeds.ANSWERS])
