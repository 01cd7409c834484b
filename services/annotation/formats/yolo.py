"""YOLO in Ultralytics' layout: export a release's labelset as `data.yaml`, `labels/<stem>.txt` per
sample and `images.txt`, and parse such a directory for import.

Export decisions:
- Class indexes are 0-based in the schema's class order (`order`, then name).
- "detection": one `class cx cy w h` line per box, polygon or mask (its bbox), normalized to [0, 1]
  with 6 decimals. "segmentation": `class x1 y1 x2 y2 ...`, the normalized outer ring of a polygon
  (boxes as their 4 corners); masks would need tracing into polygons, so they are skipped, like
  polylines, points and keypoints, and counted.
- A sample's stem is its name's last path segment without the extension; a stem met before (in any
  case) gets `_2`, `_3`... in sample order. Every sample gets a label file, empty when it has no
  objects: a YOLO image without objects is a background image.
- `images.txt` lists `<stem>\t<image URL, or its name when it has none>` to fetch the images into
  `images/` (as `<stem>` plus the image's extension).
- `data.yaml` is written by hand; class names are YAML double-quoted strings (JSON strings are ones).

Import: `labels/**/*.txt` with the class names of `data.yaml` (or of the directory's only `.yaml`).
YOLO names an image by its path without extension: `file_name` is the label file's path below
`labels/` without `.txt` (`labels/train/a.txt` → `train/a`), and the caller matches it to the image
with that path and any extension below the images root. `sizes` gives that image's (width, height) to
scale the normalized coordinates back to pixels; an image it does not know is yielded without
objects and without a size (the import then reports the image as missing).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

import msgspec

from proto.annotation import BoxShape, PolygonShape, Shape
from proto.releases import ReleaseSample
from proto.schema import LabelClass
from services.annotation import geometry
from services.annotation.formats.coco import sorted_classes
from services.annotation.formats.imported import ImportedImage, ImportedObject
from services.annotation.formats.stats import ExportStats
from services.annotation.formats.target import ExportTarget
from shared.errors import invalid

LABELS = "labels"
# Normalized coordinates this far outside [0, 1] are rounding, clamped; further out they are an error.
_TOLERANCE = 0.01

# -- export -----------------------------------------------------------------------------------------


class Stems:
    """Unique file stems for samples (YOLO and Pascal VOC name files after them), deterministic for a
    given order of samples."""

    def __init__(self) -> None:
        self._used: set[str] = set()  # lowercased: some file systems ignore case

    def __call__(self, name: str) -> str:
        base = PurePosixPath(name.replace("\\", "/")).stem or "image"
        stem, n = base, 1
        while stem.lower() in self._used:
            n += 1
            stem = f"{base}_{n}"
        self._used.add(stem.lower())
        return stem


def export(target: ExportTarget, samples: Iterable[ReleaseSample]) -> ExportStats:
    classes = sorted_classes(target.header.label_schema)
    class_indexes = {c.id: i for i, c in enumerate(classes)}
    (target.out_dir / "data.yaml").write_text(_data_yaml(classes), encoding="utf-8")
    labels_dir = target.out_dir / LABELS
    labels_dir.mkdir(exist_ok=True)
    stems = Stems()
    stats = ExportStats()
    with (target.out_dir / "images.txt").open("w", encoding="utf-8") as images:
        for sample in samples:
            stats.samples += 1
            stem = stems(sample.name)
            images.write(f"{stem}\t{target.image_url(sample) or sample.name}\n")
            lines = []
            for obj, index in target.objects(sample, class_indexes, stats):
                coordinates = _coordinates(obj.shape, sample.width, sample.height, target.task)
                if coordinates is None:
                    stats.skip(f"{obj.shape.__struct_config__.tag}: no YOLO {target.task} form")
                    continue
                lines.append(f"{index} {coordinates}\n")
            (labels_dir / f"{stem}.txt").write_text("".join(lines), encoding="utf-8")
            stats.objects += len(lines)
    return stats


def _data_yaml(classes: list[LabelClass]) -> str:
    names = "".join(f"  {i}: {msgspec.json.encode(c.name).decode()}\n" for i, c in enumerate(classes))
    return (
        "# Exported by Loupe. Fetch the images listed in images.txt into images/, named <stem> plus\n"
        "# their extension; the labels are in labels/.\n"
        f"path: .\ntrain: images\nval: images\nnc: {len(classes)}\nnames:\n{names}"
    )


def _coordinates(shape: Shape, width: int, height: int, task: str) -> str | None:
    """The normalized coordinates of a label line, or None when the shape has no form in this task."""
    if task == "detection" and isinstance(shape, geometry.AREA_SHAPES):
        x, y, w, h = geometry.bbox_xywh(shape, height, width)
        x1, y1 = _clamp(x / width), _clamp(y / height)
        x2, y2 = _clamp((x + w) / width), _clamp((y + h) / height)
        if x2 <= x1 or y2 <= y1:  # an empty mask
            return None
        return f"{(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}"
    if task == "segmentation" and isinstance(shape, BoxShape):
        x1, y1, x2, y2 = shape.box
        return _polygon([(x1, y1), (x2, y1), (x2, y2), (x1, y2)], width, height)
    if task == "segmentation" and isinstance(shape, PolygonShape):
        return _polygon(shape.points, width, height)
    return None


def _polygon(points: list[tuple[float, float]], width: int, height: int) -> str:
    return " ".join(f"{_clamp(x / width):.6f} {_clamp(y / height):.6f}" for x, y in points)


def _clamp(value: float) -> float:
    return min(max(value, 0.0), 1.0)


# -- import -----------------------------------------------------------------------------------------


def parse(path: Path, sizes: Callable[[str], tuple[int, int] | None]) -> Iterator[ImportedImage]:
    """The images of an extracted YOLO dataset, one per label file, in path order."""
    names = read_names(_data_file(path))
    labels_dir = path / LABELS
    if not labels_dir.is_dir():
        raise invalid(
            "the YOLO dataset has no `labels` directory: put the label files in labels/", file=LABELS, path=LABELS
        )
    for label_file in sorted(labels_dir.rglob("*.txt")):
        file_name = label_file.relative_to(labels_dir).with_suffix("").as_posix()
        size = sizes(file_name)
        if size is None:
            yield ImportedImage(file_name=file_name, width=None, height=None, objects=[])
            continue
        width, height = size
        where = f"{LABELS}/{file_name}.txt"
        objects = []
        for number, line in enumerate(label_file.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                objects.append(_object(line, names, width, height, _Line(where, number)))
        yield ImportedImage(file_name=file_name, width=width, height=height, objects=objects)


class _Line(msgspec.Struct, frozen=True):
    """A line of a label file, for error messages."""

    file: str
    number: int

    def error(self, field: str, problem: str) -> Exception:
        return invalid(
            f"{self.file}, line {self.number}: {field} {problem}",
            file=self.file,
            line=self.number,
            field=field,
            path=f"{self.file}:{self.number}",
        )


def _object(line: str, names: list[str], width: int, height: int, where: _Line) -> ImportedObject:
    first, *rest = line.split()
    if not first.isdigit() or int(first) >= len(names):
        raise where.error("the class", f"{first!r} is not an index of data.yaml's names (0 to {len(names) - 1})")
    values = [_coordinate(text, where) for text in rest]
    if len(values) == 4:
        cx, cy, w, h = values
        if not (w > 0 and h > 0):
            raise where.error("the box", f"has width {w} and height {h}: both must be positive")
        shape: Shape = BoxShape(
            box=((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        )
    elif len(values) >= 6 and len(values) % 2 == 0:
        shape = PolygonShape(points=[(x * width, y * height) for x, y in zip(values[::2], values[1::2], strict=True)])
    else:
        raise where.error(
            "the coordinates",
            f"are {len(values)} numbers: give `cx cy w h` for a box or `x1 y1 x2 y2 x3 y3 ...` for a polygon",
        )
    return ImportedObject(class_name=names[int(first)], shape=shape)


def _coordinate(text: str, where: _Line) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not -_TOLERANCE <= value <= 1 + _TOLERANCE:
        raise where.error(
            "a coordinate", f"{text!r} is not a number between 0 and 1 (coordinates are normalized by the image's size)"
        )
    return _clamp(value)


def _data_file(path: Path) -> Path:
    candidates = [path / "data.yaml"] if (path / "data.yaml").is_file() else sorted(path.glob("*.yaml"))
    if len(candidates) != 1:
        raise invalid(
            "a YOLO dataset needs one data.yaml (with the class `names`) at its root",
            file="data.yaml",
            path="data.yaml",
        )
    return candidates[0]


def read_names(file: Path) -> list[str]:
    """The class names of a YOLO data.yaml's `names`: a list or an index → name mapping, in block or
    flow style. Only that key is read, so a small reader does instead of a YAML library."""
    lines = file.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        key, colon, rest = _uncomment(line).partition(":")
        if key.rstrip() != "names" or not colon:
            continue
        rest = rest.strip()
        items: list[tuple[int | None, str]]
        if rest.startswith("["):
            items = [(None, item) for item in _split(rest.strip("[]"), ",")]
        elif rest.startswith("{"):
            items = [_entry(item, file) for item in _split(rest.strip("{}"), ",")]
        else:
            items = [_entry(entry, file) for entry in _block(lines[i + 1 :])]
        return _ordered(items, file)
    raise invalid(
        f"{file.name} has no `names`: list the class names, e.g. `names: [person, car]`", file=file.name, path="names"
    )


def _block(lines: list[str]) -> list[str]:
    """The entries of a block list or mapping: the lines after the key, up to the next top-level key."""
    entries = []
    for line in lines:
        text = _uncomment(line)
        if not text.strip():
            continue
        if not (text[0].isspace() or text.startswith("-")):
            break
        entries.append(text.strip())
    return entries


def _entry(entry: str, file: Path) -> tuple[int | None, str]:
    """A list item (`- name`) or a mapping entry (`0: name`)."""
    if entry.startswith("-"):
        return None, entry[1:]
    index, colon, name = entry.partition(":")
    if not colon or not index.strip().isdigit():
        raise invalid(
            f"{file.name}: `names` entry {entry!r} is not `index: name` or `- name`", file=file.name, path="names"
        )
    return int(index), name


def _ordered(items: list[tuple[int | None, str]], file: Path) -> list[str]:
    if all(index is None for index, _ in items):
        return [_scalar(name, file) for _, name in items]
    numbered = {index: name for index, name in items if index is not None}
    if len(numbered) != len(items) or sorted(numbered) != list(range(len(items))):
        raise invalid(
            f"{file.name}: the `names` indexes must be 0 to {len(items) - 1}, each once", file=file.name, path="names"
        )
    return [_scalar(numbered[index], file) for index in range(len(items))]


def _scalar(text: str, file: Path) -> str:
    text = text.strip()
    if text.startswith('"'):
        try:
            return json.loads(text)  # YAML's double-quoted escapes are JSON's
        except ValueError:
            raise invalid(
                f"{file.name}: the class name {text} is not a well-formed quoted string", file=file.name, path="names"
            ) from None
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return text


def _split(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside quotes, blank parts dropped."""
    cuts = [i for i, char in _unquoted(text) if char == separator]
    parts = [text[start + 1 : end] for start, end in zip([-1, *cuts], [*cuts, len(text)], strict=True)]
    return [part for part in parts if part.strip()]


def _uncomment(line: str) -> str:
    """`line` without its comment: from a `#` outside quotes that starts the line or follows a space."""
    for i, char in _unquoted(line):
        if char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _unquoted(text: str) -> Iterator[tuple[int, str]]:
    """The characters of `text` outside YAML quoted strings, with their index."""
    quote = ""
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif quote == '"' and char == "\\":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        else:
            yield i, char
