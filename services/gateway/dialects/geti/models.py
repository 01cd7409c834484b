"""Geti Tune: models. A Geti model is one trained native model version (Geti's "model revision"), with its id;
its training data is the release the version learnt from, which is the dataset revision it names. Runs
still training are jobs, not models yet."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from proto import subjects, training
from services.gateway.dialects.geti.common import PROJECT, Route, answer, authorized, no_content, query_bool, timestamp
from services.gateway.dialects.geti.projects import get_project
from services.gateway.dialects.geti.task import project_task
from services.gateway.dialects.native import ask
from services.gateway.dialects.requests import uuid_param
from shared.errors import LoupeError

MODEL = PROJECT + "/models/{model_id}"


async def all_versions(request: web.Request, pid: str) -> list[training.ModelVersion]:
    """Every version of every model of the project, newest first."""
    models: training.ModelList = await ask(request, subjects.LIST_MODELS, training.ProjectScope(project_id=pid))
    lists: list[training.VersionList] = await asyncio.gather(
        *(
            ask(request, subjects.LIST_MODEL_VERSIONS, training.ModelRef(project_id=pid, model=model.name))
            for model in models.items
        )
    )
    versions = [version for found in lists for version in found.items]
    return sorted(versions, key=lambda version: version.created_at, reverse=True)


async def training_runs(request: web.Request, pid: str) -> dict[str, training.TrainingRun]:
    runs: training.TrainingRunList = await ask(
        request,
        subjects.LIST_TRAINING_RUNS,
        training.ListTrainingRunsRequest(project_id=pid, query=training.ListTrainingRuns(limit=500)),
    )
    return {run.id: run for run in runs.items}


def model_json(
    version: training.ModelVersion, run: training.TrainingRun | None, ids: dict[tuple[str, int], str]
) -> dict[str, Any]:
    parent = version.pretrained
    return {
        "id": version.id,
        "name": f"{version.model} v{version.version}",
        "architecture": f"loupe-{version.family}-{version.config.model_size}",
        "parent_revision": ids.get((parent.model, parent.version)) if parent else None,
        "training_info": {
            "status": "successful",
            "start_time": timestamp(run.started_at if run else None),
            "end_time": timestamp(run.finished_at if run else version.created_at),
            "dataset_revision_id": version.release_id,
            "label_schema_revision": {"labels": [{"name": name} for name in version.classes]},
            "configuration": version.config,
        },
        "variants": [
            {"id": version.id, "format": "onnx", "precision": "fp32", "files_deleted": version.weights_deleted}
        ],
        "metrics": version.metrics,
        "active": version.active,
        "files_deleted": version.weights_deleted,
        "created_at": timestamp(version.created_at),
    }


async def models_json(request: web.Request, pid: str) -> dict[str, dict[str, Any]]:
    """Each version as a Geti model, by id."""
    versions, runs = await asyncio.gather(all_versions(request, pid), training_runs(request, pid))
    ids = {(version.model, version.version): version.id for version in versions}
    return {version.id: model_json(version, runs.get(version.run_id), ids) for version in versions}


async def one_version(request: web.Request, pid: str, model_id: str) -> training.ModelVersion:
    for version in await all_versions(request, pid):
        if version.id == model_id:
            return version
    raise LoupeError("not_found", f"model {model_id} is not a model of this project", path="model_id")


async def list_models(request: web.Request) -> web.Response:
    return answer(list((await models_json(request, await authorized(request, "viewer"))).values()))


async def get_model(request: web.Request) -> web.Response:
    pid, model_id = await authorized(request, "viewer"), uuid_param(request, "model_id")
    found = await models_json(request, pid)
    if model_id not in found:
        raise LoupeError("not_found", f"model {model_id} is not a model of this project", path="model_id")
    return answer(found[model_id])


async def model_labels(request: web.Request) -> web.Response:
    """The classes the model learnt, in its output order, each with the id of the project's label of that name
    (null when the label was removed or renamed since)."""
    pid = await authorized(request, "viewer")
    version = await one_version(request, pid, uuid_param(request, "model_id"))
    task = await project_task(request, await get_project(request, pid))
    ids = {label.name: label.id for label in task.labels}
    return answer([{"id": ids.get(name), "name": name} for name in version.classes])


async def delete_model(request: web.Request) -> web.Response:
    """`weights_only=true` deletes the files and keeps the model's record and metrics."""
    pid = await authorized(request, "manager")
    version = await one_version(request, pid, uuid_param(request, "model_id"))
    await ask(
        request,
        subjects.DELETE_MODEL_VERSION,
        training.DeleteVersionRequest(
            project_id=pid,
            model=version.model,
            version=str(version.version),
            query=training.DeleteVersionOptions(weights_only=query_bool(request, "weights_only")),
        ),
    )
    return no_content()


ROUTES: list[Route] = [
    ("GET", PROJECT + "/models", list_models),
    ("GET", MODEL, get_model),
    ("GET", MODEL + "/labels", model_labels),
    ("DELETE", MODEL, delete_model),
]
