"""A release file (proto/releases.py's native format) as training examples: the task's label space from
the release's label schema, and each usable sample's image and targets, split into training and
validation.

numpy, Pillow and pycocotools only (no torch, no I/O beyond reading the files it is given), so it runs in
the trainer process and is tested on its own.

- Samples count only with a label in the run's labelset whose status says a person finished it
  (`USABLE_STATUSES`), and only with their original in Loupe's media (`content_hash`).
- Validation: samples of a dataset named like `VALIDATION_NAMES`; datasets named `test` are left out of
  both. Without a validation dataset, one sample in `HOLD_OUT` (by id) is held out, and at least one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask

from proto.annotation import BoxShape, MaskShape, PolygonShape
from proto.releases import ReleaseHeader, ReleaseLabel, ReleaseSample
from proto.schema import LabelSchema
from proto.training import Family
from services.training.ml.examples import Example
from shared.errors import invalid
from shared.predictions import TaskSpec

USABLE_STATUSES = frozenset({"LABELED", "REVIEWED", "VERIFIED"})
VALIDATION_NAMES = frozenset({"val", "valid", "validation"})
TEST_NAMES = frozenset({"test"})
HOLD_OUT = 5

header_decoder = msgspec.json.Decoder(ReleaseHeader)
sample_decoder = msgspec.json.Decoder(ReleaseSample)


@dataclass
class Split:
    spec: TaskSpec
    train: list[Example] = field(default_factory=list)
    val: list[Example] = field(default_factory=list)
    skipped: int = 0  # samples without a usable label or a stored image, or missing a tag the task needs
    missing_tag: int = 0  # of `skipped`, those whose label lacks a tag of a group the task needs


def read_release(path: Path) -> tuple[ReleaseHeader, Iterator[ReleaseSample]]:
    lines = path.open("rb")
    header = header_decoder.decode(next(lines))

    def samples() -> Iterator[ReleaseSample]:
        with lines:
            for line in lines:
                if line.strip():
                    yield sample_decoder.decode(line)

    return header, samples()


def task_spec(schema: LabelSchema, family: Family, tag_group: str | None = None) -> TaskSpec:
    """The label space a family learns from the schema's active items, in their order."""
    if family in ("detection", "segmentation"):
        classes = tuple(
            c.name for c in sorted(schema.label_classes, key=lambda c: c.order) if not c.archived and c.kind == "object"
        )
        if not classes:
            raise invalid(f"{family} needs object label classes; the project's schema has none", path="$.family")
        return TaskSpec(family=family, classes=classes)
    groups = [g for g in sorted(schema.tag_groups, key=lambda g: g.order) if not g.archived]
    if family == "tagging":
        tagged = tuple((g.name, _tag_names(g)) for g in groups if _tag_names(g))
        if not tagged:
            raise invalid("tagging needs tag groups with tags; the project's schema has none", path="$.family")
        return TaskSpec(family=family, classes=(), tag_groups=tagged)
    chosen = _classification_group(groups, tag_group)
    return TaskSpec(family=family, classes=_tag_names(chosen), tag_groups=((chosen.name, _tag_names(chosen)),))


def _tag_names(group) -> tuple[str, ...]:
    return tuple(t.name for t in sorted(group.tags, key=lambda t: t.order) if not t.archived)


def _classification_group(groups, name: str | None):
    if name is not None:
        for group in groups:
            if group.name == name:
                if len(_tag_names(group)) < 2:
                    raise invalid(f"tag group {name!r} needs at least two tags to classify by", path="$.tag_group")
                return group
        raise invalid(
            f"the project has no tag group {name!r}; it has {', '.join(g.name for g in groups) or 'none'}",
            path="$.tag_group",
        )
    for group in groups:
        if group.selection == "SINGLE" and len(_tag_names(group)) >= 2:
            return group
    raise invalid(
        "classification needs a tag group whose tags are the classes (SINGLE selection, two tags or more); "
        "make one, or name it in `tag_group`",
        path="$.tag_group",
    )


def is_validation(sample: ReleaseSample, validation_datasets: set[str], any_validation: bool) -> bool:
    if any_validation:
        return sample.dataset_id in validation_datasets
    return uuid.UUID(sample.id).int % HOLD_OUT == 0


@dataclass(frozen=True)
class Usable:
    sample: ReleaseSample
    label: ReleaseLabel
    content_hash: str
    validation: bool


def validation_datasets(header: ReleaseHeader) -> set[str]:
    return {d.id for d in header.datasets if d.name.strip().lower() in VALIDATION_NAMES}


def usable_samples(header: ReleaseHeader, samples: Iterable[ReleaseSample], labelset: str) -> Iterator[Usable | None]:
    """Each sample a run may learn from, with its split; None for one it may not (no finished label in the
    labelset, or no stored image). Samples of `test` datasets are left out altogether."""
    validation = validation_datasets(header)
    test = {d.id for d in header.datasets if d.name.strip().lower() in TEST_NAMES}
    for sample in samples:
        if sample.dataset_id in test:
            continue
        label = sample.labels.get(labelset)
        if label is None or label.status not in USABLE_STATUSES or sample.content_hash is None:
            yield None
            continue
        yield Usable(sample, label, sample.content_hash, is_validation(sample, validation, bool(validation)))


