"""COCO: export a release's labelset as one `annotations.json` (object detection, instance
segmentation and keypoints in one file) and parse such a file for import.

Export decisions:
- Category ids are 1-based in the schema's class order (`order`, then name); `loupe_sample_id` and
  `loupe_object_id` lead back to Loupe; `coco_url` is left out for an image without a URL.
- "detection": boxes, polygons and masks become their bbox with `segmentation: []` and `area` the
  shape's area (a polygon's exact area, a mask's pixel count).
- "segmentation": polygons without holes are written as polygons, polygons with holes and masks as
  compressed RLE, boxes as 4-point polygons. Boxes and polygons keep their exact area and the extent
  of their points as bbox (as in COCO's own files); an RLE has pycocotools' pixel count as area and
  its `toBbox` as bbox.
- Keypoints are written in both tasks: `keypoints` [x, y, v, ...], the bbox and area of the labelled
  points (v > 0; a hidden point's position is known too), `segmentation: []`.
- Polylines and points have no COCO form: skipped and counted.
The file streams: images go straight to the output while annotations go to a temporary file in the
output directory, appended after the images at the end.

Import decisions: the whole file is decoded at once (COCO files are one JSON document). A polygon
annotation of one part becomes a polygon; of several parts, one mask (COCO draws them as one object).
An RLE (compressed or list counts, crowd or not) becomes a mask. An annotation with keypoints gives a
keypoints object, plus its segmentation when it has one. An annotation with only a bbox gives a box.
`score` becomes the confidence; an `attributes` object (CVAT writes one) is kept as attribute values.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from pycocotools import mask as mask_utils

from proto.annotation import BoxShape, KeypointsShape, LabelObject, MaskShape, PolygonShape, Rle, Shape, Visibility
from proto.releases import ReleaseHeader, ReleaseSample
from proto.schema import LabelClass, LabelSchema
from services.annotation import geometry
from services.annotation.formats.imported import ImportedImage, ImportedObject
from services.annotation.formats.jsonstream import StreamedArray
from services.annotation.formats.stats import ExportStats
from services.annotation.formats.target import ExportTarget
from shared.errors import invalid

FILE_NAME = "annotations.json"
VISIBILITIES: dict[float, Visibility] = {0: 0, 1: 1, 2: 2}  # COCO files may write them as 2.0

# -- export -----------------------------------------------------------------------------------------


class _Category(msgspec.Struct, omit_defaults=True):
    id: int
    name: str
    supercategory: str
    keypoints: list[str] | None = None
    skeleton: list[tuple[int, int]] | None = None


class _Image(msgspec.Struct, omit_defaults=True):
    id: int
    file_name: str
    width: int
    height: int
    loupe_sample_id: str
    coco_url: str | None = None


class _Annotation(msgspec.Struct, omit_defaults=True):
    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: int
    segmentation: list[list[float]] | dict[str, Any]
    loupe_object_id: str
    score: float | None = None
    keypoints: list[float] | None = None
    num_keypoints: int | None = None


def sorted_classes(schema: LabelSchema) -> list[LabelClass]:
    """The label classes in export order: by `order`, then name (archived ones included)."""
    return sorted(schema.label_classes, key=lambda c: (c.order, c.name))


def export(target: ExportTarget, samples: Iterable[ReleaseSample]) -> ExportStats:
    classes = sorted_classes(target.header.label_schema)
    category_ids = {c.id: i for i, c in enumerate(classes, 1)}
    stats = ExportStats()
    encoder = msgspec.json.Encoder()
    head = {
        "info": _info(target.header),
        "licenses": [],
        "categories": _categories(target.header.label_schema, classes),
    }
    with (target.out_dir / FILE_NAME).open("wb") as out, tempfile.TemporaryFile(dir=target.out_dir) as pending:
        out.write(encoder.encode(head)[:-1] + b',"images":')
        images = StreamedArray(out, encoder)
        annotations = StreamedArray(pending, encoder)
        for image_id, sample in enumerate(samples, 1):
            stats.samples += 1
            images.append(
                _Image(
                    id=image_id,
                    file_name=sample.name,
                    width=sample.width,
                    height=sample.height,
                    loupe_sample_id=sample.id,
                    coco_url=target.image_url(sample),
                )
            )
            for obj, category_id in target.objects(sample, category_ids, stats):
                annotation = _annotation(obj, annotations.count + 1, image_id, category_id, sample, target.task)
                if annotation is None:
                    stats.skip(f"{obj.shape.__struct_config__.tag}: no COCO form")
                    continue
                annotations.append(annotation)
        stats.objects = annotations.count
        images.close()
        out.write(b',"annotations":')
        annotations.close()
        pending.seek(0)
        shutil.copyfileobj(pending, out, 1 << 20)
        out.write(b"}")
    return stats


def _info(header: ReleaseHeader) -> dict[str, Any]:
    release = header.release
    return {
        "description": release.description or release.name,
        "version": release.name,
        "year": release.created_at.year,
        "contributor": header.project.name,
        "url": "",
        "date_created": release.created_at.isoformat(),
        "loupe_release_id": release.id,
    }


def _categories(schema: LabelSchema, classes: list[LabelClass]) -> list[_Category]:
    keypoint_schemas = {k.id: k for k in schema.keypoint_schemas}
    categories = []
    for category_id, label_class in enumerate(classes, 1):
        keypoints = keypoint_schemas.get(label_class.keypoint_schema_id or "")
        categories.append(
            _Category(
                id=category_id,
                name=label_class.name,
                supercategory="",
                keypoints=keypoints.keypoints if keypoints else None,
                skeleton=[(a + 1, b + 1) for a, b in keypoints.skeleton] if keypoints else None,
            )
        )
    return categories


def _annotation(
    obj: LabelObject, annotation_id: int, image_id: int, category_id: int, sample: ReleaseSample, task: str
) -> _Annotation | None:
    """The object as a COCO annotation, or None when COCO cannot express its shape."""
    shape = obj.shape
    segmentation: list[list[float]] | dict[str, Any] = []
    keypoints = num_keypoints = None
    if type(shape) is BoxShape:  # the hot path: plain arithmetic
        x1, y1, x2, y2 = shape.box
        bbox = (x1, y1, x2 - x1, y2 - y1)
        area = bbox[2] * bbox[3]
        if task == "segmentation":
            segmentation = [[x1, y1, x2, y1, x2, y2, x1, y2]]
    elif type(shape) is KeypointsShape:
        keypoints = [c for x, y, v in shape.keypoints for c in ((x, y, v) if v else (0, 0, 0))]
        num_keypoints = sum(1 for _, _, v in shape.keypoints if v)
        bbox = geometry.bbox_xywh(shape, sample.height, sample.width) or (0.0, 0.0, 0.0, 0.0)
        area = bbox[2] * bbox[3]
    elif not isinstance(shape, (PolygonShape, MaskShape)):
        return None
    elif task == "detection":
        bbox = geometry.bbox_xywh(shape, sample.height, sample.width)
        area = geometry.area(shape, sample.height, sample.width)
    elif type(shape) is PolygonShape and not shape.holes:
        segmentation = [[c for point in shape.points for c in point]]
        bbox = geometry.bbox_xywh(shape, sample.height, sample.width)
        area = geometry.area(shape, sample.height, sample.width)
    else:
        segmentation = geometry.to_rle(shape, sample.height, sample.width)
        bbox = tuple(mask_utils.toBbox(segmentation).tolist())
        area = float(mask_utils.area(segmentation))
    return _Annotation(
        id=annotation_id,
        image_id=image_id,
        category_id=category_id,
        bbox=bbox,
        area=area,
        iscrowd=0,
        segmentation=segmentation,
        loupe_object_id=obj.id,
        score=obj.confidence,
        keypoints=keypoints,
        num_keypoints=num_keypoints,
    )


# -- import -----------------------------------------------------------------------------------------


class _InImage(msgspec.Struct):
    id: int | str
    file_name: str
    width: int | None = None
    height: int | None = None


class _InCategory(msgspec.Struct):
    id: int | str
    name: str


class _InRle(msgspec.Struct):
    size: tuple[int, int]
    counts: str | list[int]


class _InAnnotation(msgspec.Struct):
    image_id: int | str
    category_id: int | str
    id: int | str | None = None
    bbox: tuple[float, float, float, float] | None = None
    segmentation: list[list[float]] | _InRle | None = None
    keypoints: list[float] | None = None
    score: float | None = None
    attributes: dict[str, Any] = {}


class _InFile(msgspec.Struct):
    images: list[_InImage]
    categories: list[_InCategory]
    annotations: list[_InAnnotation] = []


_ERROR_PATH = re.compile(r" - at `(\$[^`]*)`$")


def parse(path: Path) -> Iterator[ImportedImage]:
    """The images of a COCO annotation file, in the file's order, each with its annotations."""
    try:
        coco = msgspec.json.decode(path.read_bytes(), type=_InFile)
    except msgspec.ValidationError as e:
        match = _ERROR_PATH.search(str(e))
        raise invalid(
            f"{path.name}: {e}; fix the file to follow the COCO format",
            file=path.name,
            path=match.group(1) if match else "$",
        ) from None
    except msgspec.DecodeError as e:
        raise invalid(f"{path.name} is not valid JSON: {e}", file=path.name, path="$") from None
    images = {image.id: image for image in coco.images}
    classes = {category.id: category.name for category in coco.categories}
    objects_by_image: dict[int | str, list[ImportedObject]] = {image.id: [] for image in coco.images}
    for index, annotation in enumerate(coco.annotations):
        where = _Where(path.name, index, annotation.id)
        image = images.get(annotation.image_id)
        if image is None:
            raise where.error("image_id", f"names image {annotation.image_id!r}, which `images` lacks")
        class_name = classes.get(annotation.category_id)
        if class_name is None:
            raise where.error("category_id", f"names category {annotation.category_id!r}, which `categories` lacks")
        objects_by_image[image.id] += [
            ImportedObject(
                class_name=class_name, shape=shape, confidence=annotation.score, attributes=annotation.attributes
            )
            for shape in _shapes(annotation, image, where)
        ]
    for image in coco.images:
        yield ImportedImage(
            file_name=image.file_name, width=image.width, height=image.height, objects=objects_by_image[image.id]
        )


