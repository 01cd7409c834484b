"""Releases and their exports, both built as jobs.

A release is a native release file (proto/releases.py) in the releases bucket, written once. The
snapshot is read in one REPEATABLE READ transaction, so it is one moment of the project even while
people keep labelling; Postgres builds each sample's line (its labels with their objects) itself,
and the job only streams the lines to a file on disk and the file to S3, so memory does not grow
with the release. The moment is when the job runs, normally right after the request.

An export reads the release file back a line at a time, filters it and hands the samples to the
format's writer, which streams its files to a scratch directory; the result (one file, or a zip of
several) goes to the releases bucket and is handed out as a presigned URL.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import uuid
import weakref
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import asyncpg
import msgspec

from proto import subjects
from proto.catalog import ProjectRef
from proto.common import Caller, Empty, Redirect
from proto.releases import (
    NATIVE_FORMAT_VERSION,
    BuildExport,
    BuildRelease,
    CreateExportRequest,
    CreateReleaseRequest,
    Export,
    ExportFilter,
    ExportList,
    ExportRef,
    ListExportsRequest,
    ListReleasesRequest,
    Release,
    ReleaseDataset,
    ReleaseHeader,
    ReleaseInfo,
    ReleasePage,
    ReleaseProject,
    ReleaseRef,
    ReleaseSample,
)
from proto.samples import DatasetPage, ListDatasets, ListDatasetsRequest
from services.annotation import labelsets
from services.annotation.formats import coco, hasty, images, native_export, segments, semantic_png, voc, yolo
from services.annotation.formats.stats import ExportStats
from services.annotation.formats.target import ExportTarget
from services.annotation.qa import TRANSIENT
from services.annotation.refs import label_schema
from shared import object_keys, outbox
from shared.bus import RequestContext, encoder
from shared.callers import actor, service_caller
from shared.consumers import Delivery
from shared.errors import LoupeError, conflict, invalid
from shared.ids import parse_uuid
from shared.paging import keyset_page
from shared.presign import PresignedGets
from shared.rows import from_row, one_of_project
from shared.service import Answers, Runtime

ANSWERS = Answers()
log = logging.getLogger(__name__)

DOWNLOAD_EXPIRES_S = 3600


# Writes the files of an export format for the samples into the target's folder.
Writer = Callable[[ExportTarget, Iterable[ReleaseSample]], ExportStats]


WRITERS: dict[str, Writer] = {
    "native": native_export.export,
    "coco": coco.export,
    "yolo": yolo.export,
    "voc": voc.export,
    "semantic_png": semantic_png.export,
    "segments": segments.export,
    "hasty": hasty.export,
    "images": images.export,
}
ORIGINAL_CHUNK = 1024 * 1024

RELEASE_COLUMNS = (
    "id, project_id, name, description, labelsets, state, samples, objects, error, created_by, created_at, finished_at"
)
EXPORT_COLUMNS = (
    "id, project_id, release_id, format, labelset, filter, task, archive, state, samples, objects, size_bytes, "
    "error, created_at, finished_at, key"
)


def to_release(row: asyncpg.Record) -> Release:
    return from_row(Release, row)


def to_export(rt: Runtime, row: asyncpg.Record) -> Export:
    done = row["state"] == "SUCCEEDED"
    return from_row(
        Export,
        row,
        filter=msgspec.json.decode(row["filter"], type=ExportFilter),
        download_url=rt.storage.presigned_get("releases", row["key"], DOWNLOAD_EXPIRES_S) if done else None,
        expires_in=DOWNLOAD_EXPIRES_S if done else None,
    )


class Stopwatch:
    """Seconds per step of a job, logged once it is done: where a release or export spends its time."""

    def __init__(self, queued_s: float) -> None:
        self.last = time.perf_counter()
        self.steps = {"queued": round(queued_s, 4)}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.steps[step] = round(now - self.last, 4)
        self.last = now

    def log(self, what: str) -> None:
        log.info("%s done in %.3f s: %s", what, sum(self.steps.values()), self.steps)


class LatestRelease:
    """The release file this process built last, kept on disk: its exports normally run right after, in this
    process, and then skip downloading it back from S3. Releases never change, so it cannot be stale; only one
    is kept, so the disk holds one release more at most, until the process exits."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.key: str | None = None

    def keep(self, key: str, built: Path) -> None:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="loupe-latest-release-"))
            weakref.finalize(self, shutil.rmtree, self.folder, ignore_errors=True)
        self.key = None
        built.replace(self.folder / "release.jsonl")
        self.key = key

    def link(self, key: str, to: Path) -> bool:
        """Whether release `key` is the one kept, now linked at `to`: a link, so that keeping the next release
        cannot pull the file away from an export still reading it."""
        if self.folder is None or key != self.key:
            return False
        try:
            to.hardlink_to(self.folder / "release.jsonl")
        except OSError:  # another file system: S3 has it
            return False
        return True


