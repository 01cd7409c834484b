"""Geti Tune: a project's pipeline, the project's first native pipeline (made by the first PATCH that names a
source and a sink), using the organisation's saved sources and sinks (proto/saved_io.py) and a model version
of the project, or the active version of the family that learns the project's task."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from proto import catalog, pipelines, saved_io, subjects, training
from proto.common import Uuid
from proto.inference import ModelChoice
from services.gateway.dialects.geti import datasets, models
from services.gateway.dialects.geti.common import PROJECT, Route, answer, body, no_content
from services.gateway.dialects.geti.task import FAMILY, project_task
from services.gateway.dialects.native import ask
from services.gateway.dialects.requests import project_id
from shared.errors import LoupeError, conflict, invalid

PIPELINE = PROJECT + "/pipeline"
NAME = "geti"  # the native pipeline's name when the dialect makes it


class PipelineChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    source_id: Uuid | None = None
    sink_id: Uuid | None = None
    model_id: Uuid | None = None  # a model version of the project; left out: the task's active version


async def project_pipeline(request: web.Request, pid: str) -> pipelines.Pipeline | None:
    found: pipelines.PipelineList = await ask(
        request, subjects.LIST_PIPELINES, pipelines.ProjectPipelines(project_id=pid), project_id=pid, role="viewer"
    )
    return found.items[0] if found.items else None


async def existing(request: web.Request, pid: str) -> pipelines.Pipeline:
    pipeline = await project_pipeline(request, pid)
    if pipeline is None:
        raise conflict(
            "the project has no pipeline yet: PATCH /api/projects/{id}/pipeline with a source_id and a sink_id first",
            path="$",
        )
    return pipeline


def ref(pipeline: pipelines.Pipeline) -> pipelines.PipelineRef:
    return pipelines.PipelineRef(project_id=pipeline.project_id, pipeline_id=pipeline.id)


async def version_id(request: web.Request, pid: str, choice: ModelChoice) -> str | None:
    """The id of the exact version the pipeline names, if it names one."""
    if choice.model is None or choice.version is None:
        return None
    found: training.ModelVersion = await ask(
        request,
        subjects.GET_MODEL_VERSION,
        training.VersionRef(project_id=pid, model=choice.model, version=str(choice.version)),
        project_id=pid,
        role="viewer",
    )
    return found.id


async def pipeline_json(request: web.Request, pid: str, pipeline: pipelines.Pipeline | None) -> dict[str, Any]:
    if pipeline is None:
        return {"project_id": pid, "status": "idle", "source_id": None, "sink_id": None, "model_id": None}
    saved: saved_io.PipelineSaved = await ask(
        request,
        subjects.GET_PIPELINE_SAVED_IO,
        saved_io.PipelineSavedRef(project_id=pid, pipeline_id=pipeline.id),
        project_id=pid,
        role="viewer",
    )
    return {
        "project_id": pid,
        "id": pipeline.id,
        "status": "running" if pipeline.enabled else "idle",
        "state": pipeline.state,
        "error": pipeline.error,
        "source_id": saved.source_id,
        "sink_id": saved.sink_ids[0] if saved.sink_ids else None,
        "model_id": await version_id(request, pid, pipeline.model),
        "model": pipeline.model,
        "serving": pipeline.serving,
        "source": pipeline.source,
        "sinks": pipeline.sinks,
    }


async def model_choice(request: web.Request, pid: str, model_id: str | None) -> ModelChoice:
    """The version `model_id` names, or (None) the active version of the family that learns the task."""
    if model_id is None:
        project: catalog.Project = await ask(request, subjects.GET_PROJECT, catalog.ProjectRef(id=pid))
        task = await project_task(request, project)
        family = FAMILY.get(task.task_type)
        if family is None:
            raise invalid(f"Loupe trains no model for {task.task_type} projects yet", path="$.model_id")
        return ModelChoice(family=family)  # type: ignore[arg-type]
    try:
        version = await models.one_version(request, pid, model_id)
    except LoupeError as error:
        error.details["path"] = "$.model_id"
        raise
    return ModelChoice(family=version.family, model=version.model, version=version.version)


async def saved_config(request: web.Request, command: subjects.Command, saved_id: str, path: str) -> Any:
    try:
        return await ask(request, command, saved_io.SavedRef(id=saved_id))
    except LoupeError as error:
        error.details["path"] = path
        raise


def model_path(error: LoupeError) -> LoupeError:
    """A native pipeline's `$.model…` is the Geti body's `$.model_id`."""
    if str(error.details.get("path", "")).startswith("$.model"):
        error.details["path"] = "$.model_id"
    return error


async def get_pipeline(request: web.Request) -> web.Response:
    pid = project_id(request)
    return answer(await pipeline_json(request, pid, await project_pipeline(request, pid)))


async def patch_pipeline(request: web.Request) -> web.Response:
    changes: PipelineChanges = await body(request, PipelineChanges)
    pid = project_id(request)
    pipeline = await project_pipeline(request, pid)
    chosen = await model_choice(request, pid, str(changes.model_id)) if changes.model_id else None
    try:
        if pipeline is None:
            pipeline = await first_pipeline(request, pid, changes, chosen or await model_choice(request, pid, None))
        elif chosen is not None:
            pipeline = await ask(
                request,
                subjects.UPDATE_PIPELINE,
                pipelines.UpdatePipelineRequest(
                    project_id=pid, pipeline_id=pipeline.id, changes=pipelines.PipelineChanges(model=chosen)
                ),
                project_id=pid,
                role="manager",
            )
    except LoupeError as error:
        raise model_path(error) from None
    if changes.source_id or changes.sink_id:
        use = saved_io.UseSaved(source_id=changes.source_id, sink_ids=[changes.sink_id] if changes.sink_id else None)
        try:
            await ask(
                request,
                subjects.USE_SAVED_IO,
                saved_io.UseSavedRequest(project_id=pid, pipeline_id=pipeline.id, use=use),
                project_id=pid,
                role="manager",
            )
        except LoupeError as error:
            if str(error.details.get("path", "")).startswith("$.sink_ids"):
                error.details["path"] = "$.sink_id"
            raise
    return answer(await pipeline_json(request, pid, await existing(request, pid)))


async def first_pipeline(
    request: web.Request, pid: str, changes: PipelineChanges, model: ModelChoice
) -> pipelines.Pipeline:
    """The project's pipeline, made with the saved source and sink named (both are needed)."""
    for field in ("source_id", "sink_id"):
        if getattr(changes, field) is None:
            raise invalid(f"the project has no pipeline yet: name its `{field}` too", path=f"$.{field}")
    source: saved_io.SavedSource = await saved_config(
        request, subjects.GET_SAVED_SOURCE, str(changes.source_id), "$.source_id"
    )
    sink: saved_io.SavedSink = await saved_config(request, subjects.GET_SAVED_SINK, str(changes.sink_id), "$.sink_id")
    new = pipelines.NewPipeline(name=NAME, model=model, source=source.source, sinks=[sink.sink])
    return await ask(
        request,
        subjects.CREATE_PIPELINE,
        pipelines.CreatePipelineRequest(project_id=pid, pipeline=new),
        project_id=pid,
        role="manager",
    )


