"""Checks of what clients write to labels (objects, image tags, image attributes) against the project's
label schema and the image's size; each returns what it checked, normalised for storage.

Every error is `invalid` with the JSON path of the field at fault, and names the object and its class,
so that a caller of a bulk write finds it among thousands.

Normalised: a mask is stored as compressed COCO RLE only (a `png` or a plain list of counts is
converted); SELECTION values given as text become the value's id; keypoints not labelled (visibility
0) become (0, 0, 0), as the contract says; an attribute set to null counts as left out. Defaults of
object attributes are not filled in: a required attribute with a default may be left out.

Required tag groups and required image attributes are not enforced here: a label may be partial while
it is being labelled, and saving it must not be refused for that.

Speed: `check_object` of a box with two attributes (a SELECTION given by text, an INT) took 3.0 µs,
of a box alone 1.6 µs (timeit, 200,000 calls, Python 3.11 on the development machine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import shapely

from proto.annotation import (
    AttributeValues,
    BoxShape,
    KeypointsShape,
    MaskShape,
    ObjectInput,
    PointShape,
    PolygonShape,
    PolylineShape,
    Shape,
)
from proto.schema import (
    Attribute,
    AttributeSubject,
    AttributeValue,
    KeypointSchema,
    LabelClass,
    LabelSchema,
    TagClass,
    TagGroup,
)
from services.annotation import geometry
from shared.errors import invalid

TOLERANCE = 1e-6  # how far outside the image a coordinate may be, for rounding in clients' conversions


@dataclass(frozen=True, slots=True)
class SchemaIndex:
    """A project's label schema, archived items included, indexed by id; built once per request."""

    classes: dict[str, LabelClass]
    attributes: dict[str, Attribute]
    value_ids: dict[str, dict[str, AttributeValue]]  # attribute id → value id → value
    value_texts: dict[str, dict[str, AttributeValue]]  # attribute id → value text, lower case → value
    tag_classes: dict[str, TagClass]
    tag_groups: dict[str, TagGroup]
    keypoint_schemas: dict[str, KeypointSchema]
    required: dict[str, list[Attribute]]  # class id → the active object attributes it must have a value of

    @classmethod
    def from_schema(cls, schema: LabelSchema) -> SchemaIndex:
        value_texts = {}
        for attribute in schema.attributes:
            # an archived value may share its text with an active one: the active one wins
            ordered = sorted(attribute.values, key=lambda value: not value.archived)
            value_texts[attribute.id] = {value.value.lower(): value for value in ordered}
        required = [
            a for a in schema.attributes if a.subject == "LABEL" and a.required and a.default is None and not a.archived
        ]
        return cls(
            classes={c.id: c for c in schema.label_classes},
            attributes={a.id: a for a in schema.attributes},
            value_ids={a.id: {value.id: value for value in a.values} for a in schema.attributes},
            value_texts=value_texts,
            tag_classes={tag.id: tag for group in schema.tag_groups for tag in group.tags},
            tag_groups={group.id: group for group in schema.tag_groups},
            keypoint_schemas={k.id: k for k in schema.keypoint_schemas},
            required={
                c.id: [a for a in required if not a.class_ids or c.id in a.class_ids] for c in schema.label_classes
            },
        )


# -- objects ----------------------------------------------------------------------------------------


def check_object(
    obj: ObjectInput, schema: SchemaIndex, width: int, height: int, path: str, *, what: str
) -> ObjectInput:
    """`obj` checked and normalised; `path` is its JSON path, `what` names it in messages ("object 3")."""
    class_id = str(obj.class_id)
    label_class = schema.classes.get(class_id)
    if label_class is None:
        raise invalid(
            f"{what}: there is no label class {class_id} in this project; use the id of one of its label classes",
            path=f"{path}.class_id",
        )
    if label_class.archived:
        raise invalid(
            f"{what}: the label class {label_class.name!r} is archived; restore it or use another class",
            path=f"{path}.class_id",
        )
    about = f"{what} ({label_class.name})"
    shape = _check_shape(obj.shape, label_class, schema, width, height, f"{path}.shape", about)
    attributes = _check_object_attributes(obj.attributes, label_class, schema, f"{path}.attributes", about)
    return msgspec.structs.replace(obj, shape=shape, attributes=attributes)


