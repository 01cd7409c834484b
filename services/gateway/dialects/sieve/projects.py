"""Sieve projects and their metadata tags: a project is a Loupe classification project, a tag is a tag group
of its schema (its values the group's tag classes), and a tag's status is the native tag status."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from proto import subjects
from proto.catalog import CreateProject
from proto.inference import TaggingScope
from proto.schema import CreateSchemaItem, CreateTagGroup, SchemaItemRef
from services.gateway.dialects.native import visible_projects
from services.gateway.dialects.sieve.common import (
    TAG_DATASET,
    TRAIN_DATASET,
    ProjectBody,
    ProjectName,
    answer,
    ask,
    body,
    dataset_id,
    project_named,
    successful,
    tag_groups,
)
from shared.errors import invalid

TagName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class NewTag(msgspec.Struct, frozen=True, kw_only=True):
    name: TagName
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class AddTags(msgspec.Struct, frozen=True, kw_only=True):
    project_name: ProjectName
    tags: Annotated[list[NewTag], msgspec.Meta(min_length=1, max_length=100)]


class DeleteTags(msgspec.Struct, frozen=True, kw_only=True):
    project_name: ProjectName
    tags: Annotated[list[TagName], msgspec.Meta(min_length=1, max_length=100)]


async def init_project(request: web.Request) -> web.Response:
    new = await body(request, ProjectBody)
    project = await ask(
        request, subjects.CREATE_PROJECT, CreateProject(name=new.project_name, task_type="classification")
    )
    for name in (TRAIN_DATASET, TAG_DATASET):
        await dataset_id(request, project.id, name)
    return answer({"description": f"Created project {project.name}", "project_id": project.id})


async def get_projects(request: web.Request) -> web.Response:
    projects = await visible_projects(request)
    return successful(projects=[project.name for project in projects])


async def add_tags(request: web.Request) -> web.Response:
    """Tags not in the project yet become tag groups; a tag it has already is left as it is."""
    new = await body(request, AddTags)
    project = await project_named(request, new.project_name)
    have = {group.name.lower() for group in await tag_groups(request, project.id)}
    for tag in new.tags:
        if tag.name.lower() not in have:
            have.add(tag.name.lower())
            item = CreateTagGroup(name=tag.name, description=tag.description)
            await ask(
                request,
                subjects.TAG_GROUP.create,
                CreateSchemaItem(project_id=project.id, item=item),
                project_id=project.id,
                role="manager",
            )
    return answer({"description": "pushed tags"})


async def delete_tags(request: web.Request) -> web.Response:
    """The tags' groups are archived: labels keep their values, new labels and taggers no longer use them."""
    old = await body(request, DeleteTags)
    project = await project_named(request, old.project_name)
    groups = {group.name.lower(): group for group in await tag_groups(request, project.id)}
    for index, name in enumerate(old.tags):
        if name.lower() not in groups:
            raise invalid(f"the project has no tag {name!r}", path=f"tags[{index}]")
    deleted = [groups[name.lower()] for name in dict.fromkeys(old.tags)]
    for group in deleted:
        await ask(
            request,
            subjects.TAG_GROUP.delete,
            SchemaItemRef(project_id=project.id, id=group.id),
            project_id=project.id,
            role="manager",
        )
    return successful(tags=[{"name": group.name, "description": group.description} for group in deleted])


async def get_tag_status(request: web.Request) -> web.Response:
    project = await project_named(request, (await body(request, ProjectBody)).project_name)
    statuses = await ask(
        request, subjects.TAG_STATUS, TaggingScope(project_id=project.id), project_id=project.id, role="viewer"
    )
    return successful(tag_status=[{"name": item.group, "status": item.status} for item in statuses.items])
