"""Segments.ai release file export: `release.json` shaped like the file Segments.ai serves for a
dataset release, so its SDK and tools read a Loupe export as their own.

Category ids are the label classes' `order` (the Segments.ai dialect's rule, so that a label read through it
and its release agree). Every labelset of the release is written for every sample
(null where the sample has no label in it). Projects of task type "segmentation-bitmap" get
Segments' segmentation labels: annotations `{id, category_id, attributes}` and one RGBA PNG per label
under `bitmaps/<labelset>/<sample id>.png` whose pixels hold the annotation id little-endian in R, G
and B (A is 255). Other projects get vector labels: bbox, polygon (outer ring: Segments polygons have
no holes), polyline, and point; a keypoints object becomes one point per labelled keypoint, and masks
(vector labels have none) are skipped. Annotation ids are 1-based positions in the label's
`annotations` list. Attribute values are keyed by attribute name, selection values by their text.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from proto.annotation import (
    AttributeValues,
    BoxShape,
    KeypointsShape,
    Point,
    PointShape,
    PolygonShape,
    PolylineShape,
    Shape,
)
from proto.releases import ReleaseHeader, ReleaseLabel, ReleaseSample
from proto.schema import Attribute, LabelSchema
from services.annotation.formats.jsonstream import STREAMED_ARRAY, streamed_json
from services.annotation.formats.semantic_png import (
    ClassIndex,
    CocoRle,
    ObjectRef,
    area_rle,
    painting_order,
    shape_type,
)
from services.annotation.formats.stats import ExportStats
from services.annotation.formats.target import ExportTarget

FORMAT_VERSION = "0.1"
BITMAP_TASK_TYPE = "segmentation-bitmap"
# Loupe has no dataset owners; Segments' dataset id is "<owner>/<name>".
OWNER = "loupe"
INPUT_TYPES = {
    "SELECTION": "select",
    "MULTIPLE_SELECTION": "multiselect",
    "TEXT": "text",
    "INT": "number",
    "FLOAT": "number",
    "BOOL": "checkbox",
}


class AttributeNames:
    """Turns Loupe's attribute values (by attribute id, selection values by value id) into the
    by-name, by-text values other products use. Ids the schema does not know are kept as they are."""

    def __init__(self, schema: LabelSchema) -> None:
        self._names = {attribute.id: attribute.name for attribute in schema.attributes}
        self._texts = {
            attribute.id: {value.id: value.value for value in attribute.values} for attribute in schema.attributes
        }

    def named(self, values: AttributeValues) -> dict[str, Any]:
        return {
            self._names.get(attribute_id, attribute_id): self.text(attribute_id, value)
            for attribute_id, value in values.items()
        }

    def text(self, attribute_id: str, value: Any) -> Any:
        texts = self._texts.get(attribute_id, {})
        if isinstance(value, list):
            return [texts.get(item, item) for item in value]
        return texts.get(value, value) if isinstance(value, str) else value


# -- the file's shapes ------------------------------------------------------------------------------

VectorType = Literal["bbox", "polygon", "polyline", "point"]


class SegmentsAttribute(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    input_type: str
    values: list[str] | None = None
    min: str | None = None
    max: str | None = None
    step: str | None = None
    default_value: Any = None


class SegmentsCategory(msgspec.Struct, kw_only=True):
    id: int
    name: str
    color: tuple[int, int, int]
    attributes: list[SegmentsAttribute]


class VectorAnnotation(msgspec.Struct, kw_only=True):
    id: int
    category_id: int
    type: VectorType
    points: list[Point]
    attributes: dict[str, Any]


class BitmapAnnotation(msgspec.Struct, kw_only=True):
    id: int
    category_id: int
    attributes: dict[str, Any]


class Url(msgspec.Struct, kw_only=True):
    url: str | None


class LabelAttributes(msgspec.Struct, kw_only=True, omit_defaults=True):
    format_version: str
    annotations: list[VectorAnnotation] | list[BitmapAnnotation]
    image_attributes: dict[str, Any]
    segmentation_bitmap: Url | None = None


class SegmentsLabel(msgspec.Struct, kw_only=True):
    label_status: str
    attributes: LabelAttributes


class SampleAttributes(msgspec.Struct, kw_only=True):
    image: Url


class SegmentsSample(msgspec.Struct, kw_only=True):
    uuid: str
    name: str
    metadata: dict[str, object]
    attributes: SampleAttributes
    labels: dict[str, SegmentsLabel | None]


# -- export -----------------------------------------------------------------------------------------


def export(target: ExportTarget, samples: Iterable[ReleaseSample]) -> ExportStats:
    """Write `release.json` (and `bitmaps/` for segmentation-bitmap projects). Every labelset is
    written: `labelset` only names the one the export's filters applied to. `task` does not apply:
    the project's task type decides between vector and bitmap labels."""
    writer = _LabelWriter(target.header, target.out_dir)
    document = {
        "name": target.header.release.name,
        "description": target.header.release.description,
        "created_at": target.header.release.created_at,
        "dataset": {
            "owner": OWNER,
            "name": target.header.project.name,
            "task_type": target.header.project.task_type,
            "labelsets": [{"name": name, "description": ""} for name in target.header.labelsets],
            "task_attributes": {
                "format_version": FORMAT_VERSION,
                "categories": writer.categories(),
                "image_attributes": writer.image_attributes(),
            },
            "samples": STREAMED_ARRAY,
        },
    }
    with streamed_json(target.out_dir / "release.json", document) as array:
        for sample in samples:
            array.append(
                SegmentsSample(
                    uuid=sample.id,
                    name=sample.name,
                    metadata=sample.metadata,
                    attributes=SampleAttributes(image=Url(url=target.image_url(sample))),
                    labels={name: writer.label(sample, name) for name in target.header.labelsets},
                )
            )
    writer.stats.samples = array.count
    return writer.stats


