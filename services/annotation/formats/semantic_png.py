"""Semantic segmentation export: one grayscale PNG per labelled sample, `masks/<stem>.png`, whose
pixels are 1-based class indexes (0 is background), plus `classes.csv` mapping indexes to classes.

Boxes, polygons (holes stay background) and masks are painted in ascending `z_index`, so an object
drawn later wins where objects overlap; polylines, points and keypoints cover no area and are
counted as skipped. PNGs are 8-bit, or 16-bit when the schema has more than 255 classes.

Also home of what the other pixel-writing formats share (Segments bitmaps, Hasty masks): class
numbers, shape → RLE with the image-size check, painting order, and the error naming the object.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any, overload

import msgspec
import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from proto.annotation import LabelObject, MaskShape, Shape
from proto.releases import ReleaseSample
from proto.schema import LabelClass, LabelSchema
from services.annotation import geometry
from services.annotation.formats.coco import sorted_classes
from services.annotation.formats.stats import ExportStats
from services.annotation.formats.target import ExportTarget
from services.annotation.formats.yolo import Stems
from shared.errors import LoupeError, invalid

CocoRle = dict[str, Any]  # pycocotools' {"size": [h, w], "counts": str}


class ObjectRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where an object sits in the release, to name it in error messages."""

    sample: ReleaseSample
    labelset: str
    index: int
    class_name: str

    def error(self, field: str, message: str) -> LoupeError:
        return invalid(
            f"sample {self.sample.name!r} ({self.sample.id}), labelset {self.labelset!r}, object "
            f"{self.index} (class {self.class_name!r}): {message}",
            path=f"$.labels.{self.labelset}.objects[{self.index}].{field}",
        )


class ClassIndex:
    """The release's label classes in export order, by (order, name) with archived ones included, and
    their 1-based numbers in it (COCO, Segments and semantic PNG category ids)."""

    def __init__(self, schema: LabelSchema) -> None:
        self.classes = sorted_classes(schema)
        self.numbers = {label_class.id: number for number, label_class in enumerate(self.classes, start=1)}

    def ref(self, sample: ReleaseSample, labelset: str, index: int, obj: LabelObject) -> ObjectRef:
        """The object's reference; raises when its class is not in the release's schema."""
        number = self.numbers.get(obj.class_id)
        if number is None:
            raise ObjectRef(sample=sample, labelset=labelset, index=index, class_name=obj.class_id).error(
                "class_id", f"class {obj.class_id} is not in the release's label schema; rebuild the release"
            )
        return ObjectRef(sample=sample, labelset=labelset, index=index, class_name=self.classes[number - 1].name)


@overload
def area_rle(shape: geometry.AreaShape, ref: ObjectRef) -> CocoRle: ...
@overload
def area_rle(shape: Shape, ref: ObjectRef) -> CocoRle | None: ...
def area_rle(shape: Shape, ref: ObjectRef) -> CocoRle | None:
    """The pixels `shape` covers in its sample's image, as geometry.to_rle gives them; None for shapes
    that cover no area (polylines, points, keypoints)."""
    height, width = ref.sample.height, ref.sample.width
    if not isinstance(shape, geometry.AREA_SHAPES):
        return None
    if isinstance(shape, MaskShape):
        if shape.rle is None and shape.png is None:
            raise ref.error("shape", "the mask has neither `rle` nor `png`; rebuild the release")
        if shape.rle is not None and tuple(shape.rle.size) != (height, width):
            raise ref.error(
                "shape.rle.size",
                f"the mask is {shape.rle.size[0]}×{shape.rle.size[1]} but the image "
                f"is {height}×{width}; masks must have the image's size",
            )
    return geometry.to_rle(shape, height, width)


def shape_type(shape: Shape) -> str:
    """The shape's "type" tag: msgspec keeps tags in the struct's config, not as an attribute."""
    return str(shape.__struct_config__.tag)


def painting_order(objects: list[LabelObject]) -> list[tuple[int, LabelObject]]:
    """(index in the label, object) by ascending z_index; equal z_index keep the label's order."""
    return sorted(enumerate(objects), key=lambda indexed: indexed[1].z_index)


def export(target: ExportTarget, samples: Iterable[ReleaseSample]) -> ExportStats:
    """Write `masks/<stem>.png` for each sample with a label in `labelset` and `classes.csv`. `task` and
    `image_url` do not apply: the PNGs are always area masks and carry no image references."""
    classes = ClassIndex(target.header.label_schema)
    _write_classes_csv(classes.classes, target.out_dir / "classes.csv")
    pixel_type = np.uint8 if len(classes.classes) <= 255 else np.uint16
    masks_dir = target.out_dir / "masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    stems = Stems()
    stats = ExportStats()
    for sample in samples:
        label = sample.labels.get(target.labelset)
        if label is None:
            continue
        canvas = np.zeros((sample.height, sample.width), dtype=pixel_type)
        for index, obj in painting_order(label.objects):
            rle = area_rle(obj.shape, classes.ref(sample, target.labelset, index, obj))
            if rle is None:
                stats.skip(f"{shape_type(obj.shape)}: not an area shape")
                continue
            canvas[coco_mask.decode(rle).view(bool)] = classes.numbers[obj.class_id]
            stats.objects += 1
        Image.fromarray(canvas).save(masks_dir / f"{stems(sample.name)}.png")
        stats.samples += 1
    return stats


def _write_classes_csv(classes: list[LabelClass], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["index", "class_id", "name", "color"])
        for index, label_class in enumerate(classes, start=1):
            writer.writerow([index, label_class.id, label_class.name, label_class.color])
