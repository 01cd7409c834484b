"""Label QA comparison: tiny hand-made ground truth and predictions, one finding kind at a time."""

import numpy as np
from pycocotools import mask as coco_mask

from proto.annotation import BoxShape, LabelObject, MaskShape, PolygonShape, Rle
from proto.releases import ReleaseLabel
from proto.review import QaOptions
from proto.schema import Attribute, AttributeValue, LabelSchema, TagClass, TagGroup
from services.annotation.qa_compare import FindingDraft, compare

CAR, BUS = "class-car", "class-bus"
COLOR, EXTRAS, PARKED, TIME = "attr-color", "attr-extras", "attr-parked", "attr-time"
SUNNY, RAINY, BLURRY, DARK = "tag-sunny", "tag-rainy", "tag-blurry", "tag-dark"
SIZE = 100


def attribute(id: str, type: str, *, subject: str = "LABEL", values: tuple[str, ...] = (),
              default: object = None) -> Attribute:
    return Attribute(id=id, name=id, type=type, subject=subject,
                     values=[AttributeValue(id=v, value=v, archived=False) for v in values], min=None, max=None,
                     required=False, default=default, description="", order=0, class_ids=[], extra={},
                     archived=False, version=1)


def tag_group(id: str, selection: str, *tags: str) -> TagGroup:
    return TagGroup(id=id, name=id, selection=selection, required=False, order=0, description="", extra={},
                    archived=False, version=1,
                    tags=[TagClass(id=t, group_id=id, name=t, color="#000000", order=0, description="",
                                   external_id=None, extra={}, archived=False, version=1) for t in tags])


SCHEMA = LabelSchema(version=1, label_classes=[], keypoint_schemas=[], attributes=[
    attribute(COLOR, "SELECTION", values=("red", "blue")),
    attribute(EXTRAS, "MULTIPLE_SELECTION", values=("roof-box", "trailer")),
    attribute(PARKED, "BOOL", default=False),
    attribute(TIME, "SELECTION", subject="IMAGE", values=("day", "night")),
], tag_groups=[tag_group("weather", "SINGLE", SUNNY, RAINY), tag_group("quality", "MULTIPLE", BLURRY, DARK)])


def box(id: str, class_id: str, x1: float, y1: float, x2: float, y2: float, *, confidence: float | None = None,
        **attributes: object) -> LabelObject:
    return LabelObject(id=id, class_id=class_id, shape=BoxShape(box=(x1, y1, x2, y2)), confidence=confidence,
                       attributes=attributes)


def polygon(id: str, x1: float, y1: float, x2: float, y2: float) -> LabelObject:
    return LabelObject(id=id, class_id=CAR, shape=PolygonShape(points=[(x1, y1), (x2, y1), (x2, y2), (x1, y2)]))


def mask(id: str, x1: int, y1: int, x2: int, y2: int) -> LabelObject:
    pixels = np.zeros((SIZE, SIZE), dtype=np.uint8, order="F")
    pixels[y1:y2, x1:x2] = 1
    rle = coco_mask.encode(pixels)
    return LabelObject(id=id, class_id=CAR, shape=MaskShape(rle=Rle(size=(SIZE, SIZE),
                                                                    counts=rle["counts"].decode())))


def label(*objects: LabelObject, tags: tuple[str, ...] = (), **attributes: object) -> ReleaseLabel:
    return ReleaseLabel(status="LABELED", objects=list(objects), tag_class_ids=list(tags), attributes=attributes)


def qa(truth: ReleaseLabel | None, predictions: ReleaseLabel | None, **options: float) -> list[FindingDraft]:
    return compare(truth, predictions, width=SIZE, height=SIZE, options=QaOptions(**options), schema=SCHEMA)


def kinds(findings: list[FindingDraft]) -> list[str]:
    return [f.kind for f in findings]


