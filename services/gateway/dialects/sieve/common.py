"""What the Sieve dialect's parts share: bodies, answers, and finding a Sieve project, its datasets and tags
among Loupe's own (a Sieve project is a Loupe project of that name; nothing is kept here)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from proto import subjects
from proto.catalog import Project
from proto.samples import CreateDataset, CreateDatasetRequest, ListDatasets, ListDatasetsRequest
from proto.schema import ListSchemaItems, TagGroup
from services.gateway.dialects import native, requests
from services.gateway.dialects.native import ask, ask_all
from shared.errors import LoupeError

__all__ = ["ask", "ask_all"]

ProjectName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# Images pushed with `train: true` are training data; the others wait in `tag` to be tagged.
TRAIN_DATASET = "train"
TAG_DATASET = "tag"


class ProjectBody(msgspec.Struct, frozen=True, kw_only=True):
    project_name: ProjectName


def answer(data: dict[str, Any]) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), content_type="application/json")


def successful(**data: Any) -> web.Response:
    return answer({"description": "successful", **data})


async def body(request: web.Request, kind: type) -> Any:
    """The request's JSON as `kind`; a mismatch is a 400 naming the field."""
    return await requests.body(request, kind, missing="send a JSON body with `project_name`")


async def project_named(request: web.Request, name: str) -> Project:
    project = await native.project_named(request, name)
    if project is None:
        raise LoupeError(
            "not_found", f"no project is called {name!r}: create it with init_project", path="project_name"
        )
    return project


async def dataset_id(request: web.Request, project_id: str, name: str) -> str:
    """The project's dataset `name`, made on first use (a project made natively has none of Sieve's)."""
    datasets = await ask_all(
        request,
        subjects.LIST_DATASETS,
        lambda cursor: ListDatasetsRequest(project_id=project_id, page=ListDatasets(limit=200, cursor=cursor)),
        project_id=project_id,
        role="viewer",
    )
    for dataset in datasets:
        if dataset.name.lower() == name:
            return str(dataset.id)
    made = await ask(
        request,
        subjects.CREATE_DATASET,
        CreateDatasetRequest(project_id=project_id, dataset=CreateDataset(name=name)),
        project_id=project_id,
        role="manager",
    )
    return str(made.id)


async def tag_groups(request: web.Request, project_id: str) -> list[TagGroup]:
    """The project's active tag groups (Sieve's tags), each with its active tag classes (the values)."""
    found = await ask(
        request, subjects.TAG_GROUP.list, ListSchemaItems(project_id=project_id), project_id=project_id, role="viewer"
    )
    return list(found.items)
