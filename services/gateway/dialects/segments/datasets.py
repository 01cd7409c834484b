"""Segments datasets (Loupe projects), their collaborators (project members), labelsets and users."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
from aiohttp import web

from proto import subjects
from proto.annotation import (
    MAX_LABELS,
    CreateLabelset,
    CreateLabelsetRequest,
    GetLabels,
    GetLabelsRequest,
    Label,
    LabelInput,
    LabelItem,
    LabelsetRef,
    LabelStatus,
    ObjectInput,
    ProjectLabelsets,
    PutLabels,
    PutLabelsRequest,
)
from proto.catalog import (
    CreateProject,
    Me,
    MemberRef,
    Project,
    ProjectRef,
    Role,
    SetMember,
    SetMemberRequest,
    TaskType,
    UpdateProject,
    UpdateProjectRequest,
)
from proto.samples import MAX_ITEMS, CreateSamples, CreateSamplesRequest, NewSample, Sample
from proto.schema import (
    CreateLabelClass,
    CreateSchemaItem,
    GetSchema,
    LabelClass,
    ListSchemaItems,
    UpdateLabelClass,
    UpdateSchemaItem,
)
from proto.search import CountSamples, LabelFilter, SampleFilter, SearchQuery, SearchSamples
from services.gateway.dialects.native import ask, ask_all, visible_projects
from services.gateway.dialects.segments.common import (
    PAGE,
    body_of,
    check_owner,
    dataset,
    iso,
    me,
    named,
    org_json,
    page_slice,
    reply,
    segments_settings,
    user_json,
    user_named,
)
from services.gateway.dialects.segments.labels import Schema, status_steps
from services.gateway.dialects.segments.samples import default_dataset
from shared.errors import LoupeError

TASK_TYPES: tuple[TaskType, ...] = ("bboxes", "vector", "segmentation-bitmap", "keypoints")
STATUSES: tuple[LabelStatus, ...] = (
    "REVIEWED",
    "REVIEWING_IN_PROGRESS",
    "LABELED",
    "LABELING_IN_PROGRESS",
    "REJECTED",
    "PRELABELED",
    "SKIPPED",
    "VERIFIED",
    "UNLABELED",
)
SEGMENTS_ROLES: tuple[Role, ...] = ("labeler", "reviewer", "manager", "admin")
# The editor's switches and other settings Loupe keeps for the SDK without acting on them.
FLAGS = {
    "enable_ratings": False,
    "enable_skip_labeling": True,
    "enable_skip_reviewing": False,
    "enable_save_button": False,
    "enable_label_status_verified": False,
    "enable_same_dimensions_track_constraint": False,
    "enable_3d_region_of_interest": False,
    "enable_3d_cuboid_rotation": False,
    "enable_confirm_on_submit": False,
    "enable_interpolation": True,
    "use_timestamps_for_interpolation": False,
    "enable_object_linking": False,
    "enable_object_link_category_restrictions": False,
    "enable_extrapolation": False,
}
KEPT = ("category", "readme", "archived", "metadata", "labeling_inactivity_timeout_seconds", *FLAGS)


class Category(msgspec.Struct, kw_only=True):
    id: int
    name: str
    color: list[int] | None = None


class TaskAttributes(msgspec.Struct, kw_only=True):
    categories: list[Category] = []


class DatasetBody(msgspec.Struct, kw_only=True):
    """POST /user/datasets/ and PATCH /datasets/{owner}/{name}/ (fields left out stay as they are)."""

    name: str | None = None
    description: str | None = None
    task_type: str | None = None
    task_attributes: TaskAttributes | None = None
    public: bool | None = None
    category: str | None = None
    readme: str | None = None
    archived: bool | None = None
    metadata: dict[str, Any] | None = None
    labeling_inactivity_timeout_seconds: int | None = None
    enable_ratings: bool | None = None
    enable_skip_labeling: bool | None = None
    enable_skip_reviewing: bool | None = None
    enable_save_button: bool | None = None
    enable_label_status_verified: bool | None = None
    enable_same_dimensions_track_constraint: bool | None = None
    enable_3d_region_of_interest: bool | None = None
    enable_3d_cuboid_rotation: bool | None = None
    enable_confirm_on_submit: bool | None = None
    enable_interpolation: bool | None = None
    use_timestamps_for_interpolation: bool | None = None
    enable_object_linking: bool | None = None
    enable_object_link_category_restrictions: bool | None = None
    enable_extrapolation: bool | None = None


def task_type_of(value: str) -> TaskType:
    if value not in TASK_TYPES:
        raise LoupeError(
            "invalid",
            f"task_type {value!r} is not supported here; Loupe labels images as {', '.join(TASK_TYPES)}",
            path="task_type",
        )
    return value


def settings_of(body: DatasetBody, kept: dict[str, Any]) -> dict[str, Any]:
    changed = {name: getattr(body, name) for name in KEPT if getattr(body, name) is not None}
    return {**kept, **changed}


async def dataset_json(request: web.Request, caller: Me, project: Project, full: bool) -> dict[str, Any]:
    """The SDK's Dataset; `full` adds what costs more calls (counts, categories, labelsets)."""
    kept = segments_settings(project)
    owner = caller.org_name
    body: dict[str, Any] = {
        "name": project.name,
        "full_name": f"{owner}/{project.name}",
        "cloned_from": kept.get("cloned_from"),
        "description": project.description,
        "data_type": "IMAGE",
        "category": kept.get("category", "other"),
        "public": project.public,
        "archived": kept.get("archived", False),
        "owner": {"username": owner, "created_at": iso(caller.org_created_at)},
        "created_at": iso(project.created_at),
        "task_type": project.task_type if project.task_type in TASK_TYPES else "",
        "label_stats": {},
        "readme": kept.get("readme", ""),
        "metadata": kept.get("metadata", {}),
        "labeling_inactivity_timeout_seconds": kept.get("labeling_inactivity_timeout_seconds", 300),
        "role": project.role,
        **{flag: kept.get(flag, default) for flag, default in FLAGS.items()},
    }
    if full:
        schema, labelsets, counts, members = await asyncio.gather(
            ask(request, subjects.GET_LABEL_SCHEMA, GetSchema(project_id=project.id)),
            ask(request, subjects.LIST_LABELSETS, ProjectLabelsets(project_id=project.id)),
            label_stats(request, project.id),
            ask(request, subjects.LIST_MEMBERS, ProjectRef(id=project.id)),
        )
        body["task_attributes"] = {"format_version": "0.1", "categories": Schema(schema).categories()}
        body["labelsets"] = [labelset_json(item) for item in labelsets.items]
        body["label_stats"] = counts
        body["samples_count"] = counts["TOTAL"]
        body["collaborators_count"] = len(members.items)
    return body


