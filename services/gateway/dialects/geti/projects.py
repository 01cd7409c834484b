"""Geti Tune: projects (Loupe projects), their labels (label classes, or a classification project's tags) and
their training configuration (the training service's project configuration)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web
from msgspec import UNSET

from proto import catalog, pipelines, schema, subjects, training
from services.gateway.dialects.geti.common import PROJECT, Route, answer, authorized, body, no_content, timestamp
from services.gateway.dialects.geti.task import (
    NATIVE_TASK,
    GetiTaskType,
    NewLabel,
    PatchLabels,
    first_schema,
    label_path,
    patch_labels,
    project_task,
    task_json,
)
from services.gateway.dialects.native import ask, visible_projects
from shared.errors import LoupeError


class NewTask(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    task_type: GetiTaskType
    exclusive_labels: bool = True
    labels: list[NewLabel]


class NewProject(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: catalog.ProjectName
    task: NewTask


class Rename(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: catalog.ProjectName


async def get_project(request: web.Request, pid: str) -> catalog.Project:
    return await ask(request, subjects.GET_PROJECT, catalog.ProjectRef(id=pid))


async def active_pipeline(request: web.Request, pid: str) -> bool:
    found: pipelines.PipelineList = await ask(
        request, subjects.LIST_PIPELINES, pipelines.ProjectPipelines(project_id=pid)
    )
    return any(pipeline.enabled for pipeline in found.items)


async def project_json(request: web.Request, project: catalog.Project) -> dict[str, Any]:
    task, active = await asyncio.gather(project_task(request, project), active_pipeline(request, project.id))
    return {
        "id": project.id,
        "name": project.name,
        "task": task_json(task),
        "active_pipeline": active,
        "created_at": timestamp(project.created_at),
    }


async def create_project(request: web.Request) -> web.Response:
    new: NewProject = await body(request, NewProject)
    if not new.task.labels:
        raise LoupeError("invalid", "a project needs at least one label", path="$.task.labels")
    project: catalog.Project = await ask(
        request,
        subjects.CREATE_PROJECT,
        catalog.CreateProject(name=new.name, task_type=NATIVE_TASK[new.task.task_type]),
    )
    document = first_schema(new.task.task_type, new.task.exclusive_labels, new.task.labels)
    try:
        await ask(
            request, subjects.REPLACE_LABEL_SCHEMA, schema.ReplaceSchema(project_id=project.id, document=document)
        )
    except LoupeError as error:
        # The project is made in two steps; labels Loupe refuses (two of one name) undo the first.
        await ask(request, subjects.DELETE_PROJECT, catalog.ProjectRef(id=project.id))
        raise LoupeError(error.code, error.message, path=label_path(error.details.get("path"))) from None
    return answer(await project_json(request, project), 201)


async def list_projects(request: web.Request) -> web.Response:
    projects = await visible_projects(request)
    return answer(await asyncio.gather(*(project_json(request, project) for project in projects)))


async def get_one(request: web.Request) -> web.Response:
    return answer(await project_json(request, await get_project(request, await authorized(request, "viewer"))))


async def rename_project(request: web.Request) -> web.Response:
    rename: Rename = await body(request, Rename)
    project = await ask(
        request,
        subjects.UPDATE_PROJECT,
        catalog.UpdateProjectRequest(
            id=await authorized(request, "manager"), changes=catalog.UpdateProject(name=rename.name)
        ),
    )
    return answer(await project_json(request, project))


async def delete_project(request: web.Request) -> web.Response:
    await ask(request, subjects.DELETE_PROJECT, catalog.ProjectRef(id=await authorized(request, "admin")))
    return no_content()


async def update_labels(request: web.Request) -> web.Response:
    """Answers the task with its labels as they are after the change."""
    patch: PatchLabels = await body(request, PatchLabels)
    pid = await authorized(request, "manager")
    project = await get_project(request, pid)
    await patch_labels(request, pid, await project_task(request, project), patch)
    return answer(task_json(await project_task(request, project)))


# -- training configuration -------------------------------------------------------------------------


async def get_training_configuration(request: web.Request) -> web.Response:
    config: training.ProjectConfig = await ask(
        request, subjects.GET_TRAINING_CONFIG, training.ProjectScope(project_id=await authorized(request, "viewer"))
    )
    return answer(config.config)


async def update_training_configuration(request: web.Request) -> web.Response:
    """Merges the fields sent into the project's configuration; the others keep their values."""
    changes: training.ConfigChanges = await body(request, training.ConfigChanges)
    pid = await authorized(request, "manager")
    current: training.ProjectConfig = await ask(
        request, subjects.GET_TRAINING_CONFIG, training.ProjectScope(project_id=pid)
    )
    sent = {field: value for field in changes.__struct_fields__ if (value := getattr(changes, field)) is not UNSET}
    config = msgspec.structs.replace(current.config, **sent)
    await ask(request, subjects.REPLACE_TRAINING_CONFIG, training.ReplaceConfigRequest(project_id=pid, config=config))
    return no_content()


ROUTES: list[Route] = [
    ("POST", "/projects", create_project),
    ("GET", "/projects", list_projects),
    ("GET", PROJECT, get_one),
    ("PATCH", PROJECT, rename_project),
    ("DELETE", PROJECT, delete_project),
    ("PATCH", PROJECT + "/labels", update_labels),
    ("GET", PROJECT + "/training_configuration", get_training_configuration),
    ("PATCH", PROJECT + "/training_configuration", update_training_configuration),
]