def _check_shape(
    shape: Shape, label_class: LabelClass, schema: SchemaIndex, width: int, height: int, path: str, about: str
) -> Shape:
    match shape:
        case BoxShape():
            _check_box(shape.box, width, height, f"{path}.box", about)
        case PolygonShape():
            _check_polygon(shape, width, height, path, about)
        case PolylineShape():
            if len(shape.points) < 2:
                raise invalid(f"{about}: a polyline needs at least 2 points", path=f"{path}.points")
            _check_points(shape.points, width, height, f"{path}.points", about)
        case PointShape():
            if not _inside(shape.point[0], shape.point[1], width, height):
                raise invalid(
                    f"{about}: the point {list(shape.point)} is outside the {width}×{height} image",
                    path=f"{path}.point",
                )
        case KeypointsShape():
            return _check_keypoints(shape, label_class, schema, width, height, path, about)
        case MaskShape():
            return _check_mask(shape, width, height, path, about)
    return shape


def _inside(x: float, y: float, width: int, height: int) -> bool:
    # written so that NaN, which fails every comparison, is outside
    return -TOLERANCE <= x <= width + TOLERANCE and -TOLERANCE <= y <= height + TOLERANCE


def _check_box(box: tuple[float, float, float, float], width: int, height: int, path: str, about: str) -> None:
    x1, y1, x2, y2 = box
    if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)):
        raise invalid(f"{about}: the box {list(box)} has a coordinate that is not a finite number", path=path)
    if not (x1 < x2 and y1 < y2):
        raise invalid(
            f"{about}: the box {list(box)} is empty or inverted; it is [x1, y1, x2, y2] with x1 < x2 and y1 < y2",
            path=path,
        )
    if not (_inside(x1, y1, width, height) and _inside(x2, y2, width, height)):
        raise invalid(
            f"{about}: the box {list(box)} goes outside the {width}×{height} image; clip it to "
            f"[0, {width}] × [0, {height}]",
            path=path,
        )


def _check_points(points: list[tuple[float, float]], width: int, height: int, path: str, about: str) -> None:
    xy = np.asarray(points, dtype=np.float64)
    inside = (xy >= -TOLERANCE).all(axis=1) & (xy[:, 0] <= width + TOLERANCE) & (xy[:, 1] <= height + TOLERANCE)
    if not inside.all():
        i = int(inside.argmin())
        raise invalid(
            f"{about}: point {i} {list(points[i])} is not inside the {width}×{height} image", path=f"{path}[{i}]"
        )


def _check_ring(
    ring: list[tuple[float, float]], width: int, height: int, path: str, about: str, name: str
) -> shapely.Polygon:
    if len(set(ring)) < 3:
        raise invalid(f"{about}: the {name} needs at least 3 distinct points", path=path)
    _check_points(ring, width, height, path, about)
    polygon = shapely.Polygon(ring)
    if not polygon.is_valid:
        raise invalid(
            f"{about}: the {name} is not a simple polygon ({shapely.is_valid_reason(polygon)}); its "
            "edges must not cross or touch: reorder its points, or split it into several objects",
            path=path,
        )
    return polygon


def _check_polygon(shape: PolygonShape, width: int, height: int, path: str, about: str) -> None:
    outline = _check_ring(shape.points, width, height, f"{path}.points", about, "polygon")
    for i, hole in enumerate(shape.holes):
        if not outline.contains(_check_ring(hole, width, height, f"{path}.holes[{i}]", about, f"hole {i}")):
            raise invalid(f"{about}: hole {i} is not inside the polygon's outline", path=f"{path}.holes[{i}]")
    if shape.holes:
        whole = shapely.Polygon(shape.points, shape.holes)
        if not whole.is_valid:
            raise invalid(
                f"{about}: the holes overlap each other or the outline "
                f"({shapely.is_valid_reason(whole)}); merge or shrink them",
                path=f"{path}.holes",
            )


