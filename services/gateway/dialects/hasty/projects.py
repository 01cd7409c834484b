"""Workspaces (the caller's organisation), projects and datasets."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from proto import catalog, samples, subjects
from proto.common import Empty
from services.gateway.dialects.hasty.common import PROJECT, Routes, ask, json, no_content, page_of, timestamp
from services.gateway.dialects.native import ask_all, visible_projects
from services.gateway.dialects.requests import body, project_id, uuid_param
from shared.errors import LoupeError, invalid

# Hasty projects hold any shape; `vector` is the native task type that says so.
TASK_TYPE: catalog.TaskType = "vector"
CONTENT_TYPES = {"IMAGES": "image"}


class ProjectBody(msgspec.Struct, kw_only=True):
    name: str
    workspace_id: str | None = None
    description: str | None = None
    content_type: str = "IMAGES"


class DatasetBody(msgspec.Struct, kw_only=True):
    name: str
    norder: float | None = None  # accepted, not kept: datasets are listed oldest first


# -- workspaces -------------------------------------------------------------------------------------


async def caller_org(request: web.Request) -> str:
    me: catalog.Me = await ask(request, subjects.GET_ME, Empty())
    return me.org_id


def workspace_json(org_id: str) -> dict[str, Any]:
    return {
        "id": org_id,
        "name": f"organisation {org_id}",
        "unique_name": org_id,
        "is_default": True,
        "is_public": False,
        "user_role": "Member",
    }


async def list_workspaces(request: web.Request) -> web.Response:
    return page_of(request, [workspace_json(await caller_org(request))])


async def get_workspace(request: web.Request) -> web.Response:
    return json(workspace_json(await own_workspace(request, uuid_param(request, "workspace_id"), "workspace_id")))


async def own_workspace(request: web.Request, workspace_id: str, path: str) -> str:
    """The caller's organisation, which must be the workspace named; no other is visible."""
    org_id = await caller_org(request)
    if workspace_id != org_id:
        raise LoupeError("not_found", f"workspace {workspace_id!r} is not yours; yours is {org_id}", path=path)
    return org_id


# -- projects ---------------------------------------------------------------------------------------


def project_json(project: catalog.Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "workspace_id": project.org_id,
        "owner_id": None,
        "content_type": "IMAGES",
        "created_on": timestamp(project.created_at),
        "last_opened_on": timestamp(project.updated_at),
    }


async def list_projects(request: web.Request) -> web.Response:
    name = request.query.get("name", "").lower()
    projects = [p for p in await visible_projects(request) if name in p.name.lower()]
    return page_of(request, [project_json(p) for p in projects])


def content_type(value: str) -> catalog.ContentType:
    if value == "VIDEOS":
        raise LoupeError("invalid", "Loupe has no video projects yet: create an IMAGES project", path="content_type")
    if value not in CONTENT_TYPES:
        raise invalid(f"content_type {value!r} is not one of IMAGES, VIDEOS", path="content_type")
    return "image"


async def create_project(request: web.Request) -> web.Response:
    new = await body(request, ProjectBody)
    if new.workspace_id is not None:
        await own_workspace(request, new.workspace_id, "workspace_id")
    project = await ask(
        request,
        subjects.CREATE_PROJECT,
        catalog.CreateProject(
            name=new.name,
            description=new.description or "",
            task_type=TASK_TYPE,
            content_type=content_type(new.content_type),
        ),
    )
    return json(project_json(project), status=201)


async def get_project(request: web.Request) -> web.Response:
    pid = project_id(request)
    return json(
        project_json(
            await ask(request, subjects.GET_PROJECT, catalog.ProjectRef(id=pid), project_id=pid, role="viewer")
        )
    )


async def update_project(request: web.Request) -> web.Response:
    pid = project_id(request)
    changes = await body(request, ProjectBody)
    project = await ask(
        request,
        subjects.UPDATE_PROJECT,
        catalog.UpdateProjectRequest(
            id=pid, changes=catalog.UpdateProject(name=changes.name, description=changes.description or "")
        ),
        project_id=pid,
        role="manager",
    )
    return json(project_json(project))


async def delete_project(request: web.Request) -> web.Response:
    pid = project_id(request)
    await ask(request, subjects.DELETE_PROJECT, catalog.ProjectRef(id=pid), project_id=pid, role="admin")
    return no_content()


# -- datasets ---------------------------------------------------------------------------------------


def dataset_json(dataset: samples.Dataset) -> dict[str, Any]:
    return {"id": dataset.id, "name": dataset.name, "norder": 0, "project_id": dataset.project_id}


async def all_datasets(request: web.Request, pid: str) -> list[samples.Dataset]:
    return await ask_all(
        request,
        subjects.LIST_DATASETS,
        lambda cursor: samples.ListDatasetsRequest(project_id=pid, page=samples.ListDatasets(limit=500, cursor=cursor)),
        project_id=pid,
        role="viewer",
    )


async def list_datasets(request: web.Request) -> web.Response:
    name = request.query.get("name", "").lower()
    datasets = [d for d in await all_datasets(request, project_id(request)) if name in d.name.lower()]
    return page_of(request, [dataset_json(d) for d in datasets])


async def create_dataset(request: web.Request) -> web.Response:
    pid = project_id(request)
    new = await body(request, DatasetBody)
    dataset = await ask(
        request,
        subjects.CREATE_DATASET,
        samples.CreateDatasetRequest(project_id=pid, dataset=samples.CreateDataset(name=new.name)),
        project_id=pid,
        role="manager",
    )
    return json(dataset_json(dataset), status=201)


def dataset_ref(request: web.Request) -> samples.DatasetRef:
    return samples.DatasetRef(project_id=project_id(request), dataset_id=uuid_param(request, "dataset_id"))


async def get_dataset(request: web.Request) -> web.Response:
    ref = dataset_ref(request)
    return json(dataset_json(await ask(request, subjects.GET_DATASET, ref, project_id=ref.project_id, role="viewer")))


async def update_dataset(request: web.Request) -> web.Response:
    ref = dataset_ref(request)
    changes = await body(request, DatasetBody)
    dataset = await ask(
        request,
        subjects.UPDATE_DATASET,
        samples.UpdateDatasetRequest(
            project_id=ref.project_id, dataset_id=ref.dataset_id, changes=samples.UpdateDataset(name=changes.name)
        ),
        project_id=ref.project_id,
        role="manager",
    )
    return json(dataset_json(dataset))


async def delete_dataset(request: web.Request) -> web.Response:
    ref = dataset_ref(request)
    await ask(request, subjects.DELETE_DATASET, ref, project_id=ref.project_id, role="manager")
    return no_content()


ROUTES: Routes = [
    ("GET", "/v1/workspaces", list_workspaces),
    ("GET", "/v1/workspaces/{workspace_id}", get_workspace),
    ("GET", "/v1/projects", list_projects),
    ("POST", "/v1/projects", create_project),
    ("GET", PROJECT, get_project),
    ("PUT", PROJECT, update_project),
    ("PATCH", PROJECT, update_project),
    ("DELETE", PROJECT, delete_project),
    ("GET", PROJECT + "/datasets", list_datasets),
    ("POST", PROJECT + "/datasets", create_dataset),
    ("GET", PROJECT + "/datasets/{dataset_id}", get_dataset),
    ("PUT", PROJECT + "/datasets/{dataset_id}", update_dataset),
    ("DELETE", PROJECT + "/datasets/{dataset_id}", delete_dataset),
]
