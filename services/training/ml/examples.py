"""One labelled image a training run learns from, independent of storage. Its task's label space,
`TaskSpec`, is in shared/predictions.py: inference needs it too."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Example:
    image: np.ndarray  # H×W×3 uint8 RGB
    boxes: np.ndarray  # N×4 float32, x0, y0, x1, y1 in pixels (detection)
    box_classes: np.ndarray  # N int64 indexes into TaskSpec.classes
    mask: np.ndarray | None = None  # H×W uint8: 0 background, k+1 = TaskSpec.classes[k]
    label: int | None = None  # classification: index into TaskSpec.classes
    tags: tuple[int, ...] = ()  # tagging: value index per TaskSpec.tag_groups entry