def _check_keypoints(
    shape: KeypointsShape, label_class: LabelClass, schema: SchemaIndex, width: int, height: int, path: str, about: str
) -> KeypointsShape:
    keypoint_schema = schema.keypoint_schemas.get(label_class.keypoint_schema_id or "")
    if keypoint_schema is None:
        raise invalid(
            f"{about}: the class has no keypoint schema, so its objects cannot be keypoints; give it "
            "one, or use another class or shape",
            path=path,
        )
    names = keypoint_schema.keypoints
    if len(shape.keypoints) != len(names):
        raise invalid(
            f"{about}: {len(shape.keypoints)} keypoints given, but the keypoint schema "
            f"{keypoint_schema.name!r} has {len(names)} ({', '.join(names)}); give one [x, y, visibility] "
            "per keypoint in that order, visibility 0 for those not labelled",
            path=f"{path}.keypoints",
        )
    for i, (x, y, visibility) in enumerate(shape.keypoints):
        if visibility and not _inside(x, y, width, height):
            raise invalid(
                f"{about}: keypoint {i} ({names[i]}) at {[x, y]} is outside the {width}×{height} image; "
                "move it inside, or give it visibility 0 (not labelled)",
                path=f"{path}.keypoints[{i}]",
            )
    return KeypointsShape(keypoints=[point if point[2] else (0.0, 0.0, 0) for point in shape.keypoints])


def _check_mask(shape: MaskShape, width: int, height: int, path: str, about: str) -> MaskShape:
    rle, png = shape.rle, shape.png
    if png is not None and rle is None:
        return MaskShape(rle=geometry.png_to_rle(png, height, width, path=f"{path}.png", what=about))
    if rle is None or png is not None:
        raise invalid(f"{about}: a mask has exactly one of `rle` and `png`", path=path)
    if tuple(rle.size) != (height, width):
        raise invalid(
            f"{about}: the mask's size is {list(rle.size)} but the image's [height, width] is {[height, width]}",
            path=f"{path}.rle.size",
        )
    try:
        counts = geometry.rle_counts(rle)
    except ValueError as error:
        raise invalid(
            f"{about}: the mask's counts are not COCO's compressed RLE: {error}", path=f"{path}.rle.counts"
        ) from None
    if any(count < 0 for count in counts):
        raise invalid(f"{about}: the mask's counts hold a negative run length", path=f"{path}.rle.counts")
    if sum(counts) != width * height:
        raise invalid(
            f"{about}: the mask's runs cover {sum(counts)} pixels but the {width}×{height} image has "
            f"{width * height}; the counts must add up to width × height",
            path=f"{path}.rle.counts",
        )
    return MaskShape(rle=geometry.compress_rle(rle))


# -- attributes -------------------------------------------------------------------------------------


def _check_object_attributes(
    values: AttributeValues, label_class: LabelClass, schema: SchemaIndex, path: str, about: str
) -> AttributeValues:
    checked = {}
    for attribute_id, value in values.items():
        attribute = _attribute(attribute_id, "LABEL", schema, f"{path}.{attribute_id}", about)
        if attribute.class_ids and label_class.id not in attribute.class_ids:
            raise invalid(
                f"{about}: the attribute {attribute.name!r} is not one of class {label_class.name!r}; "
                "leave it out, or add the class to the attribute",
                path=f"{path}.{attribute_id}",
            )
        if value is not None:
            checked[attribute_id] = _check_value(attribute, value, schema, f"{path}.{attribute_id}", about)
    for attribute in schema.required[label_class.id]:
        if attribute.id not in checked:
            raise invalid(
                f"{about}: the attribute {attribute.name!r} is required for class {label_class.name!r}; "
                "give it a value",
                path=f"{path}.{attribute.id}",
            )
    return checked


def check_image_attributes(values: AttributeValues, schema: SchemaIndex, path: str) -> AttributeValues:
    """Image attributes (subject IMAGE) checked, normalised as object attributes are; `path` is the
    JSON path of the attributes (e.g. "$.attributes")."""
    checked = {}
    for attribute_id, value in values.items():
        attribute = _attribute(attribute_id, "IMAGE", schema, f"{path}.{attribute_id}", "the image")
        if value is not None:
            checked[attribute_id] = _check_value(attribute, value, schema, f"{path}.{attribute_id}", "the image")
    return checked


