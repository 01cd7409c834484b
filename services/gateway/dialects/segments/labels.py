"""Segments.ai labels ⇄ Loupe labels.

Category ids: a Segments category id is the `order` of its Loupe label class. A dataset made through
this dialect gets one class per category with `order` = the category's id, and any class made natively
shows up with its own `order`; the release file (services/annotation/formats/segments.py) uses the same
rule, so a label and its release agree without any table on the side. Two active classes with the same
order make that category id ambiguous, which a label naming it is told.

Annotation ids are positions: the n-th object of a label is annotation n (1-based), as in the release file.
Object attributes are by attribute name in Segments and by attribute id in Loupe; selection values go by
their text, which Loupe accepts as they are.
"""

from __future__ import annotations

import io
from typing import Any, Literal

import msgspec
import numpy as np
from PIL import Image, ImageDraw

from proto.annotation import (
    BoxShape,
    KeypointsShape,
    Label,
    LabelInput,
    LabelObject,
    LabelStatus,
    MaskShape,
    ObjectInput,
    PointShape,
    PolygonShape,
    PolylineShape,
    Rle,
    Shape,
)
from proto.schema import LabelClass, LabelSchema
from shared.errors import LoupeError

FORMAT_VERSION = "0.1"
VectorType = Literal["bbox", "polygon", "polyline", "point"]


# Statuses a label does not start in: Loupe's review workflow reaches them through LABELED, while Segments
# writes a label in any status its caller's role allows, so the dialect takes the steps in order.
STEPS: dict[str, tuple[LabelStatus, ...]] = {
    "REVIEWING_IN_PROGRESS": ("LABELED", "REVIEWING_IN_PROGRESS"),
    "REVIEWED": ("LABELED", "REVIEWED"),
    "REJECTED": ("LABELED", "REJECTED"),
    "VERIFIED": ("LABELED", "REVIEWED", "VERIFIED"),
}


def status_steps(current: LabelStatus, target: LabelStatus) -> tuple[LabelStatus, ...]:
    """The statuses to write one after the other to take a label from `current` to `target`."""
    steps = STEPS.get(target, (target,))
    return steps[steps.index(current) :] if current in steps else steps


class InAnnotation(msgspec.Struct, kw_only=True):
    category_id: int
    id: int | None = None
    type: VectorType | None = None
    points: list[list[float]] | None = None
    attributes: dict[str, Any] | None = None


class InAttributes(msgspec.Struct, kw_only=True):
    annotations: list[InAnnotation] = []
    format_version: str | float | None = None
    image_attributes: dict[str, Any] | None = None
    segmentation_bitmap: dict[str, Any] | None = None


class InLabel(msgspec.Struct, kw_only=True):
    """PUT and PATCH /labels/{sample}/{labelset}/."""

    attributes: InAttributes | None = None
    label_status: LabelStatus | None = None
    score: float | None = None