async def switch(request: web.Request, command: subjects.Command) -> web.Response:
    pid = project_id(request)
    pipeline = await existing(request, pid)
    changed = await ask(request, command, ref(pipeline), project_id=pid, role="manager")
    return answer(await pipeline_json(request, pid, changed))


async def enable_pipeline(request: web.Request) -> web.Response:
    return await switch(request, subjects.ENABLE_PIPELINE)


async def disable_pipeline(request: web.Request) -> web.Response:
    return await switch(request, subjects.DISABLE_PIPELINE)


async def capture_frame(request: web.Request) -> web.Response:
    """The next frame goes into the native dataset that Geti uploads go to: an item of the project's dataset."""
    pid = project_id(request)
    pipeline = await existing(request, pid)
    dataset_id = await datasets.upload_dataset(request, pid)
    await ask(
        request,
        subjects.CAPTURE_PIPELINE_FRAME,
        pipelines.CaptureRequest(
            project_id=pid, pipeline_id=pipeline.id, capture=pipelines.Capture(dataset_id=dataset_id)
        ),
        project_id=pid,
        role="manager",
    )
    return no_content()


def window_json(window: pipelines.WindowMetrics) -> dict[str, Any]:
    return {
        "window": window.window,
        "frames": window.frames,
        "dropped_frames": window.dropped,
        "failed_frames": window.failed,
        "throughput_fps": window.frames_per_s,
        "latency": {"p50_ms": window.latency_p50_ms, "p95_ms": window.latency_p95_ms},
    }


async def pipeline_metrics(request: web.Request) -> web.Response:
    pid = project_id(request)
    pipeline = await existing(request, pid)
    found: pipelines.PipelineMetrics = await ask(
        request, subjects.PIPELINE_METRICS, ref(pipeline), project_id=pid, role="viewer"
    )
    return answer(
        {
            "project_id": pid,
            "pipeline_id": found.pipeline_id,
            "status": found.state,
            "frames": found.frames,
            "dropped_frames": found.dropped,
            "failed_frames": found.failed,
            "queued_frames": found.queued,
            "sink_failures": found.sink_failures,
            "windows": [window_json(window) for window in found.windows],
        }
    )


ROUTES: list[Route] = [
    ("GET", PIPELINE, get_pipeline),
    ("PATCH", PIPELINE, patch_pipeline),
    ("POST", PIPELINE + ":enable", enable_pipeline),
    ("POST", PIPELINE + ":disable", disable_pipeline),
    ("POST", PIPELINE + ":capture", capture_frame),
    ("GET", PIPELINE + "/metrics", pipeline_metrics),
]