def _attribute(attribute_id: str, subject: AttributeSubject, schema: SchemaIndex, path: str, about: str) -> Attribute:
    attribute = schema.attributes.get(attribute_id)
    if attribute is None:
        raise invalid(
            f"{about}: there is no attribute {attribute_id!r} in this project; key attributes by their id", path=path
        )
    if attribute.subject != subject:
        where = "on the label's `attributes`" if attribute.subject == "IMAGE" else "on its objects"
        raise invalid(
            f"{about}: {attribute.name!r} is an attribute of the {attribute.subject.lower()}; set it {where}", path=path
        )
    if attribute.archived:
        raise invalid(f"{about}: the attribute {attribute.name!r} is archived; restore it or leave it out", path=path)
    return attribute


def _check_value(attribute: Attribute, value: Any, schema: SchemaIndex, path: str, about: str) -> Any:
    """The value normalised: a selection by its value ids, a FLOAT as float, a whole-number INT as int."""
    kind = attribute.type
    if kind == "SELECTION":
        return _choice(attribute, value, schema, path, about)
    if kind == "MULTIPLE_SELECTION":
        if not isinstance(value, list):
            raise invalid(f"{about}: the attribute {attribute.name!r} takes a list of its values", path=path)
        ids = [_choice(attribute, item, schema, f"{path}[{i}]", about) for i, item in enumerate(value)]
        for i, value_id in enumerate(ids):
            if value_id in ids[:i]:
                raise invalid(
                    f"{about}: {value[i]!r} is listed twice in the attribute {attribute.name!r}", path=f"{path}[{i}]"
                )
        return ids
    if (kind == "TEXT" and isinstance(value, str)) or (kind == "BOOL" and isinstance(value, bool)):
        return value
    if (
        kind in ("INT", "FLOAT")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    ):
        if kind == "INT" and isinstance(value, float) and not value.is_integer():
            raise invalid(f"{about}: the attribute {attribute.name!r} takes whole numbers, not {value}", path=path)
        low, high = attribute.min, attribute.max
        if (low is not None and value < low) or (high is not None and value > high):
            raise invalid(
                f"{about}: {value} is outside [{low}, {high}], the range of the attribute {attribute.name!r}", path=path
            )
        return int(value) if kind == "INT" else float(value)
    expected = {"TEXT": "a string", "BOOL": "true or false", "INT": "a whole number", "FLOAT": "a number"}[kind]
    raise invalid(f"{about}: the attribute {attribute.name!r} takes {expected}, not {value!r}", path=path)


def _choice(attribute: Attribute, value: Any, schema: SchemaIndex, path: str, about: str) -> str:
    """The id of the active value of a selection attribute given by its id or its text."""
    choice = None
    if isinstance(value, str):
        choice = schema.value_ids[attribute.id].get(value) or schema.value_texts[attribute.id].get(value.lower())
    if choice is None or choice.archived:
        active = [v.value for v in attribute.values if not v.archived]
        problem = f"the value {choice.value!r} is archived" if choice else f"{value!r} is not one of its values"
        raise invalid(
            f"{about}: for the attribute {attribute.name!r}, {problem}; use the id or the text of one of {active}",
            path=path,
        )
    return choice.id


# -- tags -------------------------------------------------------------------------------------------


def check_tags(tag_class_ids: list, schema: SchemaIndex, path: str) -> list[str]:
    """Image tags (tag class ids, UUIDs or strings) checked, as strings. Required groups are not
    enforced: a label may be partial while it is being labelled."""
    checked: list[str] = []
    single: dict[str, TagClass] = {}  # the tag given for each SINGLE-selection group
    for i, raw in enumerate(tag_class_ids):
        tag_id, field = str(raw), f"{path}[{i}]"
        tag = schema.tag_classes.get(tag_id)
        if tag is None:
            raise invalid(f"there is no tag class {tag_id} in this project; use the id of one of its tags", path=field)
        group = schema.tag_groups[tag.group_id]
        if tag.archived or group.archived:
            archived = f"the tag {tag.name!r}" if tag.archived else f"the group {group.name!r} of the tag {tag.name!r}"
            raise invalid(f"{archived} is archived; restore it or use another tag", path=field)
        if tag_id in checked:
            raise invalid(f"the tag {tag.name!r} is listed twice", path=field)
        if group.selection == "SINGLE":
            if group.id in single:
                raise invalid(
                    f"the group {group.name!r} takes one tag per image, and {single[group.id].name!r} is "
                    f"given already; keep one of them",
                    path=field,
                )
            single[group.id] = tag
        checked.append(tag_id)
    return checked