class _Where(msgspec.Struct, frozen=True):
    """An annotation of the file, for error messages."""

    file: str
    index: int
    id: int | str | None

    def error(self, field: str, problem: str) -> Exception:
        return invalid(
            f"{self.file}: annotation {self.index} (id {self.id}): `{field}` {problem}",
            file=self.file,
            path=f"$.annotations[{self.index}].{field}",
        )


def _shapes(annotation: _InAnnotation, image: _InImage, where: _Where) -> list[Shape]:
    shapes: list[Shape] = []
    if annotation.keypoints:
        shapes.append(_keypoints(annotation.keypoints, where))
    segmentation = annotation.segmentation
    if isinstance(segmentation, _InRle):
        shapes.append(MaskShape(rle=_rle(segmentation, image, where)))
    elif segmentation:
        shapes.append(_polygons(segmentation, image, where))
    elif annotation.bbox is not None and not shapes:
        x, y, w, h = annotation.bbox
        if not (w > 0 and h > 0):
            raise where.error("bbox", f"has width {w} and height {h}: both must be positive")
        shapes.append(BoxShape(box=(x, y, x + w, y + h)))
    if not shapes:
        raise where.error("segmentation", "is empty and the annotation has no bbox or keypoints: give one")
    return shapes


def _keypoints(values: list[float], where: _Where) -> KeypointsShape:
    if len(values) % 3:
        raise where.error("keypoints", f"has {len(values)} numbers: give x, y, v for each keypoint")
    triples = [tuple(values[i : i + 3]) for i in range(0, len(values), 3)]
    if any(v not in VISIBILITIES for _, _, v in triples):
        raise where.error("keypoints", "has a visibility other than 0, 1 or 2")
    return KeypointsShape(keypoints=[(x, y, VISIBILITIES[v]) for x, y, v in triples])


