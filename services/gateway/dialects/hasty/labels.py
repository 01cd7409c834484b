"""Labels (the objects of an image's ground-truth label) and their attribute values.

A Hasty label is one Loupe object: its id is the object's id. A label with a `mask` is a mask, else one
with a `polygon` a polygon, else one with `keypoints` keypoints, else its `bbox` a box."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from proto import annotation, schema, subjects
from proto.annotation import BoxShape, KeypointsShape, MaskShape, PointShape, PolygonShape, PolylineShape, Shape
from services.gateway.dialects.hasty.common import (
    GROUND_TRUTH,
    PROJECT,
    Routes,
    ask,
    item_path,
    json,
    no_content,
    page_of,
    timestamp,
)
from services.gateway.dialects.hasty.images import get_sample, ground_truth, image_ref
from services.gateway.dialects.native import ask_all
from services.gateway.dialects.requests import body, project_id, uuid_param
from shared import hasty_format
from shared.errors import LoupeError, invalid

MAX_LABELS = 100  # per call, as Hasty allows


class HastyKeypoint(msgspec.Struct, kw_only=True):
    keypoint_class_id: uuid.UUID
    x: float
    y: float
    visible: bool = True


class HastyLabel(msgspec.Struct, kw_only=True):
    class_id: uuid.UUID
    label_id: uuid.UUID | None = None  # updates name the label
    bbox: list[float] | None = None
    polygon: list[list[float]] | None = None
    mask: list[int] | None = None
    keypoints: list[HastyKeypoint] | None = None
    z_index: int | None = None
    external_id: str | None = None


class LabelRef(msgspec.Struct, kw_only=True):
    id: uuid.UUID


class AttributeValueBody(msgspec.Struct, kw_only=True):
    value: Any


def keypoint_class_id(schema_id: str, index: int) -> str:
    """Hasty gives each keypoint of a schema an id; Loupe stores points by index, so the id is derived."""
    return str(uuid.uuid5(uuid.UUID(schema_id), str(index)))


def number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


# -- Hasty label → Loupe shape ----------------------------------------------------------------------


def checked_bbox(bbox: list[float], path: str) -> tuple[float, float, float, float]:
    if len(bbox) != 4:
        raise invalid(f"bbox is [x1, y1, x2, y2]: 4 numbers, not {len(bbox)}", path=f"{path}.bbox")
    x1, y1, x2, y2 = bbox
    if not (x1 < x2 and y1 < y2):
        raise invalid(f"bbox {bbox} must have x1 < x2 and y1 < y2 ([x1, y1, x2, y2])", path=f"{path}.bbox")
    return x1, y1, x2, y2


def polygon_points(polygon: list[list[float]], path: str) -> list[tuple[float, float]]:
    if any(len(vertex) != 2 for vertex in polygon):
        raise invalid("polygon is a list of [x, y] pairs", path=f"{path}.polygon")
    points = [(vertex[0], vertex[1]) for vertex in polygon]
    if len(points) > 3 and points[0] == points[-1]:  # Hasty closes its rings; Loupe's are open
        points.pop()
    if len(points) < 3:
        raise invalid("a polygon needs at least 3 distinct points", path=f"{path}.polygon")
    return points


def keypoints_shape(
    keypoints: list[HastyKeypoint], label_class: schema.LabelClass, schemas: dict[str, schema.KeypointSchema], path: str
) -> KeypointsShape:
    kp_schema = schemas.get(label_class.keypoint_schema_id or "")
    if kp_schema is None:
        raise invalid(
            f"label class {label_class.name!r} has no keypoint schema, so its labels have no keypoints",
            path=f"{path}.keypoints",
        )
    index = {keypoint_class_id(kp_schema.id, i): i for i in range(len(kp_schema.keypoints))}
    points: list[annotation.Keypoint] = [(0.0, 0.0, 0)] * len(kp_schema.keypoints)
    for n, point in enumerate(keypoints):
        at = index.get(str(point.keypoint_class_id))
        if at is None:
            raise invalid(
                f"{point.keypoint_class_id} is not a keypoint class of schema {kp_schema.name!r}",
                path=f"{path}.keypoints[{n}].keypoint_class_id",
            )
        points[at] = (point.x, point.y, 2 if point.visible else 1)
    return KeypointsShape(keypoints=points)


class ShapeContext(msgspec.Struct, kw_only=True):
    """What turning Hasty labels into shapes needs to know of the image and the schema."""

    width: int
    height: int
    classes: dict[str, schema.LabelClass]
    keypoint_schemas: dict[str, schema.KeypointSchema]


def to_shape(label: HastyLabel, context: ShapeContext, path: str) -> Shape:
    bbox = checked_bbox(label.bbox, path) if label.bbox is not None else None
    if label.mask:
        if bbox is None:
            raise invalid("a mask needs the bbox it is relative to", path=f"{path}.bbox")
        box = tuple(int(c) for c in bbox)
        return MaskShape(rle=hasty_format.to_coco(box, label.mask, context.height, context.width, path))  # type: ignore[arg-type]
    if label.polygon:
        return PolygonShape(points=polygon_points(label.polygon, path))
    if label.keypoints:
        label_class = context.classes.get(str(label.class_id))
        if label_class is None:
            raise invalid(f"{label.class_id} is not a label class of this project", path=f"{path}.class_id")
        return keypoints_shape(label.keypoints, label_class, context.keypoint_schemas, path)
    if bbox is None:
        raise invalid("give the label a bbox, a polygon, a mask (with its bbox) or keypoints", path=f"{path}.bbox")
    return BoxShape(box=bbox)


async def shape_context(request: web.Request, pid: str, sample_id: str, labels: list[HastyLabel]) -> ShapeContext:
    sample = await get_sample(request, pid, sample_id, role="labeler")
    classes: dict[str, schema.LabelClass] = {}
    schemas: dict[str, schema.KeypointSchema] = {}
    if any(label.keypoints for label in labels):
        listed = await ask(request, subjects.LABEL_CLASS.list, schema.ListSchemaItems(project_id=pid))
        classes = {c.id: c for c in listed.items}
        kp = await ask(request, subjects.KEYPOINT_SCHEMA.list, schema.ListSchemaItems(project_id=pid))
        schemas = {s.id: s for s in kp.items}
    return ShapeContext(width=sample.width, height=sample.height, classes=classes, keypoint_schemas=schemas)


# -- Loupe object → Hasty label ---------------------------------------------------------------------


def extent(points: list[tuple[float, float]]) -> list[float | int]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [number(min(xs)), number(min(ys)), number(max(xs)), number(max(ys))]


def geometry(shape: Shape, kp_schema_id: str | None) -> dict[str, Any]:
    """bbox, polygon, mask and keypoints of a shape, as a Hasty label has them."""
    parts: dict[str, Any] = {"bbox": None, "polygon": None, "mask": None, "keypoints": None}
    match shape:
        case BoxShape(box=box):
            parts["bbox"] = [number(c) for c in box]
        case PolygonShape(points=points):
            parts["bbox"] = extent(points)
            parts["polygon"] = [[number(x), number(y)] for x, y in points]
        case MaskShape(rle=annotation.Rle() as rle):
            found = hasty_format.from_coco(rle)
            if found:
                parts["bbox"], parts["mask"] = list(found[0]), found[1]
        case KeypointsShape(keypoints=points):
            shown = [(x, y) for x, y, v in points if v]
            parts["bbox"] = extent(shown) if shown else None
            parts["keypoints"] = [
                {
                    "id": keypoint_class_id(kp_schema_id, i) if kp_schema_id else str(i),
                    "keypoint_class_id": keypoint_class_id(kp_schema_id, i) if kp_schema_id else None,
                    "x": number(x),
                    "y": number(y),
                    "visible": v == 2,
                    "norder": i,
                }
                for i, (x, y, v) in enumerate(points)
                if v
            ]
        case PolylineShape(points=points):
            parts["bbox"] = extent(points)
        case PointShape(point=point):
            parts["bbox"] = extent([point])
    return parts


def label_json(obj: annotation.LabelObject, pid: str, sample_id: str, kp_schemas: dict[str, str | None]) -> dict:
    return {
        "id": obj.id,
        "project_id": pid,
        "image_id": sample_id,
        "class_id": obj.class_id,
        **geometry(obj.shape, kp_schemas.get(obj.class_id)),
        "z_index": obj.z_index,
        "external_id": obj.external_id,
        "tool_used": "api",
        "labeled_by": obj.updated_by,
        "created_on": timestamp(obj.updated_at),
        "updated_on": timestamp(obj.updated_at),
    }


async def keypoint_schemas_by_class(request: web.Request, pid: str, objects: list[annotation.LabelObject]) -> dict:
    if not any(isinstance(obj.shape, KeypointsShape) for obj in objects):
        return {}
    listed = await ask(
        request, subjects.LABEL_CLASS.list, schema.ListSchemaItems(project_id=pid, include_archived=True)
    )
    return {c.id: c.keypoint_schema_id for c in listed.items}


async def labels_json(request: web.Request, pid: str, sample_id: str, objects: list[annotation.LabelObject]) -> list:
    kp_schemas = await keypoint_schemas_by_class(request, pid, objects)
    return [label_json(obj, pid, sample_id, kp_schemas) for obj in objects]


NATIVE_FIELDS = (
    (".shape.box", ".bbox"),
    (".shape.points", ".polygon"),
    (".shape.rle", ".mask"),
    (".shape.keypoints", ".keypoints"),
    (".shape", ".bbox"),
)


def hasty_field(path: str | None) -> str | None:
    """A native object's field path as the Hasty label's field (`[2].shape.box` → `[2].bbox`)."""
    for native, hasty in NATIVE_FIELDS:
        if path and native in path:
            return path.replace(native, hasty, 1)
    return path


# -- the calls --------------------------------------------------------------------------------------


async def read_batch(request: web.Request) -> list[HastyLabel]:
    labels = await body(request, list[HastyLabel])
    if not 1 <= len(labels) <= MAX_LABELS:
        raise invalid(f"send 1 to {MAX_LABELS} labels per call, not {len(labels)}", path="$")
    return labels


async def write(
    request: web.Request, pid: str, sample_id: str, labels: list[HastyLabel], kept: dict[str, annotation.LabelObject]
) -> list[dict]:
    """Create or replace `labels` on the image; a replaced label keeps what Hasty does not send (attributes)."""
    context = await shape_context(request, pid, sample_id, labels)
    items = []
    for i, label in enumerate(labels):
        path = f"[{i}]"
        before = kept.get(str(label.label_id)) if label.label_id else None
        items.append(
            annotation.SampleObjectInput(
                sample_id=uuid.UUID(sample_id),
                id=label.label_id,
                class_id=label.class_id,
                shape=to_shape(label, context, path),
                z_index=label.z_index or 0,
                external_id=label.external_id or None,
                attributes=before.attributes if before else {},
            )
        )
    try:
        written: annotation.WrittenObjects = await ask(
            request,
            subjects.UPSERT_OBJECTS,
            annotation.UpsertObjectsRequest(
                project_id=pid, labelset=GROUND_TRUTH, body=annotation.UpsertObjects(items=items)
            ),
            project_id=pid,
            role="labeler",
        )
    except LoupeError as error:
        error.details["path"] = hasty_field(item_path(error.details.get("path")))
        raise
    ids = [item.id for item in written.items]
    objects = {obj.id: obj for obj in (await ground_truth(request, pid, sample_id)).objects}
    return await labels_json(request, pid, sample_id, [objects[i] for i in ids if i in objects])


async def list_labels(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    label = await ground_truth(request, pid, sample_id)
    return page_of(request, await labels_json(request, pid, sample_id, label.objects))


async def create_labels(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    labels = await read_batch(request)
    for i, label in enumerate(labels):
        if label.label_id is not None:
            raise invalid("new labels get their id from Loupe: leave `label_id` out", path=f"[{i}].label_id")
    written = await write(request, pid, sample_id, labels, {})
    return json({"items": written, "meta": {"total": len(written)}}, status=201)


async def objects_of_image(request: web.Request, pid: str, sample_id: str, ids: list[str], path: str) -> dict:
    """The image's objects, after checking that each of `ids` is one of them."""
    objects = {obj.id: obj for obj in (await ground_truth(request, pid, sample_id)).objects}
    for i, label_id in enumerate(ids):
        if label_id not in objects:
            raise LoupeError("not_found", f"label {label_id} is not a label of image {sample_id}", path=path % i)
    return objects