class Schema:
    """A project's label schema as Segments sees it: classes by category id, attributes by name."""

    def __init__(self, schema: LabelSchema) -> None:
        active = [c for c in schema.label_classes if not c.archived]
        self.classes = sorted(active, key=lambda c: (c.order, c.name))
        self.by_category: dict[int, list[LabelClass]] = {}
        for label_class in self.classes:
            self.by_category.setdefault(label_class.order, []).append(label_class)
        self.orders = {c.id: c.order for c in schema.label_classes}
        self.attribute_ids = {a.name.lower(): a.id for a in schema.attributes if not a.archived}
        self.attribute_names = {a.id: a.name for a in schema.attributes}
        self.value_texts = {v.id: v.value for a in schema.attributes for v in a.values}

    def categories(self) -> list[dict[str, Any]]:
        return [{"id": c.order, "name": c.name, "color": list(_rgb(c.color)), "attributes": []} for c in self.classes]

    def class_of(self, category_id: int, path: str) -> str:
        found = self.by_category.get(category_id, [])
        if not found:
            known = ", ".join(f"{c.order} ({c.name})" for c in self.classes) or "none yet"
            raise LoupeError(
                "invalid", f"category_id {category_id} is not a category of this dataset; it has {known}", path=path
            )
        if len(found) > 1:
            raise LoupeError(
                "invalid",
                f"category_id {category_id} names {len(found)} label classes "
                f"({', '.join(c.name for c in found)}): give them distinct orders",
                path=path,
            )
        return found[0].id

    def attribute_values(self, named: dict[str, Any] | None, path: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in (named or {}).items():
            attribute_id = self.attribute_ids.get(name.lower())
            if attribute_id is None:
                raise LoupeError("invalid", f"the dataset has no attribute named {name!r}", path=f"{path}.{name}")
            if value is not None:
                values[attribute_id] = value
        return values

    def named_values(self, values: dict[str, Any]) -> dict[str, Any]:
        def text(value: Any) -> Any:
            if isinstance(value, list):
                return [self.value_texts.get(item, item) for item in value]
            return self.value_texts.get(value, value) if isinstance(value, str) else value

        return {self.attribute_names.get(key, key): text(value) for key, value in values.items()}


def to_loupe(body: InLabel, schema: Schema, status: LabelStatus, bitmap: Bitmap | None = None) -> LabelInput:
    """A Segments label body as the whole Loupe label it replaces; paths name the body's fields. A
    segmentation label's objects are masks cut from `bitmap`, the PNG its `segmentation_bitmap` names."""
    attributes = body.attributes or InAttributes()
    objects = []
    for index, annotation in enumerate(attributes.annotations):
        path = f"attributes.annotations[{index}]"
        objects.append(
            ObjectInput(
                class_id=schema.class_of(annotation.category_id, f"{path}.category_id"),  # type: ignore[arg-type]
                shape=bitmap.mask(annotation, path) if bitmap else _shape(annotation, path),
                attributes=schema.attribute_values(annotation.attributes, f"{path}.attributes"),
            )
        )
    return LabelInput(
        status=status,
        score=body.score,
        objects=objects,
        attributes=schema.attribute_values(attributes.image_attributes, "attributes.image_attributes"),
    )


class Bitmap:
    """Segments' instance bitmap: each pixel's annotation id little-endian in R, G and B (0: none)."""

    PATH = "attributes.segmentation_bitmap.url"

    def __init__(self, png: bytes, width: int, height: int) -> None:
        try:
            image = Image.open(io.BytesIO(png))
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise LoupeError("invalid", f"the segmentation bitmap is not an image: {exc}", path=self.PATH) from None
        if image.size != (width, height):
            raise LoupeError(
                "invalid",
                f"the segmentation bitmap is {image.width}×{image.height}; the sample's image is {width}×{height}",
                path=self.PATH,
            )
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint32)
        self.ids = rgb[:, :, 0] | rgb[:, :, 1] << 8 | rgb[:, :, 2] << 16

    def mask(self, annotation: InAnnotation, path: str) -> MaskShape:
        if annotation.id is None:
            raise LoupeError("invalid", "a segmentation annotation needs the id its pixels hold", path=f"{path}.id")
        pixels = (self.ids == annotation.id).ravel(order="F")  # COCO RLE runs go down the columns
        if not pixels.any():
            raise LoupeError("invalid", f"no pixel of the bitmap holds id {annotation.id}", path=f"{path}.id")
        edges = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
        runs = np.diff(np.concatenate(([0], edges, [pixels.size]))).tolist()
        height, width = self.ids.shape
        return MaskShape(rle=Rle(size=(height, width), counts=[0, *runs] if pixels[0] else runs))


