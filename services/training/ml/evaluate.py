"""Standard metrics on a validation split: accuracy and macro-F1 (classification, tagging), COCO mAP through
pycocotools (detection), mIoU (segmentation), each with per-class figures."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from services.training.ml.data import ExampleDataset, loader
from services.training.ml.examples import Example
from shared.predictions import Prediction, TaskSpec, decode

# Each family's headline metric: what early stopping watches and what "best" means.
PRIMARY_METRIC = {"classification": "accuracy", "tagging": "accuracy", "detection": "map50", "segmentation": "miou"}
BATCH_SIZE = 32


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]


def predict(spec: TaskSpec, model: torch.nn.Module, examples: Sequence[Example], image_size: int) -> list[Prediction]:
    """Runs the model (eval mode, on its own device) over examples, decoded at their original sizes."""
    device = next(model.parameters()).device
    model.eval()
    batches = loader(
        ExampleDataset(spec, examples, image_size, augment=False),
        BATCH_SIZE,
        shuffle=False,
        workers=0,
        pin_memory=False,
    )
    predictions: list[Prediction] = []
    with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
        for start, (images, _) in zip(range(0, len(examples), BATCH_SIZE), batches, strict=True):
            images = images.to(device, non_blocking=True)
            if device.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            outputs = [output.float().cpu().numpy() for output in model(images)]
            sizes = [(e.image.shape[0], e.image.shape[1]) for e in examples[start : start + len(images)]]
            predictions.extend(decode(spec, outputs, image_size, sizes))
    return predictions


def evaluate(spec: TaskSpec, model: torch.nn.Module, val_set: Sequence[Example], image_size: int) -> Evaluation:
    return score(spec, predict(spec, model, val_set, image_size), val_set)


def score(spec: TaskSpec, predictions: Sequence[Prediction], truth: Sequence[Example]) -> Evaluation:
    """Compares predictions with the examples' labels (same order)."""
    if spec.family == "classification":
        return classification_scores(spec.classes, [p.label for p in predictions], [t.label for t in truth])
    if spec.family == "tagging":
        return tagging_scores(spec, predictions, truth)
    if spec.family == "detection":
        return detection_scores(spec, predictions, truth)
    return segmentation_scores(spec, predictions, truth)


def classification_scores(
    names: Sequence[str], predicted: Sequence[int | None], true: Sequence[int | None]
) -> Evaluation:
    """Accuracy, and F1 per class averaged over the classes that occur in either the truth or the predictions
    (a class absent from both says nothing about the model)."""
    p = np.array(predicted, np.int64)
    t = np.array(true, np.int64)
    per_class: dict[str, dict[str, float]] = {}
    f1s = []
    for k, name in enumerate(names):
        tp = float(np.sum((p == k) & (t == k)))
        predicted_k = float(np.sum(p == k))
        support = float(np.sum(t == k))
        precision = tp / predicted_k if predicted_k else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if predicted_k or support:
            f1s.append(f1)
    accuracy = float(np.mean(p == t)) if len(t) else 0.0
    return Evaluation({"accuracy": accuracy, "macro_f1": float(np.mean(f1s)) if f1s else 0.0}, per_class)


def tagging_scores(spec: TaskSpec, predictions: Sequence[Prediction], truth: Sequence[Example]) -> Evaluation:
    """Accuracy and macro-F1 per tag group, averaged over groups; per-class figures keyed "group/value"."""
    metrics: dict[str, float] = {}
    per_class: dict[str, dict[str, float]] = {}
    for i, (group, values) in enumerate(spec.tag_groups):
        result = classification_scores(values, [p.tags[i] for p in predictions], [t.tags[i] for t in truth])
        for name, value in result.metrics.items():
            metrics[f"{name}/{group}"] = value
        per_class.update({f"{group}/{value}": figures for value, figures in result.per_class.items()})
    for name in ("accuracy", "macro_f1"):
        metrics[name] = float(np.mean([metrics[f"{name}/{group}"] for group, _ in spec.tag_groups]))
    return Evaluation(metrics, per_class)


def detection_scores(spec: TaskSpec, predictions: Sequence[Prediction], truth: Sequence[Example]) -> Evaluation:
    """COCO mAP@0.5 and mAP@[.5:.95] (100 detections per image, all areas) by pycocotools, from
    ground truth and detections built in memory; per class, AP at both."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    detections: list[dict[str, Any]] = []
    for image_id, (prediction, example) in enumerate(zip(predictions, truth, strict=True), start=1):
        height, width = example.image.shape[:2]
        images.append({"id": image_id, "height": height, "width": width})
        for box, cls in zip(example.boxes.reshape(-1, 4).tolist(), example.box_classes.tolist(), strict=True):
            annotations.append(_coco_box(image_id, box, cls, id=len(annotations) + 1, iscrowd=0))
        for box, cls, box_score in zip(
            prediction.boxes.tolist(), prediction.box_classes.tolist(), prediction.box_scores.tolist(), strict=True
        ):
            detections.append(_coco_box(image_id, box, cls, score=box_score))
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(spec.classes)]
    metrics = {"map50": 0.0, "map50_95": 0.0}
    per_class = {name: {"ap50": 0.0, "ap50_95": 0.0} for name in spec.classes}
    if not annotations or not detections:  # pycocotools cannot load an empty result list
        return Evaluation(metrics, per_class)
    # pycocotools prints progress on stdout; the service's logs are not the place for it.
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    metrics = {"map50": max(float(evaluation.stats[1]), 0.0), "map50_95": max(float(evaluation.stats[0]), 0.0)}
    # precision: IoU thresholds × recall points × classes × area ranges × max-detection settings; -1 = no data.
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    for k, name in enumerate(spec.classes):
        ap50, ap = _mean_defined(precision[0, :, k]), _mean_defined(precision[:, :, k])
        per_class[name] = {"ap50": ap50, "ap50_95": ap}
    return Evaluation(metrics, per_class)


def _coco_box(image_id: int, box: list[float], cls: int, **fields: Any) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    return {
        "image_id": image_id,
        "category_id": cls + 1,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": (x1 - x0) * (y1 - y0),
        **fields,
    }


def _mean_defined(values: np.ndarray) -> float:
    defined = values[values > -1]
    return float(defined.mean()) if defined.size else 0.0


def segmentation_scores(spec: TaskSpec, predictions: Sequence[Prediction], truth: Sequence[Example]) -> Evaluation:
    """IoU per class (background included, as in VOC) from one confusion matrix over all pixels at the original
    size; mIoU averages the classes that occur in the truth or the predictions, miou_objects leaves out
    background (which alone would flatter a model that finds nothing)."""
    names = ("background", *spec.classes)
    confusion = np.zeros((len(names), len(names)), np.int64)
    for prediction, example in zip(predictions, truth, strict=True):
        assert prediction.mask is not None and example.mask is not None
        pairs = example.mask.astype(np.int64).ravel() * len(names) + prediction.mask.astype(np.int64).ravel()
        confusion += np.bincount(pairs, minlength=len(names) ** 2).reshape(len(names), len(names))
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    present = union > 0
    per_class = {name: {"iou": float(iou[k]), "pixels": float(confusion[k].sum())} for k, name in enumerate(names)}
    metrics = {
        "miou": float(iou[present].mean()) if present.any() else 0.0,
        "miou_objects": float(iou[1:][present[1:]].mean()) if present[1:].any() else 0.0,
        "pixel_accuracy": float(tp.sum() / max(confusion.sum(), 1)),
    }
    return Evaluation(metrics, per_class)
