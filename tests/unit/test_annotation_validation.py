"""Objects, tags and image attributes checked against a hand-built label schema: each rule's error
names the exact field; what passes comes back normalised."""

from __future__ import annotations

import base64
import io
import uuid

import msgspec
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from proto.annotation import ObjectInput
from proto.schema import Attribute, AttributeValue, KeypointSchema, LabelClass, LabelSchema, TagClass, TagGroup
from services.annotation import validation
from shared.errors import LoupeError

WIDTH, HEIGHT = 100, 80


def ident(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


CAR, PERSON, OLD_CLASS, POSE = ident("car"), ident("person"), ident("old class"), ident("pose")
COLOR, COUNT, SCORE, NOTE, PARKED, PARTS = (ident(n) for n in ("color", "count", "score", "note", "parked", "parts"))
OCCLUDED, TRUNCATED, WEATHER, GONE = (ident(n) for n in ("occluded", "truncated", "weather", "gone"))
RED, BLUE, GREEN, WHEEL, DOOR, SUNNY = (ident(n) for n in ("red", "blue", "green", "wheel", "door", "sunny"))
TIME, FLAGS, LEGACY = ident("time"), ident("flags"), ident("legacy")
DAY, NIGHT, BLURRY, DARK, OLD_TAG = (ident(n) for n in ("day", "night", "blurry", "dark", "old tag"))


def label_class(id: str, name: str, *, archived: bool = False, keypoint_schema_id: str | None = None) -> LabelClass:
    return LabelClass(id=id, name=name, kind="object", color="#1f77b4", order=0, description="", external_id=None,
                      keypoint_schema_id=keypoint_schema_id, extra={}, archived=archived, version=1)


def attribute(id: str, name: str, type: str, *, subject: str = "LABEL", values: tuple = (), min=None, max=None,
              required: bool = False, default=None, class_ids: tuple = (), archived: bool = False) -> Attribute:
    return Attribute(id=id, name=name, type=type, subject=subject,
                     values=[AttributeValue(id=i, value=v, archived=a) for i, v, a in values], min=min, max=max,
                     required=required, default=default, description="", order=0, class_ids=list(class_ids),
                     extra={}, archived=archived, version=1)


def tag_group(id: str, name: str, selection: str, tags: list[tuple[str, str, bool]], *,
              archived: bool = False) -> TagGroup:
    return TagGroup(id=id, name=name, selection=selection, required=True, order=0, description="", extra={},
                    archived=archived, version=1,
                    tags=[TagClass(id=i, group_id=id, name=n, color="#000000", order=0, description="",
                                   external_id=None, extra={}, archived=a, version=1) for i, n, a in tags])


SCHEMA = validation.SchemaIndex.from_schema(LabelSchema(
    version=7,
    label_classes=[label_class(CAR, "car"), label_class(PERSON, "person", keypoint_schema_id=POSE),
                   label_class(OLD_CLASS, "old", archived=True)],
    attributes=[
        attribute(COLOR, "color", "SELECTION", values=((RED, "red", False), (BLUE, "blue", False),
                                                       (GREEN, "green", True))),
        attribute(COUNT, "count", "INT", min=0, max=10),
        attribute(SCORE, "score", "FLOAT", min=0.0, max=1.0),
        attribute(NOTE, "note", "TEXT"),
        attribute(PARKED, "parked", "BOOL", class_ids=(CAR,)),
        attribute(PARTS, "parts", "MULTIPLE_SELECTION", values=((WHEEL, "wheel", False), (DOOR, "door", True)),
                  class_ids=(CAR,)),
        attribute(OCCLUDED, "occluded", "BOOL", required=True, class_ids=(PERSON,)),
        attribute(TRUNCATED, "truncated", "BOOL", required=True, default=False),
        attribute(WEATHER, "weather", "SELECTION", subject="IMAGE", values=((SUNNY, "sunny", False),)),
        attribute(GONE, "gone", "TEXT", archived=True),
    ],
    tag_groups=[tag_group(TIME, "time", "SINGLE", [(DAY, "day", False), (NIGHT, "night", False)]),
                tag_group(FLAGS, "flags", "MULTIPLE", [(BLURRY, "blurry", False), (DARK, "dark", True)]),
                tag_group(LEGACY, "legacy", "MULTIPLE", [(OLD_TAG, "old tag", False)], archived=True)],
    keypoint_schemas=[KeypointSchema(id=POSE, name="pose", description="", keypoints=["nose", "left eye", "right eye"],
                                     skeleton=[], colors=None, order=0, extra={}, archived=False, version=1)],
))


def check(item: dict) -> ObjectInput:
    return validation.check_object(msgspec.convert(item, ObjectInput), SCHEMA, WIDTH, HEIGHT, "$.items[0]",
                                   what="object 0")


def error(call, *args, **kwargs) -> LoupeError:
    with pytest.raises(LoupeError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == "invalid"
    return caught.value


def box(*coordinates: float) -> dict:
    return {"type": "bbox", "box": list(coordinates)}


def polygon(points: list, holes: tuple = ()) -> dict:
    return {"type": "polygon", "points": points, "holes": list(holes)}


def png(mask: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50]]
KEYPOINTS = {"type": "keypoints", "keypoints": [[5, 5, 2], [500, 500, 0], [6, 6, 1]]}
PERSON_ATTRIBUTES = {OCCLUDED: False}


def test_a_valid_object_comes_back_normalised() -> None:
    checked = check({"class_id": CAR, "shape": box(0, 0, WIDTH + 1e-7, HEIGHT),
                     "attributes": {COLOR: "Red", COUNT: 3.0, SCORE: 1, PARTS: ["wheel"], NOTE: "dented",
                                    PARKED: True, TRUNCATED: None}})
    assert checked.attributes == {COLOR: RED, COUNT: 3, SCORE: 1.0, PARTS: [WHEEL], NOTE: "dented", PARKED: True}
    assert isinstance(checked.attributes[COUNT], int) and isinstance(checked.attributes[SCORE], float)
    assert check({"class_id": CAR, "shape": box(1, 2, 3, 4), "attributes": {COLOR: BLUE}}).attributes == {COLOR: BLUE}


def test_keypoints_not_labelled_are_ignored_and_zeroed() -> None:
    checked = check({"class_id": PERSON, "shape": KEYPOINTS, "attributes": PERSON_ATTRIBUTES})
    assert checked.shape.keypoints == [(5, 5, 2), (0, 0, 0), (6, 6, 1)]


def test_masks_are_stored_as_compressed_rle() -> None:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[10:20, 30:60] = 255
    expected = coco_mask.encode(np.asfortranarray(mask > 0).astype(np.uint8))["counts"].decode()
    from_png = check({"class_id": CAR, "shape": {"type": "mask", "png": png(mask)}}).shape
    assert (from_png.png, from_png.rle.size, from_png.rle.counts) == (None, (HEIGHT, WIDTH), expected)
    runs = [30 * HEIGHT + 10] + [10, HEIGHT - 10] * 29 + [10, HEIGHT - 20 + 40 * HEIGHT]  # the same, column-major
    from_list = check({"class_id": CAR, "shape": {"type": "mask", "rle": {"size": [HEIGHT, WIDTH], "counts": runs}}})
    assert from_list.shape.rle.counts == expected
    as_string = {"type": "mask", "rle": {"size": [HEIGHT, WIDTH], "counts": expected}}
    assert check({"class_id": CAR, "shape": as_string}).shape.rle.counts == expected


def mask(counts, size=(HEIGHT, WIDTH)) -> dict:
    return {"type": "mask", "rle": {"size": list(size), "counts": counts}}


@pytest.mark.parametrize(("item", "path"), [
    ({"class_id": str(uuid.uuid4()), "shape": box(0, 0, 1, 1)}, "class_id"),
    ({"class_id": OLD_CLASS, "shape": box(0, 0, 1, 1)}, "class_id"),
    # boxes
    ({"class_id": CAR, "shape": box(0, 0, WIDTH + 1, 10)}, "shape.box"),
    ({"class_id": CAR, "shape": box(-1, 0, 10, 10)}, "shape.box"),
    ({"class_id": CAR, "shape": box(10, 0, 5, 10)}, "shape.box"),
    ({"class_id": CAR, "shape": box(0, 5, 10, 5)}, "shape.box"),
    ({"class_id": CAR, "shape": box(0, 0, float("nan"), 10)}, "shape.box"),
    ({"class_id": CAR, "shape": box(0, 0, float("inf"), 10)}, "shape.box"),
    # polygons
    ({"class_id": CAR, "shape": polygon([[0, 0], [10, 10], [10, 0], [0, 10]])}, "shape.points"),  # a bowtie
    ({"class_id": CAR, "shape": polygon([[0, 0], [10, 10], [0, 0]])}, "shape.points"),
    ({"class_id": CAR, "shape": polygon([[0, 0], [10, 10], [0, 10], [0, 0]])}, None),
    ({"class_id": CAR, "shape": polygon([[0, 0], [10, 10], [0, HEIGHT + 1]])}, "shape.points[2]"),
    ({"class_id": CAR, "shape": polygon([[0, 0], [10, 10], [float("nan"), 1]])}, "shape.points[2]"),
    ({"class_id": CAR, "shape": polygon(SQUARE, [[[60, 60], [70, 60], [70, 70]]])}, "shape.holes[0]"),
    ({"class_id": CAR, "shape": polygon(SQUARE, [[[20, 20], [30, 30], [30, 20], [20, 30]]])}, "shape.holes[0]"),
    ({"class_id": CAR, "shape": polygon(SQUARE, [[[20, 20], [30, 20], [30, 30]], [[25, 21], [35, 21], [35, 40]]])},
     "shape.holes"),
    ({"class_id": CAR, "shape": polygon(SQUARE, [[[20, 20], [30, 20], [30, 30]]])}, None),
    # polylines, points, keypoints
    ({"class_id": CAR, "shape": {"type": "polyline", "points": [[0, 0], [WIDTH, HEIGHT + 0.5]]}}, "shape.points[1]"),
    ({"class_id": CAR, "shape": {"type": "point", "point": [WIDTH + 0.5, 0]}}, "shape.point"),
    ({"class_id": CAR, "shape": {"type": "point", "point": [WIDTH, HEIGHT]}}, None),
    ({"class_id": CAR, "shape": KEYPOINTS}, "shape"),
    ({"class_id": PERSON, "shape": {"type": "keypoints", "keypoints": [[1, 1, 2]]}, "attributes": PERSON_ATTRIBUTES},
     "shape.keypoints"),
    ({"class_id": PERSON, "shape": {"type": "keypoints", "keypoints": [[1, 1, 2], [1, -1, 1], [0, 0, 0]]},
      "attributes": PERSON_ATTRIBUTES}, "shape.keypoints[1]"),
    # masks
    ({"class_id": CAR, "shape": {"type": "mask"}}, "shape"),
    ({"class_id": CAR, "shape": {"type": "mask", "rle": {"size": [HEIGHT, WIDTH], "counts": "PT5"}, "png": "x"}},
     "shape"),
    ({"class_id": CAR, "shape": mask([WIDTH * HEIGHT], size=(WIDTH, HEIGHT))}, "shape.rle.size"),
    ({"class_id": CAR, "shape": mask([10, WIDTH * HEIGHT - 11])}, "shape.rle.counts"),
    ({"class_id": CAR, "shape": mask([-10, WIDTH * HEIGHT + 10])}, "shape.rle.counts"),
    ({"class_id": CAR, "shape": mask("12")}, "shape.rle.counts"),  # covers 3 pixels
    ({"class_id": CAR, "shape": mask("ab")}, "shape.rle.counts"),  # ends inside a count
    ({"class_id": CAR, "shape": mask("1\x7f")}, "shape.rle.counts"),
    ({"class_id": CAR, "shape": {"type": "mask", "png": "not base64!"}}, "shape.png"),
    ({"class_id": CAR, "shape": {"type": "mask", "png": base64.b64encode(b"not a png").decode()}}, "shape.png"),
    ({"class_id": CAR, "shape": {"type": "mask", "png": png(np.zeros((WIDTH, HEIGHT), np.uint8))}}, "shape.png"),
    # attributes
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {"size": 3}}, "attributes.size"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {GONE: "x"}}, f"attributes.{GONE}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {WEATHER: "sunny"}}, f"attributes.{WEATHER}"),
    ({"class_id": PERSON, "shape": box(0, 0, 1, 1), "attributes": {OCCLUDED: True, PARKED: True}},
     f"attributes.{PARKED}"),
    ({"class_id": PERSON, "shape": box(0, 0, 1, 1)}, f"attributes.{OCCLUDED}"),
    ({"class_id": PERSON, "shape": box(0, 0, 1, 1), "attributes": {OCCLUDED: None}}, f"attributes.{OCCLUDED}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {COUNT: 11}}, f"attributes.{COUNT}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {COUNT: -1}}, f"attributes.{COUNT}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {COUNT: True}}, f"attributes.{COUNT}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {COUNT: 2.5}}, f"attributes.{COUNT}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {SCORE: 1.5}}, f"attributes.{SCORE}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {SCORE: "0.5"}}, f"attributes.{SCORE}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {SCORE: float("nan")}}, f"attributes.{SCORE}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {NOTE: 5}}, f"attributes.{NOTE}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {PARKED: 1}}, f"attributes.{PARKED}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {COLOR: "purple"}}, f"attributes.{COLOR}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {COLOR: "green"}}, f"attributes.{COLOR}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {COLOR: GREEN}}, f"attributes.{COLOR}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {COLOR: ["red"]}}, f"attributes.{COLOR}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {PARTS: "wheel"}}, f"attributes.{PARTS}"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {PARTS: ["wheel", WHEEL]}}, f"attributes.{PARTS}[1]"),
    ({"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {PARTS: ["wheel", "door"]}}, f"attributes.{PARTS}[1]"),
])
def test_object_rules(item: dict, path: str | None) -> None:
    if path is None:
        check(item)
        return
    problem = error(check, item)
    assert problem.details["path"] == f"$.items[0].{path}"
    if path != "class_id":
        assert problem.message.startswith("object 0 (")


