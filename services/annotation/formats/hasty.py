"""Hasty export in its `json_v1.1` format: one `export.json` with the project's label classes and
attributes and, streamed, every image with its status, tags and labels.

Labels carry `bbox` as [x1, y1, x2, y2] (Hasty's order, and Loupe's), `polygon` as the outer ring
[[x, y], ...], and `mask` as Hasty writes it: runs inside the bbox, row by row, as [start, length, ...] with
1-based starts (shared/hasty_format.py); a mask's bbox is the tight box of its pixels. A polygon with holes is
written as a mask, since Hasty polygons have none; an empty mask is skipped.
An image's `image_status` is its sample's status as Hasty spells it (Hasty's image statuses are Loupe's sample
statuses). Polylines, points and keypoints have no json_v1.1 form and are skipped; so are image-level attribute
values. Attribute values are keyed by attribute name, selection values by their text.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from proto.annotation import BoxShape, LabelObject, LabelStatus, MaskShape, Point, PolygonShape, Rle
from proto.releases import ReleaseLabel, ReleaseSample
from proto.schema import Attribute, LabelSchema
from services.annotation import geometry
from services.annotation.formats.jsonstream import STREAMED_ARRAY, streamed_json
from services.annotation.formats.segments import AttributeNames
from services.annotation.formats.semantic_png import ClassIndex, ObjectRef, area_rle, shape_type
from services.annotation.formats.stats import ExportStats
from services.annotation.formats.target import ExportTarget
from shared import hasty_format

EXPORT_FORMAT_VERSION = "1.1"
# An image's status where the release does not know its sample's (a release file written before releases kept
# it): derived from its label's. Label statuses missing here (UNLABELED, REJECTED) are NEW.
LABEL_IMAGE_STATUSES: dict[LabelStatus, str] = {
    "LABELED": "DONE",
    "REVIEWED": "COMPLETED",
    "VERIFIED": "COMPLETED",
    "LABELING_IN_PROGRESS": "IN PROGRESS",
    "REVIEWING_IN_PROGRESS": "TO REVIEW",
    "SKIPPED": "SKIPPED",
    "PRELABELED": "AUTO-LABELLED",
}
NEW_STATUS = "NEW"
Box = tuple[float, float, float, float]


class HastyLabelClass(msgspec.Struct, kw_only=True):
    class_name: str
    color: str
    class_type: str
    norder: int
    attributes: list[str]


class HastyAttribute(msgspec.Struct, kw_only=True):
    name: str
    type: str
    values: list[str]


class HastyLabel(msgspec.Struct, kw_only=True):
    id: str
    class_name: str
    bbox: Box
    polygon: list[Point] | None
    mask: list[int] | None
    z_index: int
    attributes: dict[str, Any]


class HastyImage(msgspec.Struct, kw_only=True):
    image_id: str
    image_name: str
    dataset_name: str
    width: int
    height: int
    image_status: str
    tags: list[str]
    labels: list[HastyLabel]


def export(target: ExportTarget, samples: Iterable[ReleaseSample]) -> ExportStats:
    """Write `export.json` with the labels of `labelset`. `task` and `image_url` do not apply: the
    file holds every shape Hasty has and no image links."""
    schema = target.header.label_schema
    classes = ClassIndex(schema)
    attribute_names = AttributeNames(schema)
    dataset_names = {dataset.id: dataset.name for dataset in target.header.datasets}
    tag_names = {tag.id: tag.name for group in schema.tag_groups for tag in group.tags}
    document = {
        "project_name": target.header.project.name,
        "create_date": target.header.release.created_at,
        "export_format_version": EXPORT_FORMAT_VERSION,
        "export_date": datetime.now(UTC),
        "label_classes": _label_classes(schema, classes),
        "attributes": [
            HastyAttribute(
                name=attribute.name,
                type=attribute.type.replace("_", "-"),
                values=[value.value for value in attribute.values],
            )
            for attribute in schema.attributes
            if attribute.subject == "LABEL"
        ],
        "images": STREAMED_ARRAY,
    }
    stats = ExportStats()
    with streamed_json(target.out_dir / "export.json", document) as images:
        for sample in samples:
            label = sample.labels.get(target.labelset)
            images.append(
                HastyImage(
                    image_id=sample.id,
                    image_name=sample.name,
                    dataset_name=dataset_names.get(sample.dataset_id, sample.dataset_id),
                    width=sample.width,
                    height=sample.height,
                    image_status=_image_status(sample, label),
                    tags=[tag_names.get(tag_id, tag_id) for tag_id in label.tag_class_ids] if label else [],
                    labels=_labels(sample, target.labelset, label, classes, attribute_names, stats) if label else [],
                )
            )
    stats.samples = images.count
    return stats


def _image_status(sample: ReleaseSample, label: ReleaseLabel | None) -> str:
    """The sample's status as Hasty spells it (Hasty's image statuses are Loupe's sample statuses)."""
    if sample.status is not None:
        return hasty_format.IMAGE_STATUSES[sample.status]
    return LABEL_IMAGE_STATUSES.get(label.status, NEW_STATUS) if label else NEW_STATUS


def _label_classes(schema: LabelSchema, classes: ClassIndex) -> list[HastyLabelClass]:
    def applies(attribute: Attribute, class_id: str) -> bool:
        return attribute.subject == "LABEL" and (not attribute.class_ids or class_id in attribute.class_ids)

    # Hasty writes colours as #RRGGBBAA; Loupe's are opaque #rrggbb.
    return [
        HastyLabelClass(
            class_name=label_class.name,
            color=f"{label_class.color}ff",
            class_type=label_class.kind,
            norder=label_class.order,
            attributes=[attribute.name for attribute in schema.attributes if applies(attribute, label_class.id)],
        )
        for label_class in classes.classes
    ]


def _labels(
    sample: ReleaseSample,
    labelset: str,
    label: ReleaseLabel,
    classes: ClassIndex,
    attribute_names: AttributeNames,
    stats: ExportStats,
) -> list[HastyLabel]:
    labels = []
    for index, obj in enumerate(label.objects):
        ref = classes.ref(sample, labelset, index, obj)
        parts = _geometry(obj, ref)
        if parts is None:
            stats.skip(f"{shape_type(obj.shape)}: no Hasty json_v1.1 form (or an empty mask)")
            continue
        bbox, polygon, mask = parts
        labels.append(
            HastyLabel(
                id=obj.id,
                class_name=ref.class_name,
                bbox=bbox,
                polygon=polygon,
                mask=mask,
                z_index=obj.z_index,
                attributes=attribute_names.named(obj.attributes),
            )
        )
        stats.objects += 1
    return labels


def _geometry(obj: LabelObject, ref: ObjectRef) -> tuple[Box, list[Point] | None, list[int] | None] | None:
    """(bbox, polygon, mask) of the object's label, or None when Hasty has no such shape."""
    match obj.shape:
        case BoxShape(box=box):
            return box, None, None
        case PolygonShape(points=points, holes=[]):
            return _bbox(obj.shape, ref), points, None
        case PolygonShape() | MaskShape():
            rle = area_rle(obj.shape, ref)
            found = hasty_format.from_coco(Rle(size=tuple(rle["size"]), counts=rle["counts"]))
            if found is None:
                return None
            bbox, runs = found
            return bbox, None, runs
    return None


def _bbox(shape: geometry.AreaShape, ref: ObjectRef) -> Box:
    x, y, width, height = geometry.bbox_xywh(shape, ref.sample.height, ref.sample.width)
    return x, y, x + width, y + height