LATEST_RELEASE = LatestRelease()


# -- releases ---------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_RELEASE)
async def create(rt: Runtime, request: CreateReleaseRequest, ctx: RequestContext) -> Release:
    caller = ctx.require_caller()
    project = parse_uuid(request.project_id, "project")
    body = request.release
    async with rt.db.acquire() as conn, conn.transaction():
        await labelsets.ensure_ground_truth(conn, project)
        known = {row["name"] for row in await conn.fetch("SELECT name FROM labelsets WHERE project_id = $1", project)}
        for index, name in enumerate(body.labelsets):
            if name not in known:
                raise invalid(
                    f"the project has no labelset {name!r}; it has {', '.join(sorted(known))}",
                    path=f"$.labelsets[{index}]",
                )
        row = await conn.fetchrow(
            f"INSERT INTO releases (project_id, org_id, name, description, labelsets, created_by) "
            f"VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING {RELEASE_COLUMNS}",
            project,
            uuid.UUID(caller.org_id),
            body.name,
            body.description,
            body.labelsets or sorted(known),
            actor(caller),
        )
        if row is None:
            raise conflict(
                f"the project already has a release named {body.name!r}; releases are immutable, choose another name",
                path="$.name",
            )
        await outbox.submit_job(conn, subjects.RELEASE_JOB, BuildRelease(release_id=str(row["id"])), str(row["id"]))
    return to_release(row)


async def fetch_release(conn: asyncpg.Connection | asyncpg.Pool, project_id: str, release_id: str) -> asyncpg.Record:
    query = f"SELECT {RELEASE_COLUMNS}, org_id, key FROM releases WHERE id = $1 AND project_id = $2"
    return await one_of_project(conn, query, "release", release_id, project_id)


@ANSWERS(subjects.GET_RELEASE)
async def get(rt: Runtime, request: ReleaseRef, ctx: RequestContext) -> Release:
    return to_release(await fetch_release(rt.db, request.project_id, request.release_id))


@ANSWERS(subjects.LIST_RELEASES)
async def list_page(rt: Runtime, request: ListReleasesRequest, ctx: RequestContext) -> ReleasePage:
    query = f"SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = $1"
    project = parse_uuid(request.project_id, "project")
    rows, next_cursor = await keyset_page(
        rt.db, query, [project], request.page.cursor, request.page.limit, newest_first=True
    )
    return ReleasePage(items=[to_release(row) for row in rows], next_cursor=next_cursor)


@ANSWERS(subjects.DELETE_RELEASE)
async def delete(rt: Runtime, request: ReleaseRef, ctx: RequestContext) -> Empty:
    async with rt.db.acquire() as conn, conn.transaction():
        row = await fetch_release(conn, request.project_id, request.release_id)
        keys = [
            r["key"]
            for r in await conn.fetch("SELECT key FROM exports WHERE release_id = $1 AND key IS NOT NULL", row["id"])
        ]
        await conn.execute("DELETE FROM releases WHERE id = $1", row["id"])
    await rt.storage.delete_many("releases", [*keys, *([row["key"]] if row["key"] else [])])
    return Empty()


