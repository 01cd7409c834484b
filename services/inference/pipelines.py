"""Pipeline commands: create, read, change, delete, enable and disable, frames pushed in, capture, metrics,
and source and sink configs as YAML. What a pipeline is lives in Postgres; what it is doing lives in this
process (`Pipelines`), which starts every enabled pipeline when the service starts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import yaml

from proto import subjects
from proto.catalog import ProjectDeleted
from proto.common import Empty
from proto.inference import ModelChoice, Thresholds
from proto.pipelines import (
    CaptureRequest,
    CreatePipelineRequest,
    FolderSink,
    FolderSource,
    FrameAccepted,
    HttpSource,
    ImportConfigRequest,
    MqttSink,
    NewPipeline,
    Pipeline,
    PipelineConfig,
    PipelineList,
    PipelineMetrics,
    PipelineRef,
    ProjectPipelines,
    PushFrameRequest,
    Sink,
    Source,
    SourceAndSinks,
    UpdatePipelineRequest,
    VideoSource,
    WebhookSink,
)
from proto.samples import DatasetRef
from services.inference.live import Running, Spec, inside_roots
from services.inference.versions import resolve
from shared import fetch
from shared.bus import RequestContext
from shared.callers import actor
from shared.consumers import Delivery
from shared.errors import conflict, invalid, not_found
from shared.ids import parse_uuid
from shared.rows import from_row
from shared.service import Answers, Runtime, StateKey

ANSWERS = Answers()

COLUMNS = (
    "id, project_id, org_id, name, model, source, sinks, thresholds, queue_size, enabled, capture_dataset_id, "
    "created_by, created_at, updated_at"
)


class Pipelines:
    """The pipelines this process runs, by id."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.running: dict[str, Running] = {}

    async def start(self, row: asyncpg.Record) -> None:
        await self.stop(str(row["id"]))
        running = Running(self.rt, spec_of(row), self.captured)
        self.running[running.spec.pipeline_id] = running
        running.start()

    async def stop(self, pipeline_id: str) -> None:
        running = self.running.pop(pipeline_id, None)
        if running is not None:
            await running.stop()

    async def captured(self, pipeline_id: str) -> None:
        await self.rt.db.execute("UPDATE pipelines SET capture_dataset_id = NULL WHERE id = $1", uuid.UUID(pipeline_id))


PIPELINES = StateKey("pipelines", Pipelines)


async def running_pipelines(rt: Runtime) -> AsyncIterator[None]:
    """A service context: every enabled pipeline runs again when the service starts, and stops with it."""
    pipelines = rt.state[PIPELINES] = Pipelines(rt)
    for row in await rt.db.fetch(f"SELECT {COLUMNS} FROM pipelines WHERE enabled"):
        await pipelines.start(row)
    try:
        yield
    finally:
        for pipeline_id in list(pipelines.running):
            await pipelines.stop(pipeline_id)


def spec_of(row: asyncpg.Record) -> Spec:
    return Spec(
        pipeline_id=str(row["id"]),
        project_id=str(row["project_id"]),
        org_id=str(row["org_id"]),
        model=msgspec.convert(row["model"], ModelChoice),
        source=msgspec.convert(row["source"], Source),
        sinks=msgspec.convert(row["sinks"], list[Sink]),
        thresholds=msgspec.convert(row["thresholds"], Thresholds),
        queue_size=row["queue_size"],
        capture_dataset_id=str(row["capture_dataset_id"]) if row["capture_dataset_id"] else None,
    )


def to_pipeline(rt: Runtime, row: asyncpg.Record) -> Pipeline:
    spec = spec_of(row)
    running = rt.state[PIPELINES].running.get(spec.pipeline_id)
    return from_row(
        Pipeline,
        row,
        model=spec.model,
        source=spec.source,
        sinks=spec.sinks,
        thresholds=spec.thresholds,
        state=("starting" if running is None else running.state) if row["enabled"] else "disabled",
        error=running.error if running else None,
        serving=running.serving if running else None,
    )


async def fetch_row(rt: Runtime, ref: PipelineRef | PushFrameRequest | CaptureRequest) -> asyncpg.Record:
    row = await rt.db.fetchrow(
        f"SELECT {COLUMNS} FROM pipelines WHERE id = $1 AND project_id = $2",
        parse_uuid(ref.pipeline_id, "pipeline"),
        parse_uuid(ref.project_id, "project"),
    )
    if row is None:
        raise not_found("pipeline", ref.pipeline_id)
    return row


async def update_row(rt: Runtime, row: asyncpg.Record, assignments: str, *args: Any) -> asyncpg.Record:
    return await rt.db.fetchrow(
        f"UPDATE pipelines SET {assignments}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}", row["id"], *args
    )


