"""What a task model predicts, and how its outputs become predictions in the original images' pixels.

Numpy only (no torch, nothing of services/): training decodes its own model's outputs with it while it
evaluates, and the inference service decodes Triton's answers with the same code.

Every model takes `images` (B×3×S×S float32 in [0, 1]) and returns the tensors `output_names` lists, in
that order; the last is always `embedding` (B×D, unit length) for similarity search and active
learning. Models exported before it existed lack it: `decode` works on them too, with no embedding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from proto.training import Family
from shared.errors import LoupeError

# Detection and segmentation heads read the FPN's finest level, P2, at this stride.
OUTPUT_STRIDE = 4
# Detections kept per image, and the lowest score worth reporting (mAP needs the low-score tail).
MAX_DETECTIONS = 100
MIN_SCORE = 0.05
EMBEDDING = "embedding"


@dataclass(frozen=True)
class TaskSpec:
    family: Family
    # Object classes (detection), pixel classes (segmentation), image classes (classification); () for tagging.
    classes: tuple[str, ...]
    # Tagging: (group, its values), one head each.
    tag_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


def output_names(spec: TaskSpec) -> tuple[str, ...]:
    """Names of the model's outputs, in order: the task's, then `embedding`. Tag groups go by index: user
    names need not be valid ONNX/Triton identifiers, and the spec says which group each index is."""
    return (*task_output_names(spec), EMBEDDING)


def task_output_names(spec: TaskSpec) -> tuple[str, ...]:
    """The outputs a task's loss and decoding read."""
    if spec.family == "classification":
        return ("logits",)
    if spec.family == "tagging":
        return tuple(f"tag{i}_logits" for i in range(len(spec.tag_groups)))
    if spec.family == "detection":
        return ("heatmap", "size", "offset")
    return ("mask_logits",)


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
    # Whole distributions, for active learning: classification one over the classes, tagging one per group.
    probabilities: tuple[np.ndarray, ...] = ()
    boxes: np.ndarray = field(default_factory=_empty_boxes)  # N×4 x0, y0, x1, y1 in original pixels
    box_classes: np.ndarray = field(default_factory=_empty_ints)  # N
    box_scores: np.ndarray = field(default_factory=_empty_floats)  # N, descending
    mask: np.ndarray | None = None  # H×W uint8 at the original size: 0 background, k+1 = classes[k]
    embedding: np.ndarray | None = None  # D float32, unit length; None from a model exported without one


def softmax(logits: np.ndarray) -> np.ndarray:
    """Over the last axis."""
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
    heatmap: np.ndarray,
    size: np.ndarray,
    offset: np.ndarray,
    image_size: int,
    original: tuple[int, int],
    *,
    min_score: float = MIN_SCORE,
    max_detections: int = MAX_DETECTIONS,
    min_size: float = 0.0,
) -> Prediction:
    """One image's C×H×W heatmap logits, 2×H×W sizes and offsets -> boxes: local maxima (CenterNet's 3×3
    max-pool "NMS") scoring at least min_score, scaled to the original (height, width), without those
    narrower or lower than min_size original pixels, the best max_detections of the rest."""
    scores = sigmoid(heatmap.astype(np.float32))
    peaks = np.where(scores == max_pool3(scores), scores, 0.0).ravel()
    top = np.argsort(-peaks, kind="stable")
    top = top[peaks[top] >= min_score]
    classes, ys, xs = np.unravel_index(top, scores.shape)
    cx = (xs + offset[0, ys, xs]) * OUTPUT_STRIDE
    cy = (ys + offset[1, ys, xs]) * OUTPUT_STRIDE
    half_w = size[0, ys, xs] * OUTPUT_STRIDE / 2
    half_h = size[1, ys, xs] * OUTPUT_STRIDE / 2
    height, width = original
    scale = np.array([width, height, width, height], np.float32) / image_size
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1) * scale
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    # Sizes are measured after clipping: what shows of a box in the image is what must be large enough.
    kept = np.flatnonzero((boxes[:, 2] - boxes[:, 0] >= min_size) & (boxes[:, 3] - boxes[:, 1] >= min_size))
    kept = kept[:max_detections]
    return Prediction(
        boxes=boxes[kept],
        box_classes=classes[kept].astype(np.int64),
        box_scores=peaks[top[kept]].astype(np.float32),
    )


