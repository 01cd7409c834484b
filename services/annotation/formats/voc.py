"""Pascal VOC: export a release's labelset as `Annotations/<stem>.xml` per sample plus
`ImageSets/Main/default.txt`, and parse such a directory for import.

VOC boxes are 1-based and pixel-inclusive: a box (x1, y1, x2, y2) of Loupe's coordinates is written
xmin = x1 + 1, ymin = y1 + 1, xmax = x2, ymax = y2, and read back the same way (an xmin or ymin of 0,
written by 0-based tools, is read as 0). Numbers are integers when whole, else at most 2 decimals.
Every box, polygon and mask is written as its bbox; polylines, points and keypoints are skipped and
counted. Stems are those of the YOLO export (`filename` is the stem plus the sample name's extension,
the name the image should have in JPEGImages/).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

import msgspec

from proto.annotation import BoxShape
from proto.releases import ReleaseSample
from services.annotation import geometry
from services.annotation.formats.imported import ImportedImage, ImportedObject
from services.annotation.formats.stats import ExportStats
from services.annotation.formats.target import ExportTarget
from services.annotation.formats.yolo import Stems
from shared.errors import invalid

ANNOTATIONS = "Annotations"

# -- export -----------------------------------------------------------------------------------------


def export(target: ExportTarget, samples: Iterable[ReleaseSample]) -> ExportStats:
    class_names = {c.id: c.name for c in target.header.label_schema.label_classes}
    annotations_dir = target.out_dir / ANNOTATIONS
    sets_dir = target.out_dir / "ImageSets" / "Main"
    annotations_dir.mkdir(parents=True, exist_ok=True)
    sets_dir.mkdir(parents=True, exist_ok=True)
    stems = Stems()
    stats = ExportStats()
    with (sets_dir / "default.txt").open("w", encoding="utf-8") as image_set:
        for sample in samples:
            stats.samples += 1
            stem = stems(sample.name)
            image_set.write(f"{stem}\n")
            root = _annotation(sample, stem)
            for obj, name in target.objects(sample, class_names, stats):
                if not isinstance(obj.shape, geometry.AREA_SHAPES):
                    stats.skip(f"{obj.shape.__struct_config__.tag}: no VOC form")
                    continue
                x, y, w, h = geometry.bbox_xywh(obj.shape, sample.height, sample.width)
                if not (w > 0 and h > 0):
                    stats.skip("mask: empty")
                    continue
                _object(root, name, (x, y, x + w, y + h))
                stats.objects += 1
            ET.indent(root)
            ET.ElementTree(root).write(annotations_dir / f"{stem}.xml", encoding="utf-8")
    return stats


def _annotation(sample: ReleaseSample, stem: str) -> ET.Element:
    root = ET.Element("annotation")
    _add(root, "folder", "JPEGImages")
    _add(root, "filename", stem + PurePosixPath(sample.name.replace("\\", "/")).suffix)
    size = ET.SubElement(root, "size")
    _add(size, "width", str(sample.width))
    _add(size, "height", str(sample.height))
    _add(size, "depth", "3")
    _add(root, "segmented", "0")
    return root


def _object(root: ET.Element, name: str, box: tuple[float, float, float, float]) -> None:
    element = ET.SubElement(root, "object")
    _add(element, "name", name)
    _add(element, "pose", "Unspecified")
    _add(element, "truncated", "0")
    _add(element, "difficult", "0")
    bndbox = ET.SubElement(element, "bndbox")
    x1, y1, x2, y2 = box
    for tag, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
        _add(bndbox, tag, _number(value))


def _add(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _number(value: float) -> str:
    rounded = round(float(value), 2)
    return str(int(rounded)) if rounded.is_integer() else f"{rounded:.2f}".rstrip("0")


# -- import -----------------------------------------------------------------------------------------


def parse(path: Path) -> Iterator[ImportedImage]:
    """The images of an extracted VOC dataset, one per `Annotations/**/*.xml`, in path order."""
    annotations_dir = path / ANNOTATIONS
    if not annotations_dir.is_dir():
        raise invalid(
            "the VOC dataset has no `Annotations` directory: put the XML files in Annotations/",
            file=ANNOTATIONS,
            path=ANNOTATIONS,
        )
    for xml_file in sorted(annotations_dir.rglob("*.xml")):
        yield _image(xml_file, f"{ANNOTATIONS}/{xml_file.relative_to(annotations_dir).as_posix()}")


class _Where(msgspec.Struct, frozen=True):
    """An element of an annotation file, for error messages."""

    file: str
    element: str  # e.g. `annotation.object[2]`
    what: str  # e.g. `object 2 (dog)`

    def error(self, field: str, problem: str) -> Exception:
        return invalid(f"{self.file}: {self.what}: `{field}` {problem}", file=self.file, path=f"{self.element}.{field}")


def _image(xml_file: Path, name: str) -> ImportedImage:
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as e:
        raise invalid(f"{name} is not well-formed XML ({e})", file=name, path="annotation") from None
    where = _Where(name, "annotation", "the annotation")
    if root.tag != "annotation":
        raise where.error("annotation", f"is missing: the root element is <{root.tag}>")
    file_name = _text(root, "filename", where)
    width, height = (_size(root, field, where) for field in ("size.width", "size.height"))
    objects = []
    for i, element in enumerate(root.findall("object")):
        class_name = _text(element, "name", _Where(name, f"annotation.object[{i}]", f"object {i}"))
        objects.append(_box(element, class_name, _Where(name, f"annotation.object[{i}]", f"object {i} ({class_name})")))
    return ImportedImage(file_name=file_name, width=width, height=height, objects=objects)


def _box(element: ET.Element, class_name: str, where: _Where) -> ImportedObject:
    xmin, ymin, xmax, ymax = (_coordinate(element, f"bndbox.{tag}", where) for tag in ("xmin", "ymin", "xmax", "ymax"))
    box = (max(xmin - 1, 0.0), max(ymin - 1, 0.0), xmax, ymax)
    if not (box[0] < box[2] and box[1] < box[3]):
        raise where.error(
            "bndbox",
            f"spans ({xmin}, {ymin}) to ({xmax}, {ymax}): xmax must exceed xmin - 1 and "
            "ymax ymin - 1 (VOC boxes are 1-based and include their last pixel)",
        )
    return ImportedObject(class_name=class_name, shape=BoxShape(box=box))


def _text(element: ET.Element, field: str, where: _Where) -> str:
    text = element.findtext(field.replace(".", "/"))
    if not text or not text.strip():
        raise where.error(field, "is missing or empty")
    return text.strip()


def _coordinate(element: ET.Element, field: str, where: _Where) -> float:
    text = _text(element, field, where)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise where.error(field, f"is {text!r}, not a number")
    return value


def _size(root: ET.Element, field: str, where: _Where) -> int | None:
    """The image's width or height; None when left out or 0 (some tools write 0 when unknown)."""
    text = root.findtext(field.replace(".", "/"))
    if text is None or not text.strip():
        return None
    try:
        value = int(text)
    except ValueError:
        raise where.error(field, f"is {text!r}, not a whole number of pixels") from None
    return value or None