def test_a_perfect_prediction_finds_nothing() -> None:
    truth = label(box("g1", CAR, 0, 0, 10, 10, **{COLOR: "red", EXTRAS: ["trailer", "roof-box"]}),
                  polygon("g2", 20, 20, 60, 60), mask("g3", 60, 0, 90, 30), tags=(SUNNY, BLURRY), **{TIME: "day"})
    predictions = label(box("p1", CAR, 0, 0, 10, 10, confidence=0.9, **{COLOR: "red", EXTRAS: ["roof-box", "trailer"]}),
                        polygon("p2", 20, 20, 60, 60), mask("p3", 60, 0, 90, 30), tags=(BLURRY, SUNNY),
                        **{TIME: "day"})
    assert qa(truth, predictions) == []


def test_low_iou() -> None:
    found = qa(label(box("g", CAR, 0, 0, 10, 10)), label(box("p", CAR, 0, 0, 10, 25, confidence=0.8)))
    assert found == [FindingDraft(kind="LOW_IOU", ground_truth_object_id="g", prediction_object_id="p", class_id=CAR,
                                  predicted_class_id=CAR, iou=0.4, confidence=0.8)]


def test_misclassification_whatever_the_iou() -> None:
    truth = label(box("g1", CAR, 0, 0, 10, 10), box("g2", CAR, 50, 50, 60, 60))
    predictions = label(box("p1", BUS, 0, 0, 10, 10), box("p2", BUS, 50, 50, 60, 75))
    assert qa(truth, predictions) == [
        FindingDraft(kind="MISCLASSIFICATION", ground_truth_object_id=g, prediction_object_id=p, class_id=CAR,
                     predicted_class_id=BUS, iou=iou) for g, p, iou in (("g1", "p1", 1.0), ("g2", "p2", 0.4))]


def test_missing_label_for_an_unmatched_prediction() -> None:
    found = qa(label(), label(box("p", BUS, 0, 0, 10, 10, confidence=0.7)))
    assert found == [FindingDraft(kind="MISSING_LABEL", prediction_object_id="p", class_id=BUS,
                                  predicted_class_id=BUS, confidence=0.7)]


def test_extra_label_for_an_unmatched_ground_truth_object() -> None:
    assert qa(label(box("g", CAR, 0, 0, 10, 10)), label()) == [
        FindingDraft(kind="EXTRA_LABEL", ground_truth_object_id="g", class_id=CAR)]


def test_an_overlap_below_min_iou_is_no_match() -> None:
    # IoU 5/195: the prediction and the ground truth object are unrelated
    found = qa(label(box("g", CAR, 0, 0, 10, 10)), label(box("p", CAR, 9.5, 0, 19.5, 10)))
    assert kinds(found) == ["MISSING_LABEL", "EXTRA_LABEL"]


def test_object_attributes() -> None:
    truth = label(box("g", CAR, 0, 0, 10, 10, **{COLOR: "red", EXTRAS: ["trailer"]}))
    predictions = label(box("p", CAR, 0, 0, 10, 10, **{COLOR: "blue", PARKED: True}))
    found = qa(truth, predictions)
    assert [(f.kind, f.attribute_id) for f in found] == [
        ("ATTR_MISCLASSIFICATION", COLOR), ("EXTRA_ATTRIBUTE", EXTRAS), ("ATTR_MISCLASSIFICATION", PARKED)]
    assert {(f.ground_truth_object_id, f.prediction_object_id, f.iou) for f in found} == {("g", "p", 1.0)}


def test_missing_attribute() -> None:
    found = qa(label(box("g", CAR, 0, 0, 10, 10)), label(box("p", CAR, 0, 0, 10, 10, **{COLOR: "red"})))
    assert [(f.kind, f.attribute_id) for f in found] == [("MISSING_ATTRIBUTE", COLOR)]


def test_an_absent_attribute_takes_the_default_and_empty_lists_are_absent() -> None:
    truth = label(box("g", CAR, 0, 0, 10, 10, **{EXTRAS: []}))
    assert qa(truth, label(box("p", CAR, 0, 0, 10, 10, **{PARKED: False}))) == []


def test_attributes_of_a_misclassified_pair_are_not_compared() -> None:
    found = qa(label(box("g", CAR, 0, 0, 10, 10, **{COLOR: "red"})), label(box("p", BUS, 0, 0, 10, 10)))
    assert kinds(found) == ["MISCLASSIFICATION"]