def split_release(
    path: Path,
    family: Family,
    labelset: str,
    image_path: Callable[[str], Path],
    tag_group: str | None = None,
) -> Split:
    """The release's examples for `family`; `image_path(content_hash)` says where each original was saved."""
    header, samples = read_release(path)
    spec = task_spec(header.label_schema, family, tag_group)
    targets = Targets(spec, header.label_schema)
    split = Split(spec=spec)
    for usable in usable_samples(header, samples, labelset):
        if usable is None:
            split.skipped += 1
            continue
        with Image.open(image_path(usable.content_hash)) as opened:
            image = np.asarray(opened.convert("RGB"))
        example = targets.example(image, usable.label.objects, usable.label.tag_class_ids)
        if example is None:
            split.skipped += 1
            split.missing_tag += 1
            continue
        (split.val if usable.validation else split.train).append(example)
    if holds_out_one(header, len(split.train), len(split.val)):
        split.val.append(split.train.pop())
    return split


def holds_out_one(header: ReleaseHeader, train: int, validation: int) -> bool:
    """Whether a split of `train` and `validation` samples holds one more out: a small release can miss the
    one-in-five draw altogether, and then its last sample validates rather than the run failing."""
    return validation == 0 and train > 1 and not validation_datasets(header)


class Targets:
    """Turns a label's objects and tags into an `Example` of the task."""

    def __init__(self, spec: TaskSpec, schema: LabelSchema) -> None:
        self.spec = spec
        names = {c.id: c.name for c in schema.label_classes}
        self.class_index = {cid: spec.classes.index(name) for cid, name in names.items() if name in spec.classes}
        groups = {g.id: g.name for g in schema.tag_groups}
        # tag class id → (head, value index)
        self.tag_value: dict[str, tuple[int, int]] = {}
        for head, (group_name, values) in enumerate(spec.tag_groups):
            for group in schema.tag_groups:
                if groups[group.id] != group_name or group.archived:
                    continue
                for tag in group.tags:
                    if tag.name in values and not tag.archived:
                        self.tag_value[tag.id] = (head, values.index(tag.name))

    def example(self, image: np.ndarray, objects, tag_class_ids: list[str]) -> Example | None:
        empty_boxes = np.zeros((0, 4), np.float32)
        empty_classes = np.zeros((0,), np.int64)
        family = self.spec.family
        if family in ("classification", "tagging"):
            values: dict[int, int] = {}
            for tag in tag_class_ids:
                if tag in self.tag_value:
                    head, value = self.tag_value[tag]
                    values.setdefault(head, value)
            if len(values) < len(self.spec.tag_groups):
                return None
            tags = tuple(values[head] for head in range(len(self.spec.tag_groups)))
            if family == "classification":
                return Example(image=image, boxes=empty_boxes, box_classes=empty_classes, label=tags[0])
            return Example(image=image, boxes=empty_boxes, box_classes=empty_classes, tags=tags)
        known = [o for o in objects if o.class_id in self.class_index]
        if family == "detection":
            # Boxes as drawn; a label without any (polygons or masks only) gives its shapes' bounds. A label
            # that has both (Loupe's synthetic data draws each object both ways) is not counted twice.
            if any(isinstance(o.shape, BoxShape) for o in known):
                known = [o for o in known if isinstance(o.shape, BoxShape)]
            size = (image.shape[0], image.shape[1])
            boxes = [box_of(o.shape, size) for o in known]
            kept = [(b, self.class_index[o.class_id]) for b, o in zip(boxes, known, strict=True) if b is not None]
            return Example(
                image=image,
                boxes=np.array([b for b, _ in kept], np.float32).reshape(-1, 4),
                box_classes=np.array([c for _, c in kept], np.int64),
            )
        mask = np.zeros(image.shape[:2], np.uint8)
        # Polygons and masks; boxes only paint a label that has nothing finer.
        if any(isinstance(o.shape, (PolygonShape, MaskShape)) for o in known):
            known = [o for o in known if isinstance(o.shape, (PolygonShape, MaskShape))]
        for o in sorted(known, key=lambda o: o.z_index):
            painted = area_of(o.shape, (image.shape[0], image.shape[1]))
            if painted is not None:
                mask[painted] = self.class_index[o.class_id] + 1
        return Example(image=image, boxes=empty_boxes, box_classes=empty_classes, mask=mask)


def box_of(shape, size: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """A box, or the bounding box of a polygon or mask; None for shapes without an area."""
    if isinstance(shape, BoxShape):
        return shape.box
    if isinstance(shape, PolygonShape):
        xs, ys = [p[0] for p in shape.points], [p[1] for p in shape.points]
        return (min(xs), min(ys), max(xs), max(ys))
    if isinstance(shape, MaskShape):
        painted = area_of(shape, size)
        if painted is None or not painted.any():
            return None
        rows, cols = np.nonzero(painted)
        return (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))
    return None


def area_of(shape, size: tuple[int, int]) -> np.ndarray | None:
    """The pixels a box, polygon (minus its holes) or mask covers, as an H×W boolean array."""
    height, width = size
    if isinstance(shape, MaskShape):
        if shape.rle is None:
            return None
        rle = {"size": list(shape.rle.size), "counts": shape.rle.counts}
        if isinstance(shape.rle.counts, list):
            rle = coco_mask.frPyObjects(rle, height, width)
        return coco_mask.decode(rle).astype(bool)
    if isinstance(shape, BoxShape):
        canvas = Image.new("L", (width, height))
        x1, y1, x2, y2 = shape.box
        ImageDraw.Draw(canvas).rectangle((x1, y1, x2 - 1, y2 - 1), fill=1)
        return np.asarray(canvas, bool)
    if isinstance(shape, PolygonShape):
        canvas = Image.new("L", (width, height))
        draw = ImageDraw.Draw(canvas)
        draw.polygon([tuple(p) for p in shape.points], fill=1)
        for hole in shape.holes:
            draw.polygon([tuple(p) for p in hole], fill=0)
        return np.asarray(canvas, bool)
    return None
