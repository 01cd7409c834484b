"""Checks a run's inputs before any work starts, so a bad label or setting fails with a message that names it
instead of a shape error deep inside torch."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from proto.training import FAMILIES, TrainingConfig
from services.training.ml.examples import Example
from shared.errors import invalid
from shared.predictions import TaskSpec


def validate(spec: TaskSpec, config: TrainingConfig, train_set: Sequence[Example], val_set: Sequence[Example]) -> None:
    validate_config(config)
    validate_spec(spec)
    if not train_set:
        raise invalid("the training set is empty: label some images first", path="train_set")
    for name, examples in (("train_set", train_set), ("val_set", val_set)):
        for i, example in enumerate(examples):
            validate_example(spec, example, f"{name}[{i}]")


def validate_config(config: TrainingConfig) -> None:
    """The bounds the bus contract declares, for a configuration built in Python rather than decoded."""
    try:
        msgspec.convert(msgspec.structs.asdict(config), TrainingConfig)
    except msgspec.ValidationError as exc:
        # msgspec says where: "Expected `int` >= 1 - at `$.epochs`".
        message, _, where = str(exc).rpartition(" - at `$.")
        field = where.rstrip("`")
        raise invalid(f"{field}: {message}", path=f"config.{field}") from None


def validate_spec(spec: TaskSpec) -> None:
    if spec.family not in FAMILIES:
        raise invalid(f"family must be one of {', '.join(FAMILIES)}", path="spec.family")
    if spec.family == "tagging":
        if not spec.tag_groups or any(not values for _, values in spec.tag_groups):
            raise invalid("tagging needs at least one tag group, each with at least one value", path="spec.tag_groups")
    elif not spec.classes:
        raise invalid(f"{spec.family} needs at least one class", path="spec.classes")


def validate_example(spec: TaskSpec, example: Example, path: str) -> None:
    image = example.image
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise invalid("image must be a non-empty H×W×3 uint8 RGB array", path=f"{path}.image")
    classes = len(spec.classes)
    if spec.family == "classification" and (example.label is None or not 0 <= example.label < classes):
        raise invalid(f"label must be a class index from 0 to {classes - 1}", path=f"{path}.label")
    if spec.family == "tagging":
        sizes = [len(values) for _, values in spec.tag_groups]
        if len(example.tags) != len(sizes) or any(not 0 <= t < n for t, n in zip(example.tags, sizes, strict=True)):
            raise invalid("tags must hold one value index per tag group", path=f"{path}.tags")
    if spec.family == "detection":
        boxes, box_classes = example.boxes, example.box_classes
        if boxes.ndim != 2 or boxes.shape[1] != 4 or len(box_classes) != len(boxes):
            raise invalid("boxes must be N×4 with one class per box", path=f"{path}.boxes")
        if len(boxes) and (
            np.any(boxes[:, 2:] <= boxes[:, :2]) or box_classes.min() < 0 or box_classes.max() >= classes
        ):
            raise invalid("boxes need x1 > x0, y1 > y0 and a class index below the class count", path=f"{path}.boxes")
    if spec.family == "segmentation":
        mask = example.mask
        if mask is None or mask.shape != image.shape[:2] or int(mask.max()) > classes:
            raise invalid(f"mask must be H×W like the image, with values 0 to {classes}", path=f"{path}.mask")
