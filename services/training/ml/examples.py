"""What a training run learns from: the task's label space and one labelled image, independent of storage."""

from dataclasses import dataclass

import numpy as np

from proto.training import Family


@dataclass(frozen=True)
class TaskSpec:
    family: Family
    # Object classes (detection), pixel classes (segmentation), image classes (classification); () for tagging.
    classes: tuple[str, ...]
    # Tagging: (group, its values), one head each.
    tag_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Example:
    image: np.ndarray  # H×W×3 uint8 RGB
    boxes: np.ndarray  # N×4 float32, x0, y0, x1, y1 in pixels (detection)
    box_classes: np.ndarray  # N int64 indexes into TaskSpec.classes
    mask: np.ndarray | None = None  # H×W uint8: 0 background, k+1 = TaskSpec.classes[k]
    label: int | None = None  # classification: index into TaskSpec.classes
    tags: tuple[int, ...] = ()  # tagging: value index per TaskSpec.tag_groups entry