async def label_stats(request: web.Request, project_id: str) -> dict[str, int]:
    filters = [SampleFilter(labels=LabelFilter(status=[status])) for status in STATUSES] + [SampleFilter()]
    counts = await asyncio.gather(
        *(ask(request, subjects.COUNT_SAMPLES, CountSamples(project_id=project_id, filter=f)) for f in filters)
    )
    return dict(zip((*STATUSES, "TOTAL"), (c.count for c in counts), strict=True))


def labelset_json(labelset: Any) -> dict[str, Any]:
    return {
        "name": labelset.name,
        "description": labelset.description,
        "is_groundtruth": labelset.is_ground_truth,
        "created_at": iso(labelset.created_at),
    }


# -- users ----------------------------------------------------------------------------------------


async def get_me(request: web.Request) -> web.Response:
    caller = await me(request)
    return reply(user_json(caller.user) if caller.user else org_json(caller))


async def get_user(request: web.Request) -> web.Response:
    caller = await me(request)
    username = request.match_info["user"]
    if username.lower() == caller.org_name.lower():
        return reply(org_json(caller))
    return reply(user_json(await user_named(request, username)))


# -- datasets -------------------------------------------------------------------------------------


async def list_datasets(request: web.Request) -> web.Response:
    caller = await me(request)
    owner = request.match_info.get("owner")
    if owner is not None:
        check_owner(caller, owner)
    projects = page_slice(request, await visible_projects(request))
    return reply([await dataset_json(request, caller, project, full=False) for project in projects])