async def restarted(rt: Runtime, row: asyncpg.Record) -> Pipeline:
    """The pipeline as `row` says, (re)started here if it is enabled, stopped if not."""
    pipelines = rt.state[PIPELINES]
    if row["enabled"]:
        await pipelines.start(row)
    else:
        await pipelines.stop(str(row["id"]))
    return to_pipeline(rt, row)


def check_source(rt: Runtime, source: Source, path: str = "$.source") -> None:
    if isinstance(source, FolderSource):
        folder = checked_folder(rt, source.path, f"{path}.path")
        if not folder.is_dir():
            raise invalid(f"{source.path!r} is not a folder on the server; create it first", path=f"{path}.path")
    elif isinstance(source, VideoSource):
        video = checked_folder(rt, source.path, f"{path}.path")
        if not video.is_file():
            raise invalid(
                f"{source.path!r} is not a file on the server; copy the video there first", path=f"{path}.path"
            )


def check_sinks(rt: Runtime, sinks: list[Sink], path: str = "$.sinks") -> None:
    for i, sink in enumerate(sinks):
        if isinstance(sink, FolderSink):
            checked_folder(rt, sink.path, f"{path}[{i}].path")
        elif isinstance(sink, MqttSink) and not rt.settings.pipeline_mqtt_url:
            raise invalid(
                "this server has no MQTT broker for pipelines: ask the operator to set LOUPE_PIPELINE_MQTT_URL",
                path=f"{path}[{i}]",
            )
        elif isinstance(sink, WebhookSink):
            try:
                fetch.check_target(rt, sink.url)
            except fetch.FetchError as error:
                raise invalid(error.message, path=f"{path}[{i}].url", fetch_error=error.code) from None


def checked_folder(rt: Runtime, folder: str, path: str) -> Path:
    resolved = inside_roots(rt, folder)
    if resolved is None:
        allowed = rt.settings.pipeline_folders or "none: the server sets LOUPE_PIPELINE_FOLDERS"
        raise invalid(f"{folder!r} is not under one of the server's pipeline folders ({allowed})", path=path)
    return resolved


def to_columns(value: Any) -> Any:
    return msgspec.to_builtins(value)


async def on_project_deleted(rt: Runtime, project: str | None, deleted: ProjectDeleted, delivery: Delivery) -> None:
    """A deleted project's pipelines stop and are forgotten."""
    rows = await rt.db.fetch("DELETE FROM pipelines WHERE project_id = $1 RETURNING id", uuid.UUID(deleted.id))
    for row in rows:
        await rt.state[PIPELINES].stop(str(row["id"]))


# -- commands ---------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_PIPELINE)
async def create(rt: Runtime, request: CreatePipelineRequest, ctx: RequestContext) -> Pipeline:
    caller = ctx.require_caller()
    new: NewPipeline = request.pipeline
    await resolve(rt, request.project_id, new.model, caller, path="$.model")
    check_source(rt, new.source)
    check_sinks(rt, new.sinks)
    row = await rt.db.fetchrow(
        "INSERT INTO pipelines (id, project_id, org_id, name, model, source, sinks, thresholds, queue_size, enabled, "
        f"created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}",
        uuid.uuid4(),
        parse_uuid(request.project_id, "project"),
        uuid.UUID(caller.org_id),
        new.name,
        to_columns(new.model),
        to_columns(new.source),
        to_columns(new.sinks),
        to_columns(new.thresholds),
        new.queue_size,
        new.enabled,
        actor(caller),
    )
    return await restarted(rt, row)


@ANSWERS(subjects.LIST_PIPELINES)
async def list_pipelines(rt: Runtime, request: ProjectPipelines, ctx: RequestContext) -> PipelineList:
    rows = await rt.db.fetch(
        f"SELECT {COLUMNS} FROM pipelines WHERE project_id = $1 ORDER BY created_at, id",
        parse_uuid(request.project_id, "project"),
    )
    return PipelineList(items=[to_pipeline(rt, row) for row in rows])


@ANSWERS(subjects.GET_PIPELINE)
async def get(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> Pipeline:
    return to_pipeline(rt, await fetch_row(rt, request))


@ANSWERS(subjects.UPDATE_PIPELINE)
async def update(rt: Runtime, request: UpdatePipelineRequest, ctx: RequestContext) -> Pipeline:
    caller = ctx.require_caller()
    row = await fetch_row(rt, PipelineRef(project_id=request.project_id, pipeline_id=request.pipeline_id))
    changes = request.changes
    if changes.model is not None:
        await resolve(rt, request.project_id, changes.model, caller, path="$.model")
    if changes.source is not None:
        check_source(rt, changes.source)
    if changes.sinks is not None:
        check_sinks(rt, changes.sinks)
    given = {name: value for name, value in msgspec.structs.asdict(changes).items() if value is not None}
    if not given:
        return to_pipeline(rt, row)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(given, start=2))
    values = [value if name in ("name", "queue_size") else to_columns(value) for name, value in given.items()]
    return await restarted(rt, await update_row(rt, row, assignments, *values))