def _shape(annotation: InAnnotation, path: str) -> Shape:
    points = [tuple(point) for point in annotation.points or []]
    for index, point in enumerate(points):
        if len(point) != 2:
            raise LoupeError("invalid", "a point is [x, y]", path=f"{path}.points[{index}]")
    kind = annotation.type
    if kind is None:
        raise LoupeError("invalid", "give the annotation's type: bbox, polygon, polyline or point", path=f"{path}.type")
    needed = {"bbox": 2, "polygon": 3, "polyline": 2, "point": 1}[kind]
    if len(points) < needed or (kind in ("bbox", "point") and len(points) != needed):
        exactly = "exactly" if kind in ("bbox", "point") else "at least"
        raise LoupeError("invalid", f"a {kind} has {exactly} {needed} points", path=f"{path}.points")
    if kind == "bbox":
        (x1, y1), (x2, y2) = points
        return BoxShape(box=(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
    if kind == "polygon":
        return PolygonShape(points=points)  # type: ignore[arg-type]
    if kind == "polyline":
        return PolylineShape(points=points)  # type: ignore[arg-type]
    return PointShape(point=points[0])  # type: ignore[arg-type]


def vector_annotations(label: Label, schema: Schema) -> list[dict[str, Any]]:
    """The label's objects as Segments vector annotations; masks have no vector form and are left out."""
    found: list[dict[str, Any]] = []
    for obj in label.objects:
        for kind, points in _vector(obj.shape):
            found.append(
                {
                    "id": len(found) + 1,
                    "category_id": schema.orders.get(obj.class_id, 0),
                    "type": kind,
                    "points": points,
                    "attributes": schema.named_values(obj.attributes),
                }
            )
    return found


def _vector(shape: Shape) -> list[tuple[str, list[list[float]]]]:
    match shape:
        case BoxShape(box=(x1, y1, x2, y2)):
            return [("bbox", [[x1, y1], [x2, y2]])]
        case PolygonShape(points=points):
            return [("polygon", [list(p) for p in points])]
        case PolylineShape(points=points):
            return [("polyline", [list(p) for p in points])]
        case PointShape(point=(x, y)):
            return [("point", [[x, y]])]
        case KeypointsShape(keypoints=keypoints):
            return [("point", [[x, y]]) for x, y, visible in keypoints if visible]
    return []


def label_attributes(label: Label, schema: Schema, bitmap_url: str | None = None) -> dict[str, Any]:
    """The label's Segments attributes: vector annotations, or with `bitmap_url` (segmentation-bitmap
    datasets) the annotations of its area objects, whose ids the bitmap at that URL holds."""
    attributes: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "annotations": vector_annotations(label, schema),
        "image_attributes": schema.named_values(label.attributes),
    }
    if bitmap_url is not None:
        attributes["annotations"] = [
            {
                "id": number,
                "category_id": schema.orders.get(obj.class_id, 0),
                "attributes": schema.named_values(obj.attributes),
            }
            for number, obj in enumerate(area_objects(label), start=1)
        ]
        attributes["segmentation_bitmap"] = {"url": bitmap_url}
    return attributes


def area_objects(label: Label) -> list[LabelObject]:
    return [obj for obj in label.objects if isinstance(obj.shape, BoxShape | PolygonShape | MaskShape)]


def render_bitmap(label: Label, height: int, width: int) -> bytes:
    """The label's instance bitmap as a PNG: annotation n's pixels hold n, painted by ascending z_index."""
    ids = np.zeros((height, width), dtype="<u4")
    numbered = list(enumerate(area_objects(label), start=1))
    for number, obj in sorted(numbered, key=lambda item: item[1].z_index):
        ids[_pixels(obj.shape, height, width)] = number
    rgba = ids[:, :, None].view(np.uint8).copy()
    rgba[:, :, 3] = 255
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG")
    return out.getvalue()


def _pixels(shape: Shape, height: int, width: int) -> np.ndarray:
    """The pixels an area shape covers, as a boolean image."""
    if isinstance(shape, MaskShape) and shape.rle is not None:
        counts = shape.rle.counts if isinstance(shape.rle.counts, list) else _coco_counts(shape.rle.counts)
        flat = np.zeros(height * width, dtype=bool)
        ends = np.cumsum(counts)
        for start, end in zip(ends[0::2], ends[1::2], strict=False):
            flat[start:end] = True
        return flat.reshape((width, height)).T
    canvas = Image.new("1", (width, height))
    draw = ImageDraw.Draw(canvas)
    if isinstance(shape, BoxShape):
        x1, y1, x2, y2 = shape.box
        draw.rectangle((round(x1), round(y1), round(x2) - 1, round(y2) - 1), fill=1)
    elif isinstance(shape, PolygonShape):
        draw.polygon(shape.points, fill=1)
        for hole in shape.holes:
            draw.polygon(hole, fill=0)
    return np.asarray(canvas, dtype=bool)


def _coco_counts(text: str) -> list[int]:
    """COCO's compressed RLE string as run lengths (pycocotools' rleFrString)."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            char = ord(text[position]) - 48
            value |= (char & 0x1F) << shift
            more = bool(char & 0x20)
            position += 1
            shift += 5
            if not more and char & 0x10:
                value |= -1 << shift
        counts.append(value + counts[-2] if len(counts) > 2 else value)
    return counts


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