async def create_dataset(request: web.Request) -> web.Response:
    caller = await me(request)
    if "owner" in request.match_info:
        check_owner(caller, request.match_info["owner"])
    body = await body_of(request, DatasetBody)
    project = await new_project(
        request,
        caller,
        body.name,
        body.description or "",
        body.task_type or "segmentation-bitmap",
        bool(body.public),
        settings_of(body, {}),
    )
    categories = body.task_attributes.categories if body.task_attributes else [Category(id=1, name="object")]
    await put_categories(request, project.id, categories)
    return reply(await dataset_json(request, caller, project, full=True), status=201)


async def new_project(
    request: web.Request,
    caller: Me,
    name: str | None,
    description: str,
    task_type: str,
    public: bool,
    kept: dict[str, Any],
) -> Project:
    if not name or "/" in name:
        raise LoupeError("invalid", "name is required and may not hold a `/`", path="name")
    create = CreateProject(
        name=name,
        description=description,
        task_type=task_type_of(task_type),
        public=public,
        metadata={"segments": kept},
    )
    with named(f"dataset {caller.org_name}/{name}"):
        return await ask(request, subjects.CREATE_PROJECT, create)


class CloneBody(msgspec.Struct, kw_only=True):
    name: str
    task_type: str | None = None
    public: bool | None = None
    owner: str | None = None
    clone_labels: bool = False


async def clone_dataset(request: web.Request) -> web.Response:
    """A new dataset with the source's categories and samples (the same images, not copies), and with
    `clone_labels` its labels in every labelset."""
    caller, source = await dataset(request)
    body = await body_of(request, CloneBody)
    if body.owner is not None:
        check_owner(caller, body.owner)
    kept = {**segments_settings(source), "cloned_from": f"{caller.org_name}/{source.name}"}
    public = source.public if body.public is None else body.public
    project = await new_project(
        request, caller, body.name, source.description, body.task_type or source.task_type, public, kept
    )
    schema = await ask(request, subjects.GET_LABEL_SCHEMA, GetSchema(project_id=source.id))
    classes = [c for c in schema.label_classes if not c.archived]
    await put_categories(request, project.id, [Category(id=c.order, name=c.name, color=_rgb(c.color)) for c in classes])
    created = await clone_samples(request, source.id, project)
    if body.clone_labels and created:
        await clone_labels(request, source.id, project.id, created, classes)
    return reply(await dataset_json(request, caller, project, full=True), status=201)


async def clone_samples(request: web.Request, source_id: str, project: Project) -> dict[str, str]:
    """The source's samples made again in the new project; new sample id by old."""
    olds = await all_samples(request, source_id)
    if not olds:
        return {}
    dataset_id = await default_dataset(request, project)
    made: dict[str, str] = {}
    for start in range(0, len(olds), MAX_ITEMS):
        chunk = olds[start : start + MAX_ITEMS]
        items = [
            NewSample(
                content_hash=old.content_hash,
                media_url=old.media_url,
                name=old.name,
                width=old.width,
                height=old.height,
                format=old.format,  # type: ignore[arg-type]
                size=old.size_bytes,
                external_id=old.external_id,
                metadata=old.metadata,
                priority=old.priority,
            )
            for old in chunk
        ]
        created = await ask(
            request,
            subjects.CREATE_SAMPLES,
            CreateSamplesRequest(project_id=project.id, dataset_id=dataset_id, body=CreateSamples(items=items)),
            project_id=project.id,
            role="manager",
        )
        made.update((old.id, new.id) for old, new in zip(chunk, created.items, strict=True))
    return made


async def all_samples(request: web.Request, project_id: str) -> list[Sample]:
    return await ask_all(
        request,
        subjects.SEARCH_SAMPLES,
        lambda cursor: SearchSamples(
            project_id=project_id, query=SearchQuery(sort="created_at", limit=PAGE, cursor=cursor)
        ),
    )