@ANSWERS(subjects.DELETE_PIPELINE)
async def delete(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> Empty:
    row = await fetch_row(rt, request)
    await rt.state[PIPELINES].stop(str(row["id"]))
    await rt.db.execute("DELETE FROM pipelines WHERE id = $1", row["id"])
    return Empty()


@ANSWERS(subjects.ENABLE_PIPELINE)
async def enable(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> Pipeline:
    """Enabling an enabled pipeline starts it again: the way to retry one that failed to start."""
    return await restarted(rt, await update_row(rt, await fetch_row(rt, request), "enabled = true"))


@ANSWERS(subjects.DISABLE_PIPELINE)
async def disable(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> Pipeline:
    return await restarted(rt, await update_row(rt, await fetch_row(rt, request), "enabled = false"))


@ANSWERS(subjects.PUSH_PIPELINE_FRAME)
async def push_frame(rt: Runtime, request: PushFrameRequest, ctx: RequestContext) -> FrameAccepted:
    row = await fetch_row(rt, request)
    if not isinstance(msgspec.convert(row["source"], Source), HttpSource):
        raise conflict("the pipeline's source is not `http`: it takes no pushed frames", path="$")
    running = rt.state[PIPELINES].running.get(str(row["id"]))
    if running is None:
        raise conflict("the pipeline is disabled: enable it first (POST …/pipelines/{id}/enable)", path="$")
    if running.state == "failed":
        raise conflict(f"the pipeline failed to start ({running.error}): fix it and enable it again", path="$")
    accepted = running.offer(request.frame.image, request.frame.name)
    return FrameAccepted(accepted=accepted)


@ANSWERS(subjects.CAPTURE_PIPELINE_FRAME)
async def capture(rt: Runtime, request: CaptureRequest, ctx: RequestContext) -> Pipeline:
    caller = ctx.require_caller()
    row = await fetch_row(rt, request)
    dataset_id = str(request.capture.dataset_id)
    await rt.nats.request(
        subjects.GET_DATASET, DatasetRef(project_id=request.project_id, dataset_id=dataset_id), caller=caller
    )
    row = await update_row(rt, row, "capture_dataset_id = $2", uuid.UUID(dataset_id))
    running = rt.state[PIPELINES].running.get(str(row["id"]))
    if running is not None:
        running.capture = dataset_id
    return to_pipeline(rt, row)


@ANSWERS(subjects.PIPELINE_METRICS)
async def metrics(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> PipelineMetrics:
    row = await fetch_row(rt, request)
    pipeline = to_pipeline(rt, row)
    running = rt.state[PIPELINES].running.get(pipeline.id)
    if running is None:
        return PipelineMetrics(
            pipeline_id=pipeline.id,
            state=pipeline.state,
            queued=0,
            frames=0,
            dropped=0,
            failed=0,
            sink_failures=0,
            windows=[],
        )
    stats = running.stats
    return PipelineMetrics(
        pipeline_id=pipeline.id,
        state=pipeline.state,
        queued=running.queue.qsize(),
        frames=stats.frames,
        dropped=stats.dropped,
        failed=stats.failed,
        sink_failures=stats.sink_failures,
        windows=stats.windows(),
    )


@ANSWERS(subjects.EXPORT_PIPELINE_CONFIG)
async def export_config(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> PipelineConfig:
    spec = spec_of(await fetch_row(rt, request))
    config = msgspec.to_builtins(SourceAndSinks(source=spec.source, sinks=spec.sinks))
    return PipelineConfig(yaml=yaml.safe_dump(config, sort_keys=False))


@ANSWERS(subjects.IMPORT_PIPELINE_CONFIG)
async def import_config(rt: Runtime, request: ImportConfigRequest, ctx: RequestContext) -> Pipeline:
    row = await fetch_row(rt, PipelineRef(project_id=request.project_id, pipeline_id=request.pipeline_id))
    try:
        loaded = yaml.safe_load(request.config.yaml)
    except yaml.YAMLError as error:
        raise invalid(f"not YAML: {error}", path="$.yaml") from None
    try:
        config = msgspec.convert(loaded, SourceAndSinks)
    except msgspec.ValidationError as error:
        raise invalid(f"not a pipeline config: {error}", path="$.yaml") from None
    check_source(rt, config.source, "$.yaml.source")
    check_sinks(rt, config.sinks, "$.yaml.sinks")
    updated = await update_row(rt, row, "source = $2, sinks = $3", to_columns(config.source), to_columns(config.sinks))
    return await restarted(rt, updated)