def test_messages_name_the_object_its_class_and_the_problem() -> None:
    bowtie = error(check, {"class_id": CAR, "shape": polygon([[0, 0], [10, 10], [10, 0], [0, 10]])})
    assert bowtie.message.startswith("object 0 (car): ") and "Self-intersection[5 5]" in bowtie.message
    assert "[0, 10]" in error(check, {"class_id": CAR, "shape": box(0, 0, 1, 1), "attributes": {COUNT: 11}}).message
    assert "restore it" in error(check, {"class_id": OLD_CLASS, "shape": box(0, 0, 1, 1)}).message


def test_tags() -> None:
    assert validation.check_tags([uuid.UUID(DAY), BLURRY], SCHEMA, "$.tag_class_ids") == [DAY, BLURRY]
    for tags, index in (([str(uuid.uuid4())], 0), ([DAY, DARK], 1), ([OLD_TAG], 0), ([BLURRY, BLURRY], 1),
                        ([DAY, BLURRY, NIGHT], 2)):
        problem = error(validation.check_tags, tags, SCHEMA, "$.tag_class_ids")
        assert problem.details["path"] == f"$.tag_class_ids[{index}]"


def test_image_attributes() -> None:
    assert validation.check_image_attributes({WEATHER: "Sunny"}, SCHEMA, "$.attributes") == {WEATHER: SUNNY}
    assert validation.check_image_attributes({}, SCHEMA, "$.attributes") == {}  # required ones are not enforced
    for values, attribute_id in (({COLOR: "red"}, COLOR), ({"nope": 1}, "nope"), ({WEATHER: "rain"}, WEATHER)):
        problem = error(validation.check_image_attributes, values, SCHEMA, "$.attributes")
        assert problem.details["path"] == f"$.attributes.{attribute_id}"
