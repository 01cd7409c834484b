"""Label QA ("error finder"): compare one sample's ground truth with a model's predictions and say
what looks wrong with the ground truth, in Hasty's error types (proto.review.FindingKind).

The predictions are the judge: a finding says what the ground truth lacks or has too much of.
Rules:
- Predictions with a confidence below `options.min_confidence` are ignored (no confidence counts
  as 1). Without a predictions label there is nothing to judge by: no findings. Without a ground
  truth label the ground truth is empty.
- Objects are matched greedily, like COCO's evaluation: each prediction, most confident first (ties
  in label order), takes the unmatched ground-truth object of any class with the highest IoU
  (`geometry.iou`; ties: the first in label order), if that IoU is above 0 and at least
  `options.min_iou`.
- A matched pair of different classes is a MISCLASSIFICATION (`class_id` ground truth's,
  `predicted_class_id` the prediction's), whatever the IoU; nothing else is said about that pair,
  as its attributes belong to different classes.
- A matched pair of the same class with an IoU below `options.iou_threshold` is LOW_IOU.
- A matched pair of the same class: each attribute whose values differ is an ATTR_MISCLASSIFICATION,
  one the prediction has and ground truth lacks a MISSING_ATTRIBUTE, one ground truth has and the
  prediction lacks an EXTRA_ATTRIBUTE. An absent attribute takes the schema's default (labels may
  leave out attributes that have one); None and [] count as absent; lists compare as sets.
- A matched pair of polygons or masks with an IoU at or above `options.iou_threshold` and the same
  class: predicted area outside ground truth above `options.area_threshold` × the union is
  MISSING_AREA; ground truth area outside the prediction above that is EXTRA_AREA (both may hold).
  The areas are counted in pixels of the rasterised shapes, as the IoU of polygons and masks is.
- An unmatched prediction is MISSING_LABEL (`class_id` and `predicted_class_id` the prediction's); an
  unmatched ground-truth object is EXTRA_LABEL.
- Tags: a ground truth tag of a SINGLE-selection group with another tag of that group predicted is a
  TAG_MISCLASSIFICATION (`tag_class_id` ground truth's, `predicted_class_id` the predicted tag's).
  Otherwise a predicted tag ground truth lacks is MISSING_TAG and a ground truth tag not predicted is
  EXTRA_TAG (`tag_class_id` that tag). Tags not in the schema count as of a MULTIPLE-selection group.
- Image attributes follow the object attribute rules, with no object ids.
Findings come in this order: matched pairs (in matching order), MISSING_LABEL, EXTRA_LABEL, tags,
image attributes.

Speed: 10 boxes against 10 boxes take about 50 µs per sample (box IoU is plain Python).
"""

from __future__ import annotations

from typing import Any

import msgspec
from pycocotools import mask as coco_mask

from proto.annotation import AttributeValues, LabelObject, MaskShape, PolygonShape
from proto.releases import ReleaseLabel
from proto.review import FindingKind, QaOptions
from proto.schema import LabelSchema
from services.annotation.geometry import iou, to_rle


class FindingDraft(msgspec.Struct, frozen=True, kw_only=True):
    """A finding before it is stored: proto.review.Finding without its ids and resolution."""

    kind: FindingKind
    ground_truth_object_id: str | None = None
    prediction_object_id: str | None = None
    class_id: str | None = None
    predicted_class_id: str | None = None
    tag_class_id: str | None = None
    attribute_id: str | None = None
    iou: float | None = None
    confidence: float | None = None


class _Pair(msgspec.Struct, frozen=True):
    truth: LabelObject
    prediction: LabelObject
    iou: float


def compare(
    ground_truth: ReleaseLabel | None,
    predictions: ReleaseLabel | None,
    *,
    width: int,
    height: int,
    options: QaOptions,
    schema: LabelSchema,
) -> list[FindingDraft]:
    """What the predictions say is wrong with the ground truth of one `width` × `height` image."""
    if predictions is None:
        return []
    truth = ground_truth or ReleaseLabel(status="UNLABELED")
    defaults = {attribute.id: attribute.default for attribute in schema.attributes}
    confident = [p for p in predictions.objects if _confidence(p) >= options.min_confidence]
    pairs, missing, extra = _match(truth.objects, confident, width=width, height=height, min_iou=options.min_iou)

    findings: list[FindingDraft] = []
    for pair in pairs:
        findings += _pair_findings(pair, width=width, height=height, options=options, defaults=defaults)
    findings += [
        FindingDraft(
            kind="MISSING_LABEL",
            prediction_object_id=p.id,
            class_id=p.class_id,
            predicted_class_id=p.class_id,
            confidence=p.confidence,
        )
        for p in missing
    ]
    findings += [FindingDraft(kind="EXTRA_LABEL", ground_truth_object_id=t.id, class_id=t.class_id) for t in extra]
    findings += _tag_findings(truth.tag_class_ids, predictions.tag_class_ids, schema)
    findings += [
        FindingDraft(kind=kind, attribute_id=attribute_id)
        for kind, attribute_id in _attribute_differences(truth.attributes, predictions.attributes, defaults)
    ]
    return findings


