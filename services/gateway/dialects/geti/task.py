"""A Geti project's task and labels, read from and written to the native project and its label schema.

Geti's task types map onto native task types one to one. The labels of a classification task are the tags of
the project's first tag group (SINGLE selection: exclusive labels, MULTIPLE: multi-label), as native
classification training reads them; the labels of every other task are the project's active label classes.
A label's hotkey, which Loupe has no field for, is kept in the class's `extra`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET

from proto import catalog, schema, subjects
from proto.catalog import TaskType
from services.gateway.dialects.native import ask
from shared.errors import LoupeError, invalid

GetiTaskType = Literal["classification", "detection", "instance_segmentation", "segmentation", "keypoint_detection"]
NATIVE_TASK: dict[str, TaskType] = {
    "classification": "classification",
    "detection": "bboxes",
    "instance_segmentation": "vector",
    "segmentation": "segmentation-bitmap",
    "keypoint_detection": "keypoints",
}
GETI_TASK: dict[str, str] = {native: geti for geti, native in NATIVE_TASK.items()}
# The native training family that learns each task (keypoints: none yet).
FAMILY = {
    "classification": "classification",
    "detection": "detection",
    "instance_segmentation": "segmentation",
    "segmentation": "segmentation",
}
CLASSIFICATION_GROUP = "labels"  # the tag group a classification project made here keeps its labels in
Hotkey = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]


class NewLabel(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: schema.ItemName
    color: schema.Color | None = None
    hotkey: Hotkey | None = None


class Label(msgspec.Struct, kw_only=True):
    id: str
    name: str
    color: str
    hotkey: str | None


class Task(msgspec.Struct, kw_only=True):
    task_type: str
    exclusive_labels: bool
    labels: list[Label]
    group_id: str | None  # classification: the tag group whose tags are the labels


def extra(hotkey: str | None) -> dict[str, Any]:
    return {"hotkey": hotkey} if hotkey else {}


def task_of(native_task_type: str, label_schema: schema.LabelSchema) -> Task:
    task_type = GETI_TASK[native_task_type]
    if task_type == "classification":
        groups = [group for group in label_schema.tag_groups if not group.archived]
        if not groups:
            return Task(task_type=task_type, exclusive_labels=True, labels=[], group_id=None)
        group = groups[0]
        labels = [
            Label(id=tag.id, name=tag.name, color=tag.color, hotkey=tag.extra.get("hotkey"))
            for tag in group.tags
            if not tag.archived
        ]
        return Task(task_type=task_type, exclusive_labels=group.selection == "SINGLE", labels=labels, group_id=group.id)
    labels = [
        Label(id=item.id, name=item.name, color=item.color, hotkey=item.extra.get("hotkey"))
        for item in label_schema.label_classes
        if not item.archived
    ]
    return Task(task_type=task_type, exclusive_labels=True, labels=labels, group_id=None)


async def project_task(request: web.Request, project: catalog.Project) -> Task:
    label_schema = await ask(request, subjects.GET_LABEL_SCHEMA, schema.GetSchema(project_id=project.id))
    return task_of(project.task_type, label_schema)


def task_json(task: Task) -> dict[str, Any]:
    return {
        "task_type": task.task_type,
        "exclusive_labels": task.exclusive_labels,
        "labels": [msgspec.structs.asdict(label) for label in task.labels],
    }


def first_schema(task_type: str, exclusive: bool, labels: list[NewLabel]) -> schema.SchemaDocument:
    """The label schema of a new project: its labels as label classes, or as the tags of one tag group."""
    if task_type == "classification":
        tags = [schema.TagClassSpec(name=label.name, color=label.color, extra=extra(label.hotkey)) for label in labels]
        group = schema.TagGroupSpec(
            name=CLASSIFICATION_GROUP, selection="SINGLE" if exclusive else "MULTIPLE", tags=tags
        )
        return schema.SchemaDocument(tag_groups=[group])
    classes = [schema.LabelClassSpec(name=label.name, color=label.color, extra=extra(label.hotkey)) for label in labels]
    return schema.SchemaDocument(label_classes=classes)


def label_path(path: str | None) -> str | None:
    """A schema document's field path as the Geti body's: `$.label_classes[1].name` is `$.task.labels[1].name`."""
    if not path:
        return path
    for native in ("$.label_classes", "$.tag_groups[0].tags"):
        if path.startswith(native):
            return "$.task.labels" + path[len(native) :]
    return path


# -- editing labels ---------------------------------------------------------------------------------


class LabelEdit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: schema.ItemName | None = None
    color: schema.Color | None = None
    hotkey: Hotkey | None = None


class LabelRemoval(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str


class PatchLabels(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    labels_to_add: list[NewLabel] = []
    labels_to_edit: list[LabelEdit] = []
    labels_to_remove: list[LabelRemoval] = []


def known_label(task: Task, label_id: str, path: str) -> Label:
    for label in task.labels:
        if label.id == label_id:
            return label
    raise LoupeError("not_found", f"label {label_id!r} is not a label of this project", path=path)


async def patch_labels(request: web.Request, project_id: str, task: Task, patch: PatchLabels) -> None:
    """Removes, then edits, then adds, so that a label may take the name of one removed in the same call."""
    for index, removal in enumerate(patch.labels_to_remove):
        known_label(task, removal.id, f"$.labels_to_remove[{index}].id")
    for index, edit in enumerate(patch.labels_to_edit):
        known_label(task, edit.id, f"$.labels_to_edit[{index}].id")
    if patch.labels_to_remove and len(task.labels) - len(patch.labels_to_remove) + len(patch.labels_to_add) < 1:
        raise LoupeError("conflict", "a project keeps at least one label", path="$.labels_to_remove")
    kind = subjects.TAG_CLASS if task.task_type == "classification" else subjects.LABEL_CLASS
    if task.task_type == "classification" and task.group_id is None:
        raise invalid("the project has no tag group to hold classification labels; add one first", path="$")
    for removal in patch.labels_to_remove:
        await ask(request, kind.delete, schema.SchemaItemRef(project_id=project_id, id=removal.id))
    for edit in patch.labels_to_edit:
        changes: dict[str, Any] = {
            "name": edit.name if edit.name is not None else UNSET,
            "color": edit.color if edit.color is not None else UNSET,
        }
        if edit.hotkey is not None:  # kept beside what else the class's `extra` holds (other dialects' fields)
            current = await ask(request, kind.get, schema.SchemaItemRef(project_id=project_id, id=edit.id))
            changes["extra"] = {**current.extra, "hotkey": edit.hotkey}
        update = schema.UpdateTagClass if kind is subjects.TAG_CLASS else schema.UpdateLabelClass
        if any(value is not UNSET for value in changes.values()):
            await ask(
                request,
                kind.update,
                schema.UpdateSchemaItem(project_id=project_id, id=edit.id, changes=update(**changes)),
            )
    for label in patch.labels_to_add:
        item: schema.CreateTagClass | schema.CreateLabelClass
        if kind is subjects.TAG_CLASS:
            assert task.group_id is not None
            item = schema.CreateTagClass(
                group_id=task.group_id, name=label.name, color=label.color, extra=extra(label.hotkey)
            )
        else:
            item = schema.CreateLabelClass(name=label.name, color=label.color, extra=extra(label.hotkey))
        await ask(request, kind.create, schema.CreateSchemaItem(project_id=project_id, item=item))
