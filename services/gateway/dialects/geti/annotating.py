"""Geti Tune: a dataset item's annotation, which is the sample's ground-truth label (objects for detection and
segmentation, the task's tags for classification), or its prediction where no person labelled it yet: a
PRELABELED ground truth, else the label in the `predictions` labelset that native auto-labelling writes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from aiohttp import web

from proto import annotation, subjects
from proto.annotation import GROUND_TRUTH
from proto.catalog import Role
from proto.samples import SampleRef
from services.gateway.dialects.geti.common import ITEM, Route, answer, authorized, body, no_content
from services.gateway.dialects.geti.projects import get_project
from services.gateway.dialects.geti.task import Task, project_task
from services.gateway.dialects.native import ask
from services.gateway.dialects.requests import uuid_param
from shared.errors import LoupeError, invalid

PREDICTIONS = "predictions"
Coordinate = Annotated[float, msgspec.Meta(ge=0)]
Extent = Annotated[float, msgspec.Meta(gt=0)]


class Rectangle(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag="rectangle", tag_field="type"):
    x: Coordinate
    y: Coordinate
    width: Extent
    height: Extent


class PointXY(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    x: float
    y: float


class Polygon(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag="polygon", tag_field="type"):
    points: Annotated[list[PointXY], msgspec.Meta(min_length=3)]


class FullImage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag="full_image", tag_field="type"):
    pass


class LabelRef(msgspec.Struct, kw_only=True):
    id: str


class AnnotationIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    labels: Annotated[list[LabelRef], msgspec.Meta(min_length=1)]
    shape: Rectangle | Polygon | FullImage
    confidence: annotation.Confidence | None = None


class AnnotationsIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    annotations: list[AnnotationIn]


# -- native labels as Geti annotations ---------------------------------------------------------------


def shape_json(shape: annotation.Shape) -> dict[str, Any] | None:
    """Geti's shape of a native one; None for shapes Geti has none for (polylines, points, keypoints, masks)."""
    if isinstance(shape, annotation.BoxShape):
        x1, y1, x2, y2 = shape.box
        return {"type": "rectangle", "x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1}
    if isinstance(shape, annotation.PolygonShape):
        return {"type": "polygon", "points": [{"x": x, "y": y} for x, y in shape.points]}
    return None


def annotations_json(task: Task, label: annotation.Label) -> list[dict[str, Any]]:
    label_ids = {item.id for item in task.labels}
    if task.task_type == "classification":
        tags = [{"id": tag} for tag in label.tag_class_ids if tag in label_ids]
        return [{"labels": tags, "shape": {"type": "full_image"}, "confidence": label.score}] if tags else []
    found = []
    for item in label.objects:
        if (shape := shape_json(item.shape)) is not None:
            found.append({"labels": [{"id": item.class_id}], "shape": shape, "confidence": item.confidence})
    return found


def annotation_info(task: Task, label: annotation.Label | None) -> dict[str, Any]:
    if label is None:
        return {"annotations": [], "user_reviewed": False, "prediction_model_id": None}
    return {
        "annotations": annotations_json(task, label),
        "user_reviewed": label.labelset == GROUND_TRUTH and label.status != "PRELABELED",
        "prediction_model_id": None,
    }


async def labels_in(request: web.Request, pid: str, labelset: str, sample_ids: list[str]) -> list[annotation.Label]:
    found: annotation.LabelList = await ask(
        request,
        subjects.GET_LABELS,
        annotation.GetLabelsRequest(
            project_id=pid,
            labelset=labelset,
            body=annotation.GetLabels(sample_ids=[uuid.UUID(sample_id) for sample_id in sample_ids]),
        ),
    )
    return [label for label in found.items if label.version > 0]


async def shown_labels(request: web.Request, pid: str, sample_ids: list[str]) -> dict[str, annotation.Label]:
    """Each sample's label as Geti shows it: ground truth, else a prediction."""
    if not sample_ids:
        return {}
    shown = {label.sample_id: label for label in await labels_in(request, pid, GROUND_TRUTH, sample_ids)}
    missing = [sample_id for sample_id in sample_ids if sample_id not in shown]
    if missing:
        try:
            shown |= {label.sample_id: label for label in await labels_in(request, pid, PREDICTIONS, missing)}
        except LoupeError as error:
            if error.code != "not_found":  # no auto-labelling ran yet: no `predictions` labelset
                raise
    return shown


async def item_annotations(request: web.Request, pid: str, task: Task, sample_ids: list[str]) -> dict[str, Any]:
    shown = await shown_labels(request, pid, sample_ids)
    return {sample_id: annotation_info(task, shown.get(sample_id)) for sample_id in sample_ids}


# -- Geti annotations as a native label -------------------------------------------------------------


def written_label(task: Task, current: annotation.Label, sent: AnnotationsIn) -> annotation.LabelInput:
    """The ground-truth label the annotations make. It replaces the task's part of the label (its objects, or
    for classification its tags) and keeps the rest: other tags, image attributes, and for classification the
    objects."""
    label_ids = {item.id for item in task.labels}
    objects: list[annotation.ObjectInput] = []
    tags: list[str] = []
    for index, item in enumerate(sent.annotations):
        path = f"$.annotations[{index}]"
        for position, ref in enumerate(item.labels):
            if ref.id not in label_ids:
                raise invalid(f"{ref.id!r} is not a label of this project", path=f"{path}.labels[{position}].id")
        if task.task_type == "classification":
            if not isinstance(item.shape, FullImage):
                raise invalid("a classification annotation's shape is `full_image`", path=f"{path}.shape.type")
            tags.extend(ref.id for ref in item.labels if ref.id not in tags)
            continue
        if isinstance(item.shape, FullImage):
            raise invalid(f"a {task.task_type} annotation's shape is a rectangle or polygon", path=f"{path}.shape.type")
        if len(item.labels) != 1:
            raise invalid("a shape has exactly one label", path=f"{path}.labels")
        objects.append(
            annotation.ObjectInput(
                class_id=uuid.UUID(item.labels[0].id), shape=native_shape(item.shape), confidence=item.confidence
            )
        )
    other_tags = [uuid.UUID(tag) for tag in current.tag_class_ids if tag not in label_ids]
    if task.task_type == "classification":
        objects = [kept_object(item) for item in current.objects]
    return annotation.LabelInput(
        status="LABELED",
        objects=objects,
        tag_class_ids=[*other_tags, *(uuid.UUID(tag) for tag in tags)],
        attributes=current.attributes,
    )


def native_shape(shape: Rectangle | Polygon) -> annotation.Shape:
    if isinstance(shape, Rectangle):
        return annotation.BoxShape(box=(shape.x, shape.y, shape.x + shape.width, shape.y + shape.height))
    return annotation.PolygonShape(points=[(point.x, point.y) for point in shape.points])


def kept_object(item: annotation.LabelObject) -> annotation.ObjectInput:
    return annotation.ObjectInput(
        id=uuid.UUID(item.id),
        class_id=uuid.UUID(item.class_id),
        shape=item.shape,
        z_index=item.z_index,
        attributes=item.attributes,
        confidence=item.confidence,
        external_id=item.external_id,
    )


# -- handlers ---------------------------------------------------------------------------------------


async def item_task(request: web.Request, role: Role) -> tuple[str, str, Task]:
    pid, sample_id = await authorized(request, role), uuid_param(request, "item_id")
    return pid, sample_id, await project_task(request, await get_project(request, pid))


async def get_annotations(request: web.Request) -> web.Response:
    pid, sample_id, task = await item_task(request, "viewer")
    # An unknown item is a 404, not an item without annotations.
    await ask(request, subjects.GET_SAMPLE, SampleRef(project_id=pid, sample_id=sample_id))
    return answer((await item_annotations(request, pid, task, [sample_id]))[sample_id])


async def post_annotations(request: web.Request) -> web.Response:
    sent: AnnotationsIn = await body(request, AnnotationsIn)
    pid, sample_id, task = await item_task(request, "labeler")
    ref = annotation.LabelRef(project_id=pid, sample_id=sample_id, labelset=GROUND_TRUTH)
    current: annotation.Label = await ask(request, subjects.GET_LABEL, ref)
    label: annotation.Label = await ask(
        request,
        subjects.PUT_LABEL,
        annotation.PutLabelRequest(
            project_id=pid, sample_id=sample_id, labelset=GROUND_TRUTH, label=written_label(task, current, sent)
        ),
    )
    return answer(annotation_info(task, label))


async def delete_annotations(request: web.Request) -> web.Response:
    pid, sample_id = await authorized(request, "labeler"), uuid_param(request, "item_id")
    await ask(
        request, subjects.DELETE_LABEL, annotation.LabelRef(project_id=pid, sample_id=sample_id, labelset=GROUND_TRUTH)
    )
    return no_content()


ROUTES: list[Route] = [
    ("GET", ITEM + "/annotations", get_annotations),
    ("POST", ITEM + "/annotations", post_annotations),
    ("DELETE", ITEM + "/annotations", delete_annotations),
]