class _LabelWriter:
    """Turns one sample's label in one labelset into a Segments label (writing its bitmap when the
    project has them), counting the objects written and skipped."""

    def __init__(self, header: ReleaseHeader, out_dir: Path) -> None:
        self.schema = header.label_schema
        self.classes = ClassIndex(self.schema)
        self.category_ids = {label_class.id: label_class.order for label_class in self.classes.classes}
        self.attribute_names = AttributeNames(self.schema)
        self.bitmaps = header.project.task_type == BITMAP_TASK_TYPE
        self.out_dir = out_dir
        self.stats = ExportStats()

    def categories(self) -> list[SegmentsCategory]:
        label_attributes = [attribute for attribute in self.schema.attributes if attribute.subject == "LABEL"]
        return [
            SegmentsCategory(
                id=label_class.order,
                name=label_class.name,
                color=_rgb(label_class.color),
                attributes=[
                    self._attribute(attribute)
                    for attribute in label_attributes
                    if not attribute.class_ids or label_class.id in attribute.class_ids
                ],
            )
            for label_class in self.classes.classes
        ]

    def image_attributes(self) -> list[SegmentsAttribute]:
        return [self._attribute(attribute) for attribute in self.schema.attributes if attribute.subject == "IMAGE"]

    def _attribute(self, attribute: Attribute) -> SegmentsAttribute:
        selection = attribute.type in ("SELECTION", "MULTIPLE_SELECTION")
        number = attribute.type in ("INT", "FLOAT")
        return SegmentsAttribute(
            name=attribute.name,
            input_type=INPUT_TYPES[attribute.type],
            values=[value.value for value in attribute.values] if selection else None,
            min=str(attribute.min) if number and attribute.min is not None else None,
            max=str(attribute.max) if number and attribute.max is not None else None,
            step="1" if attribute.type == "INT" else None,
            default_value=self.attribute_names.text(attribute.id, attribute.default),
        )

    def label(self, sample: ReleaseSample, labelset: str) -> SegmentsLabel | None:
        label = sample.labels.get(labelset)
        if label is None:
            return None
        refs = [self.classes.ref(sample, labelset, index, obj) for index, obj in enumerate(label.objects)]
        image_attributes = self.attribute_names.named(label.attributes)
        if not self.bitmaps:
            attributes = LabelAttributes(
                format_version=FORMAT_VERSION,
                annotations=self._vector_annotations(label),
                image_attributes=image_attributes,
            )
        else:
            bitmap_path = f"bitmaps/{labelset}/{sample.id}.png"
            attributes = LabelAttributes(
                format_version=FORMAT_VERSION,
                annotations=self._bitmap(sample, label, refs, self.out_dir / bitmap_path),
                image_attributes=image_attributes,
                segmentation_bitmap=Url(url=bitmap_path),
            )
        return SegmentsLabel(label_status=label.status, attributes=attributes)

    def _vector_annotations(self, label: ReleaseLabel) -> list[VectorAnnotation]:
        annotations: list[VectorAnnotation] = []
        for obj in label.objects:
            shapes = _vector_shapes(obj.shape)
            if not shapes:
                self.stats.skip(f"{shape_type(obj.shape)}: Segments vector labels have no such annotation")
                continue
            attributes = self.attribute_names.named(obj.attributes)
            for annotation_type, points in shapes:
                annotations.append(
                    VectorAnnotation(
                        id=len(annotations) + 1,
                        category_id=self.category_ids[obj.class_id],
                        type=annotation_type,
                        points=points,
                        attributes=attributes,
                    )
                )
            self.stats.objects += 1
        return annotations

    def _bitmap(
        self, sample: ReleaseSample, label: ReleaseLabel, refs: list[ObjectRef], path: Path
    ) -> list[BitmapAnnotation]:
        """List the label's area objects and write its bitmap: their ids painted by ascending z_index."""
        rles: dict[int, CocoRle] = {}  # by object index
        annotations: list[BitmapAnnotation] = []
        for index, obj in enumerate(label.objects):
            rle = area_rle(obj.shape, refs[index])
            if rle is None:
                self.stats.skip(f"{shape_type(obj.shape)}: not an area shape")
                continue
            rles[index] = rle
            annotations.append(
                BitmapAnnotation(
                    id=len(annotations) + 1,
                    category_id=self.category_ids[obj.class_id],
                    attributes=self.attribute_names.named(obj.attributes),
                )
            )
            self.stats.objects += 1
        instance_ids = {index: instance_id for instance_id, index in enumerate(rles, start=1)}
        canvas = np.zeros((sample.height, sample.width), dtype="<u4")
        for index, _ in painting_order(label.objects):
            if index in rles:
                canvas[coco_mask.decode(rles[index]).view(bool)] = instance_ids[index]
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_segments_rgba(canvas)).save(path)
        return annotations


def _segments_rgba(instance_ids: np.ndarray) -> np.ndarray:
    """Segments' bitmap encoding: the id's little-endian bytes in R, G, B; A always 255."""
    rgba = instance_ids.astype("<u4")[:, :, None].view(np.uint8).copy()
    rgba[:, :, 3] = 255
    return rgba


def _vector_shapes(shape: Shape) -> list[tuple[VectorType, list[Point]]]:
    """The Segments vector annotations that express `shape`: none for masks, one point per labelled
    keypoint."""
    match shape:
        case BoxShape(box=(x1, y1, x2, y2)):
            return [("bbox", [(x1, y1), (x2, y2)])]
        case PolygonShape(points=points):
            return [("polygon", points)]
        case PolylineShape(points=points):
            return [("polyline", points)]
        case PointShape(point=point):
            return [("point", [point])]
        case KeypointsShape(keypoints=keypoints):
            return [("point", [(x, y)]) for x, y, visibility in keypoints if visibility]
    return []


def _rgb(color: str) -> tuple[int, int, int]:
    """ "#rrggbb" → (r, g, b), Segments' category colour."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
