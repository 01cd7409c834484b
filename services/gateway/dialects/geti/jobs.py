"""Geti Tune: jobs. A `train` job is a native training run; an `export_dataset` job is a native export of a
release cut for it (the job's id is the export's). Geti's import and staging jobs have no native job of one
step: they answer 501 naming the native API to use. A job's status and log stream as Server-Sent Events until
the job is final.

The dialect keeps no state, so a job is found by its id among the runs and exports of the projects the
caller sees (`project_id` in the query narrows the search to one)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from aiohttp import web

from proto import catalog, releases, subjects, training
from proto.common import Uuid
from services.gateway.dialects.geti.common import Route, answer, geti_error, no_content, timestamp
from services.gateway.dialects.geti.task import FAMILY, project_task
from services.gateway.dialects.native import ask, visible_projects
from services.gateway.dialects.requests import uuid_param
from shared.bus import decode
from shared.errors import LoupeError, conflict, invalid, not_found
from shared.service import RUNTIME

JOB = "/jobs/{job_id:[^/:]+}"
POLL_S = 0.5  # how often a stream looks at its job again
KEEPALIVE_S = 15.0
LOG_PAGE = 200
STATUS = {
    "QUEUED": "pending",
    "PENDING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "done",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
FINAL = ("done", "failed", "cancelled")
JobType = Literal[
    "train",
    "export_dataset",
    "prepare_dataset_for_import",
    "import_dataset_to_existing_project",
    "import_dataset_as_new_project",
    "stage_dataset",
]
# The job types with no native job of one step, and what to use instead.
INSTEAD = {
    "prepare_dataset_for_import": "upload the images (POST /api/projects/{id}/dataset/items, or natively "
    "POST /v1/projects/{id}/datasets/{dataset}/uploads), then import their labels natively "
    "(POST /v1/projects/{id}/label-imports: coco, yolo, voc or native)",
    "import_dataset_to_existing_project": "import the labels natively: POST /v1/projects/{id}/label-imports "
    "(coco, yolo, voc or native files; the images from an upload or a bucket)",
    "import_dataset_as_new_project": "create the project (POST /api/projects), then import natively: "
    "POST /v1/projects/{id}/label-imports",
    "stage_dataset": "a training job cuts its own release of the project as it is (see `train`); "
    "releases are natively POST /v1/projects/{id}/releases",
}


class NewJob(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    job_type: JobType
    project_id: Uuid | None = None
    parameters: dict[str, Any] = {}


class TrainParameters(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Left out: the family that learns the project's task, the model named after it, the project's
    training configuration."""

    family: training.Family | None = None
    model: training.ModelName | None = None
    config: training.ConfigChanges = training.ConfigChanges()
    pretrained: training.PretrainedVersion | None = None