def _confidence(prediction: LabelObject) -> float:
    return 1.0 if prediction.confidence is None else prediction.confidence


def _match(
    truth: list[LabelObject], predictions: list[LabelObject], *, width: int, height: int, min_iou: float
) -> tuple[list[_Pair], list[LabelObject], list[LabelObject]]:
    """Greedy matching: matched pairs, unmatched predictions, unmatched ground truth objects."""
    unmatched = dict(enumerate(truth))  # keeps label order, so ties go to the first object
    pairs, missing = [], []
    for prediction in sorted(predictions, key=_confidence, reverse=True):
        best, best_iou = None, 0.0
        for index, candidate in unmatched.items():
            overlap = iou(prediction.shape, candidate.shape, height, width)
            if overlap > best_iou:
                best, best_iou = index, overlap
        if best is None or best_iou < min_iou:
            missing.append(prediction)
        else:
            pairs.append(_Pair(unmatched.pop(best), prediction, best_iou))
    return pairs, missing, list(unmatched.values())


def _pair_findings(
    pair: _Pair, *, width: int, height: int, options: QaOptions, defaults: dict[str, Any]
) -> list[FindingDraft]:
    truth, prediction = pair.truth, pair.prediction

    def finding(kind: FindingKind, attribute_id: str | None = None) -> FindingDraft:
        return FindingDraft(
            kind=kind,
            ground_truth_object_id=truth.id,
            prediction_object_id=prediction.id,
            class_id=truth.class_id,
            predicted_class_id=prediction.class_id,
            attribute_id=attribute_id,
            iou=pair.iou,
            confidence=prediction.confidence,
        )

    if truth.class_id != prediction.class_id:
        return [finding("MISCLASSIFICATION")]
    if pair.iou < options.iou_threshold:
        kinds: list[FindingKind] = ["LOW_IOU"]
    elif _is_region(truth) and _is_region(prediction):
        kinds = _area_differences(truth, prediction, width=width, height=height, threshold=options.area_threshold)
    else:
        kinds = []
    return [finding(kind) for kind in kinds] + [
        finding(kind, attribute_id)
        for kind, attribute_id in _attribute_differences(truth.attributes, prediction.attributes, defaults)
    ]


def _is_region(obj: LabelObject) -> bool:
    return isinstance(obj.shape, (PolygonShape, MaskShape))


def _area_differences(
    truth: LabelObject, prediction: LabelObject, *, width: int, height: int, threshold: float
) -> list[FindingKind]:
    truth_rle, predicted_rle = to_rle(truth.shape, height, width), to_rle(prediction.shape, height, width)
    common_rle = coco_mask.merge([truth_rle, predicted_rle], intersect=True)
    truth_area, predicted_area, common = (int(a) for a in coco_mask.area([truth_rle, predicted_rle, common_rle]))
    limit = threshold * (truth_area + predicted_area - common)
    kinds: list[FindingKind] = []
    if predicted_area - common > limit:
        kinds.append("MISSING_AREA")
    if truth_area - common > limit:
        kinds.append("EXTRA_AREA")
    return kinds


def _attribute_differences(
    truth: AttributeValues, predicted: AttributeValues, defaults: dict[str, Any]
) -> list[tuple[FindingKind, str]]:
    differences: list[tuple[FindingKind, str]] = []
    for attribute_id in dict.fromkeys([*truth, *predicted]):
        expected = _comparable(truth.get(attribute_id, defaults.get(attribute_id)))
        found = _comparable(predicted.get(attribute_id, defaults.get(attribute_id)))
        if expected == found:
            continue
        if expected is None:
            differences.append(("MISSING_ATTRIBUTE", attribute_id))
        elif found is None:
            differences.append(("EXTRA_ATTRIBUTE", attribute_id))
        else:
            differences.append(("ATTR_MISCLASSIFICATION", attribute_id))
    return differences


def _comparable(value: Any) -> Any:
    """Multiple selections compare as sets; an empty one is no value."""
    if isinstance(value, list):
        return frozenset(value) or None
    return value


def _tag_findings(truth: list[str], predicted: list[str], schema: LabelSchema) -> list[FindingDraft]:
    single_group_of = {
        tag.id: group.id for group in schema.tag_groups if group.selection == "SINGLE" for tag in group.tags
    }
    missing = [tag for tag in dict.fromkeys(predicted) if tag not in truth]
    findings: list[FindingDraft] = []
    for tag in dict.fromkeys(truth):
        if tag in predicted:
            continue
        group = single_group_of.get(tag)
        rival = next((other for other in missing if single_group_of.get(other) == group), None) if group else None
        if rival is None:
            findings.append(FindingDraft(kind="EXTRA_TAG", tag_class_id=tag))
        else:
            missing.remove(rival)
            findings.append(FindingDraft(kind="TAG_MISCLASSIFICATION", tag_class_id=tag, predicted_class_id=rival))
    findings += [FindingDraft(kind="MISSING_TAG", tag_class_id=tag) for tag in missing]
    return findings