SNAPSHOT = """
SELECT json_build_object(
    'id', s.id, 'dataset_id', s.dataset_id, 'name', s.name, 'width', s.width, 'height', s.height,
    'content_hash', s.content_hash, 'media_url', s.media_url, 'external_id', s.external_id, 'metadata', s.metadata,
    'status', s.status,
    'labels', coalesce((
        SELECT json_object_agg(ls.name, json_build_object(
            'status', l.status, 'score', l.score, 'tag_class_ids', l.tag_class_ids, 'attributes', l.attributes,
            'updated_by', l.updated_by, 'updated_at', l.updated_at,
            'objects', coalesce((SELECT json_agg(o.body ORDER BY o.seq) FROM objects o
                                 WHERE o.labelset_id = l.labelset_id AND o.sample_id = l.sample_id), '[]')))
        FROM labels l JOIN labelsets ls ON ls.id = l.labelset_id
        WHERE l.sample_id = s.id AND l.labelset_id = ANY($2::uuid[]) AND l.version > 0), '{}'))::text AS line
FROM samples s WHERE s.project_id = $1
ORDER BY s.name, s.id
"""


async def project_facts(rt: Runtime, project_id: str, caller: Caller) -> tuple[ReleaseProject, list[ReleaseDataset]]:
    project = await rt.nats.request(subjects.GET_PROJECT, ProjectRef(id=project_id), caller=caller)
    datasets: list[ReleaseDataset] = []
    cursor = None
    while True:
        page: DatasetPage = await rt.nats.request(
            subjects.LIST_DATASETS,
            ListDatasetsRequest(project_id=project_id, page=ListDatasets(limit=500, cursor=cursor)),
            caller=caller,
        )
        datasets += [ReleaseDataset(id=d.id, name=d.name) for d in page.items]
        if not page.next_cursor:
            return ReleaseProject(id=project.id, name=project.name, task_type=project.task_type), datasets
        cursor = page.next_cursor


def failed_for_good(rt: Runtime, exc: LoupeError, delivery: Delivery) -> bool:
    """Whether a job's LoupeError ends it, or is a passing outage of another service (a replica killed mid-request,
    the catalog restarting) that the next delivery, after the consumer's back-off, may not meet. The last delivery
    ends it either way, so that the job always reaches a final state."""
    return exc.code not in TRANSIENT or delivery.attempt >= rt.settings.job_max_deliveries


async def build(rt: Runtime, job: BuildRelease, delivery: Delivery) -> None:
    row = await rt.db.fetchrow(
        f"SELECT {RELEASE_COLUMNS}, org_id, extract(epoch FROM clock_timestamp() - created_at) AS queued_s "
        "FROM releases WHERE id = $1",
        uuid.UUID(job.release_id),
    )
    if row is None or row["state"] in ("SUCCEEDED", "FAILED"):
        return  # deleted since, or a redelivery of a finished job
    watch = Stopwatch(float(row["queued_s"]))
    await rt.db.execute("UPDATE releases SET state = 'RUNNING' WHERE id = $1", row["id"])
    project_id = str(row["project_id"])
    try:
        caller = service_caller("annotation", str(row["org_id"]))
        schema = await label_schema(rt, project_id, caller)
        project, datasets = await project_facts(rt, project_id, caller)
        watch.lap("facts")
        key = object_keys.release_snapshot(project_id, row["id"])
        with tempfile.TemporaryDirectory(prefix="loupe-release-") as scratch:
            path = Path(scratch) / "release.jsonl"
            samples, objects = await snapshot(
                rt,
                row,
                ReleaseHeader(
                    format=NATIVE_FORMAT_VERSION,
                    project=project,
                    release=ReleaseInfo(
                        id=str(row["id"]),
                        name=row["name"],
                        description=row["description"],
                        created_at=row["created_at"],
                    ),
                    label_schema=schema,
                    labelsets=list(row["labelsets"]),
                    datasets=datasets,
                    samples=0,
                    objects=0,
                ),
                path,
            )
            watch.lap("snapshot")
            await rt.storage.put_file("releases", key, path, "application/x-ndjson")
            LATEST_RELEASE.keep(key, path)
            watch.lap("upload")
    except LoupeError as exc:
        if not failed_for_good(rt, exc, delivery):
            raise
        await finish_release(rt, row["id"], project_id, error=exc.message)
        return
    await finish_release(rt, row["id"], project_id, key=key, samples=samples, objects=objects)
    watch.lap("record")
    watch.log(f"release {row['id']} ({samples} samples)")