class ExportParameters(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    format: releases.ExportFormat = "coco"
    labelset: str = "ground-truth"


@dataclass(frozen=True)
class Found:
    """A job as the dialect shows it, and how to read it again."""

    job: dict[str, Any]
    reread: Callable[[], Awaitable[Found]]
    run: training.TrainingRun | None = None  # a train job's run


def run_json(run: training.TrainingRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "job_type": "train",
        "project_id": run.project_id,
        "status": STATUS[run.state],
        "state": run.state,
        "progress": round(run.epoch / run.epochs, 4) if run.epochs else 0.0,
        "message": run.error,
        "created_at": timestamp(run.created_at),
        "started_at": timestamp(run.started_at),
        "finished_at": timestamp(run.finished_at),
        "metadata": {
            "model": run.model,
            "family": run.family,
            "epoch": run.epoch,
            "epochs": run.epochs,
            "loss": run.loss,
            "metrics": run.metrics,
            "eta_s": run.eta_s,
            "cancel_requested": run.cancel_requested,
            "model_id": run.version_id,  # the model version it made, once done
        },
    }


def export_json(export: releases.Export) -> dict[str, Any]:
    return {
        "id": export.id,
        "job_type": "export_dataset",
        "project_id": export.project_id,
        "status": STATUS[export.state],
        "state": export.state,
        "progress": 1.0 if export.state == "SUCCEEDED" else 0.0,
        "message": export.error,
        "created_at": timestamp(export.created_at),
        "started_at": None,
        "finished_at": timestamp(export.finished_at),
        "metadata": {
            "format": export.format,
            "release_id": export.release_id,
            "samples": export.samples,
            "size_bytes": export.size_bytes,
            "download_url": export.download_url,
        },
    }


async def read_run(request: web.Request, pid: str, run_id: str) -> Found:
    run: training.TrainingRun = await ask(
        request,
        subjects.GET_TRAINING_RUN,
        training.TrainingRunRef(project_id=pid, run_id=run_id),
        project_id=pid,
        role="viewer",
    )
    return Found(run_json(run), lambda: read_run(request, pid, run_id), run)


async def read_export(request: web.Request, pid: str, export_id: str) -> Found:
    export: releases.Export = await ask(
        request,
        subjects.GET_EXPORT,
        releases.ExportRef(project_id=pid, export_id=export_id),
        project_id=pid,
        role="viewer",
    )
    return Found(export_json(export), lambda: read_export(request, pid, export_id))


async def project_ids(request: web.Request) -> list[str]:
    """The project the query names, or every project the caller sees."""
    if "project_id" in request.query:
        try:
            return [str(msgspec.convert(request.query["project_id"], Uuid))]
        except msgspec.ValidationError:
            raise invalid("query parameter `project_id` must be a project's id (a UUID)", path="project_id") from None
    return [project.id for project in await visible_projects(request)]


async def absent(read: Awaitable[Found]) -> Found | None:
    try:
        return await read
    except LoupeError as error:
        if error.code in ("not_found", "forbidden"):
            return None
        raise


async def find(request: web.Request) -> Found:
    job_id = uuid_param(request, "job_id")
    for pid in await project_ids(request):
        for found in await asyncio.gather(
            absent(read_run(request, pid, job_id)), absent(read_export(request, pid, job_id))
        ):
            if found is not None:
                return found
    raise not_found("job", job_id)


def parameters(kind: type, job: NewJob) -> Any:
    """The job's parameters as `kind`; a bad one is named at `$.parameters…`."""
    try:
        return decode(kind, msgspec.json.encode(job.parameters))
    except LoupeError as error:
        path = str(error.details.get("path", "$"))
        error.details["path"] = "$.parameters" + path[1:]
        raise


async def start_training(request: web.Request, pid: str, job: NewJob) -> Found:
    given: TrainParameters = parameters(TrainParameters, job)
    family = given.family
    if family is None:
        project: catalog.Project = await ask(request, subjects.GET_PROJECT, catalog.ProjectRef(id=pid))
        task = await project_task(request, project)
        family = FAMILY.get(task.task_type)  # type: ignore[assignment]
        if family is None:
            raise invalid(f"Loupe trains no model for {task.task_type} projects yet", path="$.job_type")
    run = training.CreateTrainingRun(family=family, model=given.model, config=given.config, pretrained=given.pretrained)
    try:
        made: training.TrainingRun = await ask(
            request,
            subjects.CREATE_TRAINING_RUN,
            training.CreateTrainingRunRequest(project_id=pid, run=run),
            project_id=pid,
            role="manager",
        )
    except LoupeError as error:
        path = str(error.details.get("path", ""))
        if path.startswith("$."):
            error.details["path"] = "$.parameters" + path[1:]
        raise
    return Found(run_json(made), lambda: read_run(request, pid, made.id), made)


async def start_export(request: web.Request, pid: str, job: NewJob) -> Found:
    """A release of the project as it is now, and its export, which starts once the release is built."""
    given: ExportParameters = parameters(ExportParameters, job)
    name = f"geti-export-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"
    release: releases.Release = await ask(
        request,
        subjects.CREATE_RELEASE,
        releases.CreateReleaseRequest(project_id=pid, release=releases.CreateRelease(name=name)),
        project_id=pid,
        role="manager",
    )
    export: releases.Export = await ask(
        request,
        subjects.CREATE_EXPORT,
        releases.CreateExportRequest(
            project_id=pid,
            release_id=release.id,
            export=releases.CreateExport(format=given.format, labelset=given.labelset),
        ),
        project_id=pid,
        role="viewer",
    )
    return Found(export_json(export), lambda: read_export(request, pid, export.id))


async def create_job(request: web.Request) -> web.Response:
    data = await request.read()
    if not data:
        raise invalid("send a JSON body: `job_type`, `project_id` and `parameters`", path="$")
    job: NewJob = decode(NewJob, data)
    if job.job_type in INSTEAD:
        failure = LoupeError("invalid", f"`{job.job_type}` jobs are not built in Loupe: {INSTEAD[job.job_type]}")
        failure.details["path"] = "$.job_type"
        return geti_error(failure, 501)
    if job.project_id is None:
        raise invalid(f"a `{job.job_type}` job needs the `project_id` it works on", path="$.project_id")
    pid = str(job.project_id)
    start = start_training if job.job_type == "train" else start_export
    found = await start(request, pid, job)
    return answer(found.job, 201)


async def project_jobs(request: web.Request, pid: str) -> list[dict[str, Any]]:
    runs: training.TrainingRunList = await ask(
        request,
        subjects.LIST_TRAINING_RUNS,
        training.ListTrainingRunsRequest(project_id=pid, query=training.ListTrainingRuns(limit=100)),
        project_id=pid,
        role="viewer",
    )
    made: releases.ReleasePage = await ask(
        request,
        subjects.LIST_RELEASES,
        releases.ListReleasesRequest(project_id=pid, page=releases.ListReleases(limit=20)),
        project_id=pid,
        role="viewer",
    )
    jobs = [run_json(run) for run in runs.items]
    for release in made.items:
        exports: releases.ExportList = await ask(
            request,
            subjects.LIST_EXPORTS,
            releases.ListExportsRequest(project_id=pid, release_id=release.id),
            project_id=pid,
            role="viewer",
        )
        jobs.extend(export_json(export) for export in exports.items)
    return jobs


async def list_jobs(request: web.Request) -> web.Response:
    """The jobs of the caller's projects (or of `project_id`), newest first: training runs, and the exports of
    each project's 20 newest releases."""
    jobs = [job for pid in await project_ids(request) for job in await project_jobs(request, pid)]
    jobs.sort(key=lambda job: job["created_at"] or "", reverse=True)
    return answer({"jobs": jobs, "total": len(jobs)})


async def get_job(request: web.Request) -> web.Response:
    return answer((await find(request)).job)


async def cancel_job(request: web.Request) -> web.Response:
    found = await find(request)
    if found.run is None:
        raise conflict("an export job cannot be cancelled; it finishes on its own in seconds", path="$")
    if found.job["status"] not in FINAL:
        await ask(
            request,
            subjects.CANCEL_TRAINING_RUN,
            training.TrainingRunRef(project_id=found.run.project_id, run_id=found.run.id),
            project_id=found.run.project_id,
            role="manager",
        )
    return no_content()


# -- streams ----------------------------------------------------------------------------------------


Send = Callable[[str, Any, str | None], Awaitable[None]]


async def event_stream(request: web.Request, follow: Callable[[Send], Awaitable[None]]) -> web.StreamResponse:
    """A Server-Sent Events response that `follow` sends events on until it returns; a client that goes away
    ends it."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)

    async def send(event: str, data: Any, event_id: str | None = None) -> None:
        head = f"id: {event_id}\n" if event_id else ""
        await response.write(f"{head}event: {event}\ndata: ".encode() + msgspec.json.encode(data) + b"\n\n")

    with contextlib.suppress(ConnectionResetError):
        await follow(send)
        await response.write_eof()
    return response


class Progressed(msgspec.Struct, frozen=True):
    """The part of a `training.run.progressed` event's envelope a status stream reads."""

    data: training.TrainingRunProgressed


progressed_of = msgspec.json.Decoder(Progressed)


@contextlib.asynccontextmanager
async def epochs_of(request: web.Request, run: training.TrainingRun | None) -> AsyncIterator[asyncio.Queue[Any]]:
    """The run's `training.run.progressed` events as they are announced (none for a job that is no run)."""
    heard: asyncio.Queue[Any] = asyncio.Queue()
    if run is None:
        yield heard
        return

    async def keep(msg: Any) -> None:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            event = progressed_of.decode(msg.data).data
            if event.run_id == run.id:
                heard.put_nowait(event)

    subscription = await request.config_dict[RUNTIME].nats.nc.subscribe(
        subjects.TRAINING_RUN_PROGRESSED.subject, cb=keep
    )
    try:
        yield heard
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()


async def stream_status(request: web.Request) -> web.StreamResponse:
    """`status` events: the job as `GET /api/jobs/{id}` shows it, each time it changes, the last one final; for a
    train job also a `progress` event per epoch, the native `training.run.progressed` (loss, metrics, seconds,
    images per second, ETA); a `keepalive` event after 15 s without any."""
    found = await find(request)

    async def follow(send: Send) -> None:
        nonlocal found
        last: dict[str, Any] | None = None
        quiet_since = time.monotonic()
        async with epochs_of(request, found.run) as heard:
            while True:
                if found.job != last:
                    await send("status", found.job, None)
                    last, quiet_since = found.job, time.monotonic()
                if found.job["status"] in FINAL:
                    return
                with contextlib.suppress(TimeoutError):
                    await send("progress", await asyncio.wait_for(heard.get(), POLL_S), None)
                    quiet_since = time.monotonic()
                if time.monotonic() - quiet_since >= KEEPALIVE_S:
                    await send("keepalive", {}, None)
                    quiet_since = time.monotonic()
                found = await found.reread()

    return await event_stream(request, follow)


async def stream_logs(request: web.Request) -> web.StreamResponse:
    """`log` events, oldest first, each `{seq, at, level, message}` with the SSE id its `seq`: a train job's run
    log; an export job's state changes. The stream ends after the final job's last line."""
    found = await find(request)
    run = found.run
    if run is not None:
        return await event_stream(request, lambda send: follow_run_log(request, run, send))
    return await event_stream(request, lambda send: follow_states(found, send))


async def follow_run_log(request: web.Request, run: training.TrainingRun, send: Send) -> None:
    cursor: str | None = None
    while True:
        page: training.RunLog = await ask(
            request,
            subjects.GET_TRAINING_RUN_LOG,
            training.RunLogRequest(
                project_id=run.project_id, run_id=run.id, query=training.RunLogPage(limit=LOG_PAGE, cursor=cursor)
            ),
            project_id=run.project_id,
            role="viewer",
        )
        for line in page.items:
            await send("log", line, str(line.seq))
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
        if len(page.items) < LOG_PAGE:
            await asyncio.sleep(POLL_S)


async def follow_states(found: Found, send: Send) -> None:
    seq, state = 0, None
    while True:
        if found.job["state"] != state:
            state, seq = found.job["state"], seq + 1
            level = "error" if state == "FAILED" else "info"
            message = f"export {state.lower()}" + (f": {found.job['message']}" if found.job["message"] else "")
            line = {"seq": seq, "at": datetime.now(UTC).isoformat(), "level": level, "message": message}
            await send("log", line, str(seq))
        if found.job["status"] in FINAL:
            return
        await asyncio.sleep(POLL_S)
        found = await found.reread()


ROUTES: list[Route] = [
    ("POST", "/jobs", create_job),
    ("GET", "/jobs", list_jobs),
    ("GET", JOB, get_job),
    ("POST", JOB + ":cancel", cancel_job),
    ("GET", JOB + "/status", stream_status),
    ("GET", JOB + "/logs", stream_logs),
]