def decode_mask(logits: np.ndarray, original: tuple[int, int], mask_threshold: float = 0.0) -> np.ndarray:
    """One image's (1+classes)×S×S logits -> the H×W label map at the original (height, width); a pixel
    whose most likely class has a probability below mask_threshold is background (0)."""
    labels = logits.argmax(axis=0)
    if mask_threshold > 0.0:
        confidence = softmax(np.moveaxis(logits.astype(np.float32), 0, -1)).max(axis=-1)
        labels = np.where(confidence >= mask_threshold, labels, 0)
    return resize_labels(labels.astype(np.uint8), original)


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an H×W label map to size (height, width) by pixel-centre sampling:
    labels must not blend."""
    height, width = labels.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1)
    return labels[rows[:, None], cols[None, :]]


def outputs_by_name(
    spec: TaskSpec, outputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]
) -> Mapping[str, np.ndarray]:
    """Outputs in output_names order (with or without the trailing embedding) or by name, as name -> array;
    raises when one the task needs is missing."""
    if not isinstance(outputs, Mapping):
        names = output_names(spec)
        if len(outputs) not in (len(names), len(names) - 1):
            raise _unexpected(spec, f"{len(outputs)} outputs where {', '.join(names)} were expected")
        outputs = dict(zip(names, outputs, strict=False))  # strict=False: the embedding may be missing
    missing = [name for name in task_output_names(spec) if name not in outputs]
    if missing:
        raise _unexpected(spec, f"no output {', '.join(missing)} among {', '.join(outputs) or 'none'}")
    return outputs


def _unexpected(spec: TaskSpec, what: str) -> LoupeError:
    return LoupeError("internal", f"the {spec.family} model's outputs do not fit its task: {what}")


def decode(
    spec: TaskSpec,
    outputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
    image_size: int,
    original_sizes: Sequence[tuple[int, int]],
    *,
    min_score: float = MIN_SCORE,
    max_detections: int = MAX_DETECTIONS,
    min_size: float = 0.0,
    mask_threshold: float = 0.0,
) -> list[Prediction]:
    """Batched outputs (in output_names order, or by name as Triton gives them) -> one Prediction per image;
    original_sizes are (height, width). min_score, max_detections and min_size (in original pixels) filter
    detections; mask_threshold turns segmentation pixels whose class is less likely than it into background."""
    named = outputs_by_name(spec, outputs)
    task = [named[name] for name in task_output_names(spec)]
    embeddings = named.get(EMBEDDING)
    predictions = []
    for i, original in enumerate(original_sizes):
        embedding = None if embeddings is None else embeddings[i].astype(np.float32)
        if spec.family == "classification":
            probabilities = softmax(task[0][i].astype(np.float32))
            label = int(probabilities.argmax())
            prediction = Prediction(label=label, score=float(probabilities[label]), probabilities=(probabilities,))
        elif spec.family == "tagging":
            per_group = tuple(softmax(group[i].astype(np.float32)) for group in task)
            tags = tuple(int(p.argmax()) for p in per_group)
            scores = tuple(float(p[t]) for p, t in zip(per_group, tags, strict=True))
            prediction = Prediction(tags=tags, tag_scores=scores, probabilities=per_group)
        elif spec.family == "detection":
            heatmap, size, offset = (output[i] for output in task)
            prediction = decode_detections(
                heatmap,
                size,
                offset,
                image_size,
                original,
                min_score=min_score,
                max_detections=max_detections,
                min_size=min_size,
            )
        else:
            prediction = Prediction(mask=decode_mask(task[0][i], original, mask_threshold))
        predictions.append(replace(prediction, embedding=embedding))
    return predictions