async def clone_labels(
    request: web.Request, source_id: str, project_id: str, made: dict[str, str], classes: list[LabelClass]
) -> None:
    """Every labelset's labels, object by object, onto the cloned samples; classes are matched by name."""
    current = await ask(request, subjects.LABEL_CLASS.list, ListSchemaItems(project_id=project_id))
    by_name = {item.name.lower(): item.id for item in current.items}
    class_ids = {c.id: by_name[c.name.lower()] for c in classes if c.name.lower() in by_name}
    labelsets = await ask(request, subjects.LIST_LABELSETS, ProjectLabelsets(project_id=source_id))
    olds = list(made)
    for labelset in labelsets.items:
        if not labelset.is_ground_truth:
            create = CreateLabelset(name=labelset.name, description=labelset.description)
            await ask(request, subjects.CREATE_LABELSET, CreateLabelsetRequest(project_id=project_id, labelset=create))
        for start in range(0, len(olds), MAX_LABELS):
            ids = [uuid.UUID(old) for old in olds[start : start + MAX_LABELS]]
            read = GetLabelsRequest(project_id=source_id, labelset=labelset.name, body=GetLabels(sample_ids=ids))
            labels = [label for label in (await ask(request, subjects.GET_LABELS, read)).items if label.version]
            await write_labels(request, project_id, labelset.name, made, labels, class_ids)


async def write_labels(
    request: web.Request,
    project_id: str,
    labelset: str,
    made: dict[str, str],
    labels: list[Label],
    class_ids: dict[str, str],
) -> None:
    """The labels written onto their clones, each in as many rounds as its status takes steps."""
    steps = {label.sample_id: status_steps("UNLABELED", label.status) for label in labels}
    for step in range(max((len(s) for s in steps.values()), default=0)):
        items = [
            LabelItem(
                sample_id=uuid.UUID(made[label.sample_id]),
                label=copied(label, class_ids, steps[label.sample_id][step]),
            )
            for label in labels
            if step < len(steps[label.sample_id])
        ]
        write = PutLabelsRequest(project_id=project_id, labelset=labelset, body=PutLabels(items=items))
        written = await ask(request, subjects.PUT_LABELS, write, project_id=project_id, role="labeler")
        for index, result in enumerate(written.items):
            if result.outcome != "written":
                raise LoupeError("conflict", f"a label could not be cloned: {result.error}", path=f"[{index}]")


def copied(label: Label, class_ids: dict[str, str], status: LabelStatus) -> LabelInput:
    """A label as input for another project: its objects' classes by `class_ids`; attribute values, tags and
    objects of archived classes stay behind (the clone has the categories only)."""
    return LabelInput(
        status=status,
        score=label.score,
        objects=[
            ObjectInput(
                class_id=uuid.UUID(class_ids[obj.class_id]),
                shape=obj.shape,
                z_index=obj.z_index,
                confidence=obj.confidence,
                external_id=obj.external_id,
            )
            for obj in label.objects
            if obj.class_id in class_ids
        ],
    )


def _rgb(color: str) -> list[int]:
    return [int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)]


async def put_categories(request: web.Request, project_id: str, categories: list[Category]) -> None:
    """One active label class per category, its `order` the category id; matched by name."""
    current = await ask(request, subjects.LABEL_CLASS.list, ListSchemaItems(project_id=project_id))
    by_name = {item.name.lower(): item for item in current.items}
    for index, category in enumerate(categories):
        color = "#{:02x}{:02x}{:02x}".format(*category.color[:3]) if category.color else None
        existing = by_name.get(category.name.lower())
        try:
            if existing is None:
                item = CreateLabelClass(name=category.name, order=category.id, color=color)
                await ask(request, subjects.LABEL_CLASS.create, CreateSchemaItem(project_id=project_id, item=item))
            elif existing.order != category.id or (color and existing.color != color):
                changes = UpdateLabelClass(order=category.id, color=color or existing.color)
                await ask(
                    request,
                    subjects.LABEL_CLASS.update,
                    UpdateSchemaItem(project_id=project_id, id=existing.id, changes=changes),
                )
        except LoupeError as exc:
            raise LoupeError(exc.code, exc.message, path=f"task_attributes.categories[{index}]") from None


async def get_dataset(request: web.Request) -> web.Response:
    caller, project = await dataset(request)
    return reply(await dataset_json(request, caller, project, full=True))