async def snapshot(rt: Runtime, release: asyncpg.Record, header: ReleaseHeader, path: Path) -> tuple[int, int]:
    """Write the native release file of one moment of the project; its sample and object counts."""
    project = release["project_id"]
    async with rt.db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM labelsets WHERE project_id = $1 AND name = ANY($2)", project, list(release["labelsets"])
            )
        ]
        samples = await conn.fetchval("SELECT count(*) FROM samples WHERE project_id = $1", project)
        objects = await conn.fetchval(
            "SELECT count(*) FROM objects o JOIN samples s ON s.id = o.sample_id "
            "WHERE s.project_id = $1 AND o.labelset_id = ANY($2::uuid[])",
            project,
            ids,
        )
        header = msgspec.structs.replace(header, samples=samples, objects=objects)
        with path.open("wb") as out:
            out.write(encoder.encode(header) + b"\n")
            lines: list[str] = []
            async for record in conn.cursor(SNAPSHOT, project, ids, prefetch=2000):
                lines.append(record["line"])
                if len(lines) == 2000:
                    out.write(("\n".join(lines) + "\n").encode())
                    lines.clear()
            if lines:
                out.write(("\n".join(lines) + "\n").encode())
    return samples, objects


async def finish_release(
    rt: Runtime,
    release_id: uuid.UUID,
    project_id: str,
    *,
    key: str | None = None,
    samples: int = 0,
    objects: int = 0,
    error: str | None = None,
) -> None:
    """Record the outcome, announce it, and start the exports that were waiting for it."""
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE releases SET state = $2, key = $3, samples = $4, objects = $5, error = $6, finished_at = now() "
            f"WHERE id = $1 RETURNING {RELEASE_COLUMNS}",
            release_id,
            "FAILED" if error else "SUCCEEDED",
            key,
            samples,
            objects,
            error,
        )
        if row is None:
            return
        await outbox.emit(conn, subjects.RELEASE_FINISHED, to_release(row), project_id)
        waiting = await conn.fetch("SELECT id FROM exports WHERE release_id = $1 AND state = 'PENDING'", release_id)
        if error:
            await conn.execute(
                "UPDATE exports SET state = 'FAILED', error = $2, finished_at = now() "
                "WHERE release_id = $1 AND state = 'PENDING'",
                release_id,
                f"the release could not be built: {error}",
            )
            return
        for export in waiting:
            await outbox.submit_job(
                conn, subjects.RELEASE_JOB, BuildExport(export_id=str(export["id"])), str(export["id"])
            )