def test_missing_area_when_the_prediction_covers_more() -> None:
    found = qa(label(polygon("g", 10, 10, 50, 50)), label(polygon("p", 10, 10, 50, 60)))
    assert kinds(found) == ["MISSING_AREA"] and found[0].iou is not None and 0.75 < found[0].iou < 0.85


def test_extra_area_when_ground_truth_covers_more() -> None:
    found = qa(label(mask("g", 10, 10, 50, 60)), label(mask("p", 10, 10, 50, 50)))
    assert found == [FindingDraft(kind="EXTRA_AREA", ground_truth_object_id="g", prediction_object_id="p",
                                  class_id=CAR, predicted_class_id=CAR, iou=0.8)]


def test_area_is_compared_for_polygons_and_masks_only_and_above_the_threshold() -> None:
    assert qa(label(box("g", CAR, 10, 10, 50, 50)), label(box("p", CAR, 10, 10, 50, 60))) == []
    assert qa(label(mask("g", 10, 10, 50, 50)), label(polygon("p", 10, 10, 50, 60)), area_threshold=0.25) == []


def test_tag_misclassification_in_a_single_selection_group() -> None:
    assert qa(label(tags=(SUNNY,)), label(tags=(RAINY,))) == [
        FindingDraft(kind="TAG_MISCLASSIFICATION", tag_class_id=SUNNY, predicted_class_id=RAINY)]


def test_missing_and_extra_tags() -> None:
    found = qa(label(tags=(SUNNY, BLURRY)), label(tags=(DARK,)))
    assert found == [FindingDraft(kind="EXTRA_TAG", tag_class_id=SUNNY),
                     FindingDraft(kind="EXTRA_TAG", tag_class_id=BLURRY),
                     FindingDraft(kind="MISSING_TAG", tag_class_id=DARK)]


def test_image_attributes() -> None:
    assert qa(label(**{TIME: "day"}), label(**{TIME: "night"})) == [
        FindingDraft(kind="ATTR_MISCLASSIFICATION", attribute_id=TIME)]
    assert qa(label(), label(**{TIME: "night"})) == [FindingDraft(kind="MISSING_ATTRIBUTE", attribute_id=TIME)]


def test_low_confidence_predictions_are_ignored() -> None:
    predictions = label(box("p1", CAR, 0, 0, 10, 10, confidence=0.3), box("p2", CAR, 20, 20, 30, 30, confidence=None))
    assert [f.prediction_object_id for f in qa(label(), predictions)] == ["p2"]
    assert [f.prediction_object_id for f in qa(label(), predictions, min_confidence=0.2)] == ["p2", "p1"]


def test_greedy_matching_goes_by_confidence() -> None:
    truth = label(box("g1", CAR, 0, 0, 10, 10), box("g2", CAR, 20, 0, 30, 10))
    exact, shifted = box("exact", CAR, 0, 0, 10, 10, confidence=0.6), box("shifted", CAR, 1, 0, 11, 10, confidence=0.9)
    found = qa(truth, label(exact, shifted))
    # The more confident prediction takes g1 although the other one fits it better.
    assert [(f.kind, f.ground_truth_object_id, f.prediction_object_id) for f in found] == [
        ("MISSING_LABEL", None, "exact"), ("EXTRA_LABEL", "g2", None)]


def test_each_prediction_takes_its_best_unmatched_object_of_any_class() -> None:
    truth = label(box("bus", BUS, 0, 0, 10, 10), box("car", CAR, 1, 0, 11, 10))
    found = qa(truth, label(box("p", CAR, 0, 0, 10, 10)))
    assert [(f.kind, f.ground_truth_object_id) for f in found] == [("MISCLASSIFICATION", "bus"), ("EXTRA_LABEL", "car")]


def test_without_predictions_nothing_is_found_and_without_ground_truth_everything_is_missing() -> None:
    assert qa(label(box("g", CAR, 0, 0, 10, 10)), None) == []
    assert kinds(qa(None, label(box("p", CAR, 0, 0, 10, 10)))) == ["MISSING_LABEL"]