async def update_dataset(request: web.Request) -> web.Response:
    caller, project = await dataset(request, "manager")
    body = await body_of(request, DatasetBody)
    if body.task_type is not None and task_type_of(body.task_type) != project.task_type:
        raise LoupeError("invalid", "a dataset's task_type cannot change; clone it with the new one", path="task_type")
    changes = UpdateProject(
        description=body.description,
        public=body.public,
        metadata={**project.metadata, "segments": settings_of(body, segments_settings(project))},
    )
    project = await ask(
        request,
        subjects.UPDATE_PROJECT,
        UpdateProjectRequest(id=project.id, changes=changes),
        project_id=project.id,
        role="manager",
    )
    if body.task_attributes is not None:
        await put_categories(request, project.id, body.task_attributes.categories)
    return reply(await dataset_json(request, caller, project, full=True))


async def delete_dataset(request: web.Request) -> web.Response:
    _, project = await dataset(request, "admin")
    await ask(request, subjects.DELETE_PROJECT, ProjectRef(id=project.id), project_id=project.id, role="admin")
    return web.Response(status=204)


# -- collaborators --------------------------------------------------------------------------------


class CollaboratorBody(msgspec.Struct, kw_only=True):
    user: str | None = None
    role: str = "labeler"


def role_of(value: str) -> Role:
    if value not in SEGMENTS_ROLES:
        raise LoupeError("invalid", f"role must be one of {', '.join(SEGMENTS_ROLES)}", path="role")
    return value


async def collaborator_reply(request: web.Request, project: Project, username: str, status: int = 200) -> web.Response:
    user = await user_named(request, username)
    members = await ask(request, subjects.LIST_MEMBERS, ProjectRef(id=project.id))
    for member in members.items:
        if member.user_id == user.id and member.role in SEGMENTS_ROLES:
            return reply({"user": user_json(user), "role": member.role}, status=status)
    raise LoupeError("not_found", f"{username} is not a collaborator of dataset {project.name}", path="user")


async def get_collaborator(request: web.Request) -> web.Response:
    _, project = await dataset(request)
    return await collaborator_reply(request, project, request.match_info["user"])


async def set_collaborator(request: web.Request) -> web.Response:
    _, project = await dataset(request, "admin")
    body = await body_of(request, CollaboratorBody)
    username = request.match_info.get("user") or body.user
    if not username:
        raise LoupeError("invalid", "user is required: the username of the collaborator", path="user")
    user = await user_named(request, username)
    member = SetMemberRequest(project_id=project.id, user_id=user.id, member=SetMember(role=role_of(body.role)))
    await ask(request, subjects.SET_MEMBER, member, project_id=project.id, role="admin")
    return await collaborator_reply(request, project, username, status=201 if request.method == "POST" else 200)


async def delete_collaborator(request: web.Request) -> web.Response:
    _, project = await dataset(request, "admin")
    user = await user_named(request, request.match_info["user"])
    await ask(
        request,
        subjects.REMOVE_MEMBER,
        MemberRef(project_id=project.id, user_id=user.id),
        project_id=project.id,
        role="admin",
    )
    return web.Response(status=204)


# -- labelsets ------------------------------------------------------------------------------------


class LabelsetBody(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""


async def list_labelsets(request: web.Request) -> web.Response:
    _, project = await dataset(request)
    found = await ask(request, subjects.LIST_LABELSETS, ProjectLabelsets(project_id=project.id))
    return reply([labelset_json(item) for item in found.items])


async def get_labelset(request: web.Request) -> web.Response:
    _, project = await dataset(request)
    ref = LabelsetRef(project_id=project.id, labelset=request.match_info["labelset"])
    return reply(labelset_json(await ask(request, subjects.GET_LABELSET, ref)))


async def create_labelset(request: web.Request) -> web.Response:
    _, project = await dataset(request, "manager")
    body = await body_of(request, LabelsetBody)
    with named(f"labelset {body.name!r}"):
        made = await ask(
            request,
            subjects.CREATE_LABELSET,
            CreateLabelsetRequest(
                project_id=project.id, labelset=CreateLabelset(name=body.name, description=body.description)
            ),
            project_id=project.id,
            role="manager",
        )
    return reply(labelset_json(made), status=201)


async def delete_labelset(request: web.Request) -> web.Response:
    _, project = await dataset(request, "manager")
    ref = LabelsetRef(project_id=project.id, labelset=request.match_info["labelset"])
    await ask(request, subjects.DELETE_LABELSET, ref, project_id=project.id, role="manager")
    return web.Response(status=204)