# -- exports ----------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_EXPORT)
async def create_export(rt: Runtime, request: CreateExportRequest, ctx: RequestContext) -> Export:
    body = request.export
    async with rt.db.acquire() as conn, conn.transaction():
        release = await fetch_release(conn, request.project_id, request.release_id)
        if release["state"] == "FAILED":
            raise conflict(
                f"release {release['name']!r} failed ({release['error']}); cut a new one to export", path="release_id"
            )
        if body.labelset not in release["labelsets"]:
            raise invalid(
                f"release {release['name']!r} has no labelset {body.labelset!r}; it has "
                f"{', '.join(release['labelsets'])}",
                path="$.labelset",
            )
        row = await conn.fetchrow(
            f"INSERT INTO exports (release_id, project_id, format, labelset, filter, task, archive) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {EXPORT_COLUMNS}",
            release["id"],
            release["project_id"],
            body.format,
            body.labelset,
            encoder.encode(body.filter).decode(),
            body.task,
            body.archive,
        )
        if release["state"] == "SUCCEEDED":  # otherwise the release's job starts it when it is done
            await outbox.submit_job(conn, subjects.RELEASE_JOB, BuildExport(export_id=str(row["id"])), str(row["id"]))
    return to_export(rt, row)


async def fetch_export(rt: Runtime, request: ExportRef) -> asyncpg.Record:
    query = f"SELECT {EXPORT_COLUMNS} FROM exports WHERE id = $1 AND project_id = $2"
    return await one_of_project(rt.db, query, "export", request.export_id, request.project_id)


@ANSWERS(subjects.GET_EXPORT)
async def get_export(rt: Runtime, request: ExportRef, ctx: RequestContext) -> Export:
    return to_export(rt, await fetch_export(rt, request))


@ANSWERS(subjects.LOCATE_EXPORT)
async def locate_export(rt: Runtime, request: ExportRef, ctx: RequestContext) -> Redirect:
    export = to_export(rt, await fetch_export(rt, request))
    if export.download_url is None:
        raise LoupeError(
            "conflict", f"export {export.id} is {export.state}; it can be downloaded once SUCCEEDED", state=export.state
        )
    return Redirect(url=export.download_url)


@ANSWERS(subjects.LIST_EXPORTS)
async def list_exports(rt: Runtime, request: ListExportsRequest, ctx: RequestContext) -> ExportList:
    release = await fetch_release(rt.db, request.project_id, request.release_id)
    rows = await rt.db.fetch(
        f"SELECT {EXPORT_COLUMNS} FROM exports WHERE release_id = $1 ORDER BY created_at, id", release["id"]
    )
    return ExportList(items=[to_export(rt, row) for row in rows])


def filtered(samples: Iterator[ReleaseSample], rule: ExportFilter, labelset: str) -> Iterator[ReleaseSample]:
    datasets, statuses, classes = set(rule.dataset_ids), set(rule.statuses), set(rule.class_ids)
    sample_statuses = set(rule.sample_statuses)
    for sample in samples:
        if datasets and sample.dataset_id not in datasets:
            continue
        if sample_statuses and sample.status not in sample_statuses:
            continue
        label = sample.labels.get(labelset)
        if statuses and (label.status if label else "UNLABELED") not in statuses:
            continue
        if classes and label is not None:
            kept = msgspec.structs.replace(label, objects=[o for o in label.objects if o.class_id in classes])
            sample = msgspec.structs.replace(sample, labels={**sample.labels, labelset: kept})
        yield sample


def write_export(
    release_file: Path, out_dir: Path, export: asyncpg.Record, image_url, read_image
) -> tuple[ExportStats, Path]:
    """Convert the release file with the export's writer; the file to upload (a zip when the format
    wrote several, or the export asked for one)."""
    header, samples = native_export.read(release_file)
    rule = msgspec.json.decode(export["filter"], type=ExportFilter)
    target = ExportTarget(
        header=header,
        out_dir=out_dir,
        labelset=export["labelset"],
        task=export["task"],
        image_url=image_url,
        read_image=read_image,
    )
    stats = WRITERS[export["format"]](target, filtered(samples, rule, export["labelset"]))
    files = sorted(p for p in out_dir.rglob("*") if p.is_file())
    if len(files) == 1 and (not export["archive"] or files[0].suffix == ".zip"):
        return stats, files[0]
    archive = out_dir.parent / f"{export['format']}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zipped:
        for file in files:
            zipped.write(file, file.relative_to(out_dir).as_posix())
    return stats, archive


