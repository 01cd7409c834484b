"""Model outputs -> predictions in the original images' pixels. Numpy only: inference runs it on Triton's
outputs without torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from services.training.ml.examples import TaskSpec

# Must match models.OUTPUT_STRIDE (not imported: this module must not import torch).
OUTPUT_STRIDE = 4
# Detections kept per image, and the lowest score worth reporting (mAP needs the low-score tail).
MAX_DETECTIONS = 100
MIN_SCORE = 0.05


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


def _empty_ints() -> np.ndarray:
    return np.zeros(0, np.int64)


def _empty_floats() -> np.ndarray:
    return np.zeros(0, np.float32)


@dataclass(frozen=True)
class Prediction:
    label: int | None = None  # classification: index into TaskSpec.classes
    score: float | None = None  # classification: its probability
    tags: tuple[int, ...] = ()  # tagging: value index per tag group
    tag_scores: tuple[float, ...] = ()  # tagging: their probabilities
    boxes: np.ndarray = field(default_factory=_empty_boxes)  # N×4 x0, y0, x1, y1 in original pixels
    box_classes: np.ndarray = field(default_factory=_empty_ints)  # N
    box_scores: np.ndarray = field(default_factory=_empty_floats)  # N, descending
    mask: np.ndarray | None = None  # H×W uint8 at the original size: 0 background, k+1 = classes[k]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def max_pool3(x: np.ndarray) -> np.ndarray:
    """3×3 max pooling, stride 1, same size, over the last two axes."""
    height, width = x.shape[-2:]
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], constant_values=-np.inf)
    shifted = [padded[..., dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)]
    return np.max(shifted, axis=0)


def decode_detections(
    heatmap: np.ndarray, size: np.ndarray, offset: np.ndarray, image_size: int, original: tuple[int, int]
) -> Prediction:
    """One image's C×H×W heatmap logits, 2×H×W sizes and offsets -> boxes: local maxima (CenterNet's 3×3
    max-pool "NMS"), the top MAX_DETECTIONS above MIN_SCORE, scaled to the original (height, width)."""
    scores = sigmoid(heatmap.astype(np.float32))
    peaks = np.where(scores == max_pool3(scores), scores, 0.0).ravel()
    top = np.argsort(-peaks, kind="stable")[:MAX_DETECTIONS]
    top = top[peaks[top] >= MIN_SCORE]
    classes, ys, xs = np.unravel_index(top, scores.shape)
    cx = (xs + offset[0, ys, xs]) * OUTPUT_STRIDE
    cy = (ys + offset[1, ys, xs]) * OUTPUT_STRIDE
    half_w = size[0, ys, xs] * OUTPUT_STRIDE / 2
    half_h = size[1, ys, xs] * OUTPUT_STRIDE / 2
    height, width = original
    scale = np.array([width, height, width, height], np.float32) / image_size
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1) * scale
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    return Prediction(boxes=boxes, box_classes=classes.astype(np.int64), box_scores=peaks[top].astype(np.float32))


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an H×W label map to size (height, width) by pixel-centre sampling:
    labels must not blend."""
    height, width = labels.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1)
    return labels[rows[:, None], cols[None, :]]


def decode(
    spec: TaskSpec, outputs: Sequence[np.ndarray], image_size: int, original_sizes: list[tuple[int, int]]
) -> list[Prediction]:
    """Batched outputs (in output_names order) -> one Prediction per image; original_sizes are (height, width)."""
    predictions = []
    for i, original in enumerate(original_sizes):
        if spec.family == "classification":
            probabilities = softmax(outputs[0][i].astype(np.float32))
            label = int(probabilities.argmax())
            predictions.append(Prediction(label=label, score=float(probabilities[label])))
        elif spec.family == "tagging":
            per_group = [softmax(group[i].astype(np.float32)) for group in outputs]
            tags = tuple(int(p.argmax()) for p in per_group)
            predictions.append(
                Prediction(tags=tags, tag_scores=tuple(float(p[t]) for p, t in zip(per_group, tags, strict=True)))
            )
        elif spec.family == "detection":
            heatmap, size, offset = (output[i] for output in outputs)
            predictions.append(decode_detections(heatmap, size, offset, image_size, original))
        else:
            labels = outputs[0][i].argmax(axis=0).astype(np.uint8)
            predictions.append(Prediction(mask=resize_labels(labels, original)))
    return predictions