async def update_labels(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    labels = await read_batch(request)
    ids = [str(label.label_id) if label.label_id else "" for label in labels]
    kept = await objects_of_image(request, pid, sample_id, ids, "[%d].label_id")
    written = await write(request, pid, sample_id, labels, kept)
    return json({"items": written, "meta": {"total": len(written)}})


async def delete_labels(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    refs = await body(request, list[LabelRef])
    if not refs:
        return no_content()
    ids = [str(ref.id) for ref in refs]
    await objects_of_image(request, pid, sample_id, ids, "[%d].id")
    await ask(
        request,
        subjects.DELETE_OBJECTS,
        annotation.DeleteObjectsRequest(
            project_id=pid, labelset=GROUND_TRUTH, body=annotation.DeleteObjects(ids=[ref.id for ref in refs])
        ),
        project_id=pid,
        role="labeler",
    )
    return no_content()


PROJECT_LABEL_FILTERS = ("label_class_id",)
OBJECTS_PAGE = 10_000  # the native listing's largest page


async def list_project_labels(request: web.Request) -> web.Response:
    """Every label of the project (of one class with `label_class_id`), read whole to count them exactly."""
    pid = project_id(request)
    for name in request.query:
        if name not in ("offset", "limit", *PROJECT_LABEL_FILTERS):
            raise invalid(
                f"filter `{name}` is not supported by Loupe's Hasty dialect; filter by label_class_id, or list an "
                "image's labels",
                path=name,
            )
    class_id = request.query.get("label_class_id") or None
    objects: list[annotation.SampleObject] = await ask_all(
        request,
        subjects.LIST_OBJECTS,
        lambda cursor: annotation.ListObjectsRequest(
            project_id=pid,
            labelset=GROUND_TRUTH,
            query=annotation.ListObjects(class_id=class_id, limit=OBJECTS_PAGE, cursor=cursor),
        ),
        project_id=pid,
        role="viewer",
    )
    kp_schemas = await keypoint_schemas_by_class(request, pid, list(objects))
    return page_of(request, [label_json(obj, pid, obj.sample_id, kp_schemas) for obj in objects])


async def get_label(request: web.Request) -> web.Response:
    pid, obj = await find_label(request)
    return json((await labels_json(request, pid, obj.sample_id, [obj]))[0])


# -- label attributes -------------------------------------------------------------------------------


async def find_label(request: web.Request) -> tuple[str, annotation.SampleObject]:
    pid = project_id(request)
    label_id = uuid_param(request, "label_id")
    found: annotation.ObjectPage = await ask(
        request,
        subjects.LIST_OBJECTS,
        annotation.ListObjectsRequest(
            project_id=pid, labelset=GROUND_TRUTH, query=annotation.ListObjects(object_id=label_id, limit=1)
        ),
        project_id=pid,
        role="viewer",
    )
    if not found.items:
        raise LoupeError("not_found", f"label {label_id} does not exist in this project", path="label_id")
    return pid, found.items[0]


def attribute_value_json(label_id: str, attribute: schema.Attribute | None, attribute_id: str, value: Any) -> dict:
    return {
        "id": attribute_id,
        "attribute_id": attribute_id,
        "label_id": label_id,
        "name": attribute.name if attribute else None,
        "type": attribute.type.replace("_", "-") if attribute else None,
        "description": attribute.description if attribute else None,
        "value": value,
    }


async def attributes_by_id(request: web.Request, pid: str) -> dict[str, schema.Attribute]:
    listed = await ask(request, subjects.ATTRIBUTE.list, schema.ListSchemaItems(project_id=pid, include_archived=True))
    return {a.id: a for a in listed.items}


async def list_label_attributes(request: web.Request) -> web.Response:
    pid, obj = await find_label(request)
    attributes = await attributes_by_id(request, pid)
    return page_of(
        request,
        [attribute_value_json(obj.id, attributes.get(a), a, value) for a, value in obj.attributes.items()],
    )


def with_value(attributes: dict[str, Any], attribute_id: str, value: Any) -> dict[str, Any]:
    """The attribute values with one set; a null value unsets it."""
    changed = {**attributes, attribute_id: value}
    if value is None:
        del changed[attribute_id]
    return changed


async def write_attributes(
    request: web.Request, pid: str, changed: list[tuple[str, annotation.LabelObject]], path: str
) -> None:
    """Write objects (each with its sample id) again with new attribute values, all or none."""
    try:
        await ask(
            request,
            subjects.UPSERT_OBJECTS,
            annotation.UpsertObjectsRequest(
                project_id=pid,
                labelset=GROUND_TRUTH,
                body=annotation.UpsertObjects(
                    items=[
                        annotation.SampleObjectInput(
                            sample_id=uuid.UUID(sample_id),
                            id=uuid.UUID(obj.id),
                            class_id=uuid.UUID(obj.class_id),
                            shape=obj.shape,
                            z_index=obj.z_index,
                            external_id=obj.external_id,
                            confidence=obj.confidence,
                            attributes=obj.attributes,
                        )
                        for sample_id, obj in changed
                    ]
                ),
            ),
            project_id=pid,
            role="labeler",
        )
    except LoupeError as error:
        error.details["path"] = path
        raise


async def set_label_attribute(request: web.Request) -> web.Response:
    pid, obj = await find_label(request)
    attribute_id = uuid_param(request, "attribute_id")
    value = (await body(request, AttributeValueBody)).value
    changed = msgspec.structs.replace(obj, attributes=with_value(obj.attributes, attribute_id, value))
    await write_attributes(request, pid, [(obj.sample_id, changed)], "value")
    attribute = (await attributes_by_id(request, pid)).get(attribute_id)
    return json(attribute_value_json(obj.id, attribute, attribute_id, value))


class ImageLabelAttribute(msgspec.Struct, kw_only=True):
    id: uuid.UUID  # the attribute's
    label_id: uuid.UUID
    value: Any


def image_attribute_values(objects: list[annotation.LabelObject], attributes: dict[str, schema.Attribute]) -> list:
    return [
        attribute_value_json(obj.id, attributes.get(attribute_id), attribute_id, value)
        for obj in objects
        for attribute_id, value in obj.attributes.items()
    ]


async def list_image_label_attributes(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    objects = (await ground_truth(request, pid, sample_id)).objects
    return page_of(request, image_attribute_values(objects, await attributes_by_id(request, pid)))


async def set_image_label_attributes(request: web.Request) -> web.Response:
    """Set attribute values of several labels of one image in one call."""
    pid, sample_id = image_ref(request)
    values = await body(request, list[ImageLabelAttribute])
    objects = await objects_of_image(request, pid, sample_id, [str(v.label_id) for v in values], "[%d].label_id")
    changed: dict[str, annotation.LabelObject] = {}
    for value in values:
        obj = changed.get(str(value.label_id)) or objects[str(value.label_id)]
        attributes = with_value(obj.attributes, str(value.id), value.value)
        changed[obj.id] = msgspec.structs.replace(obj, attributes=attributes)
    if changed:
        await write_attributes(request, pid, [(sample_id, obj) for obj in changed.values()], "[].value")
    return json(image_attribute_values(list(changed.values()), await attributes_by_id(request, pid)))


ROUTES: Routes = [
    ("GET", PROJECT + "/images/{image_id}/labels", list_labels),
    ("POST", PROJECT + "/images/{image_id}/labels", create_labels),
    ("PUT", PROJECT + "/images/{image_id}/labels", update_labels),
    ("DELETE", PROJECT + "/images/{image_id}/labels", delete_labels),
    ("GET", PROJECT + "/labels", list_project_labels),
    ("GET", PROJECT + "/labels/{label_id}", get_label),
    ("GET", PROJECT + "/labels/{label_id}/attributes", list_label_attributes),
    ("POST", PROJECT + "/labels/{label_id}/attributes/{attribute_id}", set_label_attribute),
    ("PUT", PROJECT + "/labels/{label_id}/attributes/{attribute_id}", set_label_attribute),
    # The document gives these two no path; they are named like the rest of Hasty's.
    ("GET", PROJECT + "/images/{image_id}/label_attributes", list_image_label_attributes),
    ("PUT", PROJECT + "/images/{image_id}/label_attributes", set_image_label_attributes),
]