async def run_export(rt: Runtime, job: BuildExport, delivery: Delivery) -> None:
    export = await rt.db.fetchrow(f"SELECT {EXPORT_COLUMNS} FROM exports WHERE id = $1", uuid.UUID(job.export_id))
    if export is None or export["state"] in ("SUCCEEDED", "FAILED"):
        return
    release = await rt.db.fetchrow(
        "SELECT key, extract(epoch FROM clock_timestamp() - greatest(finished_at, $2)) AS queued_s "
        "FROM releases WHERE id = $1",
        export["release_id"],
        export["created_at"],
    )
    watch = Stopwatch(float(release["queued_s"]))
    await rt.db.execute("UPDATE exports SET state = 'RUNNING' WHERE id = $1", export["id"])

    originals = PresignedGets(rt.storage, rt.settings, "media", DOWNLOAD_EXPIRES_S * 24 * 7)

    def image_url(sample: ReleaseSample) -> str | None:
        if sample.content_hash is None:
            return sample.media_url
        return originals(object_keys.original(sample.content_hash))

    def read_image(sample: ReleaseSample) -> Iterator[bytes] | None:
        """The original's bytes in chunks, read in the writer's thread with the synchronous S3 client."""
        if sample.content_hash is None:
            return None
        response = rt.storage.client.get_object(rt.storage.bucket("media"), object_keys.original(sample.content_hash))

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.stream(ORIGINAL_CHUNK)
            finally:
                response.close()
                response.release_conn()

        return chunks()

    scratch = Path(tempfile.mkdtemp(prefix="loupe-export-"))
    try:
        release_file = scratch / "release.jsonl"
        if not LATEST_RELEASE.link(release["key"], release_file):
            await rt.storage.get_file("releases", release["key"], release_file)
        watch.lap("download")
        out_dir = scratch / "out"
        out_dir.mkdir()
        try:
            # A thread: the conversion is CPU work, and the loop must keep the job's heartbeat going.
            stats, result = await asyncio.to_thread(write_export, release_file, out_dir, export, image_url, read_image)
        except LoupeError as exc:
            if not failed_for_good(rt, exc, delivery):
                raise
            await finish_export(rt, export, error=exc.message)
            return
        watch.lap("convert")
        key = object_keys.export_file(export["project_id"], export["id"], result.name)
        content_type = {".json": "application/json", ".jsonl": "application/x-ndjson", ".zip": "application/zip"}.get(
            result.suffix, "application/octet-stream"
        )
        await rt.storage.put_file("releases", key, result, content_type)
        watch.lap("upload")
        await finish_export(rt, export, key=key, stats=stats, size=result.stat().st_size)
        watch.lap("record")
        watch.log(f"export {export['id']} ({export['format']}, {stats.objects} objects)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def finish_export(
    rt: Runtime,
    export: asyncpg.Record,
    *,
    key: str | None = None,
    stats: ExportStats | None = None,
    size: int | None = None,
    error: str | None = None,
) -> None:
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE exports SET state = $2, key = $3, samples = $4, objects = $5, size_bytes = $6, error = $7, "
            f"finished_at = now() WHERE id = $1 RETURNING {EXPORT_COLUMNS}",
            export["id"],
            "FAILED" if error else "SUCCEEDED",
            key,
            stats.samples if stats else 0,
            stats.objects if stats else 0,
            size,
            error,
        )
        await outbox.emit(conn, subjects.EXPORT_FINISHED, to_export(rt, row), str(export["project_id"]))


async def run_job(rt: Runtime, job: BuildRelease | BuildExport, delivery: Delivery) -> None:
    if isinstance(job, BuildRelease):
        await build(rt, job, delivery)
    else:
        await run_export(rt, job, delivery)