def _rle(rle: _InRle, image: _InImage, where: _Where) -> Rle:
    height, width = rle.size
    if image.height is not None and (height, width) != (image.height, image.width):
        raise where.error(
            "segmentation.size", f"is [{height}, {width}] but the image is {image.height} high and {image.width} wide"
        )
    if isinstance(rle.counts, list) and sum(rle.counts) != height * width:
        raise where.error("segmentation.counts", f"add up to {sum(rle.counts)} pixels, not {height} × {width}")
    return geometry.compress_rle(Rle(size=(height, width), counts=rle.counts))


def _polygons(polygons: list[list[float]], image: _InImage, where: _Where) -> PolygonShape | MaskShape:
    for i, polygon in enumerate(polygons):
        if len(polygon) < 6 or len(polygon) % 2:
            raise where.error(
                f"segmentation[{i}]", f"has {len(polygon)} numbers: a polygon needs x, y pairs of at least 3 points"
            )
    if len(polygons) == 1:
        flat = polygons[0]
        return PolygonShape(points=list(zip(flat[::2], flat[1::2], strict=True)))
    if image.height is None or image.width is None:
        raise where.error(
            "segmentation",
            "has several polygons, drawn as one mask, but the image has no width and height: add them to the image",
        )
    merged = mask_utils.merge(mask_utils.frPyObjects(polygons, image.height, image.width))
    return MaskShape(rle=Rle(size=(image.height, image.width), counts=merged["counts"].decode()))
