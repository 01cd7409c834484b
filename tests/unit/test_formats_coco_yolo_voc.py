"""COCO, YOLO and Pascal VOC exports and imports, and the native import: checked against pycocotools
(the reference for COCO files and RLE) and by export → import round trips."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from proto.annotation import (BoxShape, KeypointsShape, LabelObject, MaskShape, PointShape, PolygonShape,
                              PolylineShape, Rle)
from proto.releases import (NATIVE_FORMAT_VERSION, ReleaseDataset, ReleaseHeader, ReleaseInfo, ReleaseLabel,
                            ReleaseProject, ReleaseSample)
from proto.schema import Attribute, AttributeValue, KeypointSchema, LabelClass, LabelSchema, TagClass, TagGroup
from services.annotation import geometry
from services.annotation.formats import coco, native, voc, yolo
from services.annotation.formats.target import ExportTarget
from shared.errors import LoupeError


def ident(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


CAR, PERSON, POSE, COLOR, RED, WEATHER, SUNNY, TIME, DAY = (
    ident(n) for n in ("car", "person", "pose", "color", "red", "weather", "sunny", "time", "day"))


def label_class(id: str, name: str, order: int, keypoint_schema_id: str | None = None) -> LabelClass:
    return LabelClass(id=id, name=name, kind="object", color="#1f77b4", order=order, description="",
                      external_id=None, keypoint_schema_id=keypoint_schema_id, extra={}, archived=False, version=1)


def attribute(id: str, name: str, subject: str, value: tuple[str, str]) -> Attribute:
    return Attribute(id=id, name=name, type="SELECTION", subject=subject,
                     values=[AttributeValue(id=value[0], value=value[1], archived=False)], min=None, max=None,
                     required=False, default=None, description="", order=0, class_ids=[], extra={},
                     archived=False, version=1)


SCHEMA = LabelSchema(
    version=3,
    label_classes=[label_class(CAR, "car", 1), label_class(PERSON, "person", 0, keypoint_schema_id=POSE)],
    attributes=[attribute(COLOR, "color", "LABEL", (RED, "red")), attribute(WEATHER, "weather", "IMAGE", (SUNNY, "sunny"))],
    tag_groups=[TagGroup(id=TIME, name="time", selection="SINGLE", required=False, order=0, description="",
                         extra={}, archived=False, version=1,
                         tags=[TagClass(id=DAY, group_id=TIME, name="day", color="#000000", order=0, description="",
                                        external_id=None, extra={}, archived=False, version=1)])],
    keypoint_schemas=[KeypointSchema(id=POSE, name="pose", description="", keypoints=["nose", "left eye", "right eye"],
                                     skeleton=[(0, 1), (0, 2)], colors=None, order=0, extra={}, archived=False,
                                     version=1)])
HEADER = ReleaseHeader(
    format=NATIVE_FORMAT_VERSION, project=ReleaseProject(id="p1", name="Streets", task_type="vision"),
    release=ReleaseInfo(id="r1", name="v1", description="first", created_at=datetime(2025, 3, 1, tzinfo=timezone.utc)),
    label_schema=SCHEMA, labelsets=["ground-truth"], datasets=[ReleaseDataset(id="d1", name="main")],
    samples=3, objects=9)

# Sample A is 40 wide and 30 high.
HOLED = np.zeros((30, 40), dtype=np.uint8)
HOLED[15:27, 2:14] = 1
HOLED[18:22, 5:9] = 0
yy, xx = np.mgrid[:30, :40]
DISC = ((xx - 26) ** 2 + (yy - 23) ** 2 <= 16).astype(np.uint8)
# Sample B is 20 wide and 50 high; its mask is given with plain list counts.
STRIPE = np.zeros((50, 20), dtype=np.uint8)
STRIPE[10:40, 3:7] = 1


def encode(mask: np.ndarray) -> dict:
    return mask_utils.encode(np.asfortranarray(mask))


def rle(mask: np.ndarray) -> Rle:
    return Rle(size=mask.shape, counts=encode(mask)["counts"].decode())


def obj(name: str, class_id: str, shape, **fields) -> LabelObject:
    return LabelObject(id=ident(name), class_id=class_id, shape=shape, **fields)


SAMPLE_A_OBJECTS = [
    obj("box", CAR, BoxShape(box=(2, 3, 12.5, 13)), confidence=0.9, attributes={COLOR: RED}),
    obj("triangle", CAR, PolygonShape(points=[(20, 2), (35, 2), (27, 12)])),
    obj("holed", CAR, PolygonShape(points=[(2, 15), (14, 15), (14, 27), (2, 27)],
                                   holes=[[(5, 18), (9, 18), (9, 22), (5, 22)]])),
    obj("disc", CAR, MaskShape(rle=rle(DISC))),
    obj("pose", PERSON, KeypointsShape(keypoints=[(10, 5, 2), (12, 8, 1), (0, 0, 0)])),
    obj("line", CAR, PolylineShape(points=[(1, 1), (5, 5)])),
    obj("dot", CAR, PointShape(point=(3, 3))),
]
SAMPLE_B_OBJECTS = [
    obj("stripe", PERSON, MaskShape(rle=Rle(size=(50, 20), counts=geometry.rle_counts(rle(STRIPE))))),
    obj("box b", PERSON, BoxShape(box=(1.25, 2.5, 18, 47.75))),
]


def samples() -> list[ReleaseSample]:
    def labels(objects: list[LabelObject]) -> dict[str, ReleaseLabel]:
        return {"ground-truth": ReleaseLabel(status="LABELED", objects=objects, tag_class_ids=[DAY],
                                             attributes={WEATHER: SUNNY})}
    return [ReleaseSample(id=ident("a"), dataset_id="d1", name="street/a.jpg", width=40, height=30,
                          content_hash="hash-a", labels=labels(SAMPLE_A_OBJECTS)),
            ReleaseSample(id=ident("b"), dataset_id="d1", name="b.png", width=20, height=50,
                          labels=labels(SAMPLE_B_OBJECTS)),
            ReleaseSample(id=ident("c"), dataset_id="d1", name="other/a.jpg", width=10, height=10)]


def url(sample: ReleaseSample) -> str | None:
    return f"https://media.example/{sample.id}" if sample.content_hash else None


def export(module, tmp_path: Path, task: str = "detection", data: list[ReleaseSample] | None = None):
    target = ExportTarget(header=HEADER, out_dir=tmp_path, labelset="ground-truth", task=task, image_url=url)
    return module.export(target, iter(data if data is not None else samples()))


def by_object(coco_api: COCO) -> dict[str, dict]:
    return {ann["loupe_object_id"]: ann for ann in coco_api.dataset["annotations"]}


# -- COCO -------------------------------------------------------------------------------------------

def test_coco_segmentation_export_loads_in_pycocotools_with_its_masks_areas_and_boxes(tmp_path):
    stats = export(coco, tmp_path, "segmentation")
    assert (stats.samples, stats.objects, stats.skipped) == (3, 7, 2)
    assert stats.skipped_reasons == {"polyline: no COCO form": 1, "point: no COCO form": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["annotations.json"]  # the temporary file is gone
    api = COCO(str(tmp_path / "annotations.json"))

    assert api.dataset["categories"] == [
        {"id": 1, "name": "person", "supercategory": "", "keypoints": ["nose", "left eye", "right eye"],
         "skeleton": [[1, 2], [1, 3]]},
        {"id": 2, "name": "car", "supercategory": ""}]
    assert api.dataset["images"][0] == {"id": 1, "file_name": "street/a.jpg", "width": 40, "height": 30,
                                        "loupe_sample_id": ident("a"), "coco_url": f"https://media.example/{ident('a')}"}
    assert [image["id"] for image in api.dataset["images"]] == [1, 2, 3]
    assert [ann["id"] for ann in api.dataset["annotations"]] == list(range(1, 8))

    anns = by_object(api)
    box = anns[ident("box")]
    assert box["bbox"] == [2, 3, 10.5, 10] and box["area"] == 105 and box["score"] == 0.9
    assert box["segmentation"] == [[2, 3, 12.5, 3, 12.5, 13, 2, 13]] and box["category_id"] == 2
    assert "score" not in anns[ident("triangle")]
    assert anns[ident("triangle")]["segmentation"] == [[20, 2, 35, 2, 27, 12]]
    assert anns[ident("triangle")]["bbox"] == [20, 2, 15, 10]

    for name, mask in (("holed", HOLED), ("disc", DISC), ("stripe", STRIPE)):
        ann = anns[ident(name)]
        expected = encode(mask)
        assert api.annToRLE(ann)["counts"] == expected["counts"].decode(), name
        assert np.array_equal(api.annToMask(ann), mask), name
        assert ann["area"] == mask_utils.area(expected), name
        assert ann["bbox"] == mask_utils.toBbox(expected).tolist(), name
    assert anns[ident("triangle")]["area"] == 75  # polygons keep their exact area, as in COCO's files

    pose = anns[ident("pose")]
    assert pose["keypoints"] == [10, 5, 2, 12, 8, 1, 0, 0, 0] and pose["num_keypoints"] == 2
    assert pose["bbox"] == [10, 5, 2, 3] and pose["area"] == 6 and pose["category_id"] == 1


def test_coco_detection_export_writes_boxes_with_the_shapes_areas(tmp_path):
    export(coco, tmp_path, "detection")
    anns = by_object(COCO(str(tmp_path / "annotations.json")))
    assert all(ann["segmentation"] == [] for ann in anns.values())
    assert anns[ident("triangle")]["bbox"] == [20, 2, 15, 10] and anns[ident("triangle")]["area"] == 75
    assert anns[ident("holed")]["bbox"] == [2, 15, 12, 12] and anns[ident("holed")]["area"] == 144 - 16
    assert anns[ident("disc")]["area"] == DISC.sum()
    assert anns[ident("disc")]["bbox"] == mask_utils.toBbox(encode(DISC)).tolist()


def test_coco_import_of_a_segmentation_export_gives_the_same_shapes(tmp_path):
    export(coco, tmp_path, "segmentation")
    images = list(coco.parse(tmp_path / "annotations.json"))
    assert [(i.file_name, i.width, i.height, len(i.objects)) for i in images] == [
        ("street/a.jpg", 40, 30, 5), ("b.png", 20, 50, 2), ("other/a.jpg", 10, 10, 0)]
    a, b = images[0].objects, images[1].objects
    assert [o.class_name for o in a] == ["car", "car", "car", "car", "person"]
    assert a[0].shape == PolygonShape(points=[(2, 3), (12.5, 3), (12.5, 13), (2, 13)]) and a[0].confidence == 0.9
    assert a[1].shape == SAMPLE_A_OBJECTS[1].shape
    assert a[2].shape == MaskShape(rle=rle(HOLED))  # a polygon with holes travels as RLE
    assert a[3].shape == SAMPLE_A_OBJECTS[3].shape
    assert a[4].shape == KeypointsShape(keypoints=[(10, 5, 2), (12, 8, 1), (0, 0, 0)])
    assert b[0].shape == MaskShape(rle=rle(STRIPE))


def test_coco_import_of_a_detection_export_gives_the_boxes(tmp_path):
    export(coco, tmp_path, "detection")
    objects = next(coco.parse(tmp_path / "annotations.json")).objects
    assert [c for o in objects[:3] for c in o.shape.box] == pytest.approx([2, 3, 12.5, 13, 20, 2, 35, 12, 2, 15, 14, 27])


def test_coco_import_reads_several_polygons_and_list_counts_as_masks(tmp_path):
    document = {
        "images": [{"id": 7, "file_name": "x.jpg", "width": 20, "height": 50}],
        "categories": [{"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
             "segmentation": [[0, 0, 4, 0, 4, 4, 0, 4], [10, 10, 14, 10, 14, 14, 10, 14]]},
            {"id": 2, "image_id": 7, "category_id": 3, "iscrowd": 1,
             "segmentation": {"size": [50, 20], "counts": geometry.rle_counts(rle(STRIPE))}},
            {"id": 3, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}]}
    (tmp_path / "c.json").write_text(json.dumps(document))
    image, = coco.parse(tmp_path / "c.json")
    expected = np.zeros((50, 20), dtype=np.uint8)
    expected[0:4, 0:4] = expected[10:14, 10:14] = 1
    assert [o.shape for o in image.objects] == [MaskShape(rle=rle(expected)), MaskShape(rle=rle(STRIPE)),
                                                BoxShape(box=(1, 2, 4, 6))]
    assert image.objects[2].confidence == 0.5


@pytest.mark.parametrize("document, path, words", [
    ({"images": [{"id": 1, "file_name": "x.jpg"}], "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 5, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}]},
     "$.annotations[0].image_id", "annotation 0 (id 5)"),
    ({"images": [{"id": 1, "file_name": "x.jpg"}], "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 5, "image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]}]},
     "$.annotations[0].category_id", "category 9"),
    ({"images": [{"id": 1, "file_name": "x.jpg"}], "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": "wide"}]},
     "$.annotations[0].bbox", "Expected"),
    ({"images": [{"id": 1, "file_name": "x.jpg"}], "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, 4]]}]},
     "$.annotations[0].segmentation[0]", "at least 3 points"),
    ({"images": [{"id": 1, "file_name": "x.jpg", "width": 4, "height": 4}], "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "segmentation": {"size": [4, 4], "counts": [3, 2]}}]},
     "$.annotations[0].segmentation.counts", "add up to 5"),
    ({"categories": []}, "$", "images"),
])
def test_coco_import_errors_name_the_file_annotation_and_field(tmp_path, document, path, words):
    (tmp_path / "bad.json").write_text(json.dumps(document))
    with pytest.raises(LoupeError) as error:
        list(coco.parse(tmp_path / "bad.json"))
    assert error.value.code == "invalid" and error.value.details["path"] == path
    assert "bad.json" in error.value.message and words in error.value.message


def test_coco_import_refuses_what_is_not_json(tmp_path):
    (tmp_path / "bad.json").write_text('{"images": [')
    with pytest.raises(LoupeError, match="bad.json is not valid JSON"):
        list(coco.parse(tmp_path / "bad.json"))


def test_coco_export_streams_20000_samples_of_10_boxes(tmp_path):
    boxes = [obj(f"box {i}", CAR, BoxShape(box=(i, i, i + 10.5, i + 20))) for i in range(10)]
    label = {"ground-truth": ReleaseLabel(status="LABELED", objects=boxes)}
    generated = (ReleaseSample(id=str(i), dataset_id="d1", name=f"{i}.jpg", width=640, height=480, labels=label)
                 for i in range(20_000))
    stats = coco.export(ExportTarget(header=HEADER, out_dir=tmp_path, labelset="ground-truth", task="detection",
                                     image_url=url), generated)
    assert (stats.samples, stats.objects) == (20_000, 200_000)
    document = msgspec.json.decode((tmp_path / "annotations.json").read_bytes())
    assert len(document["images"]) == 20_000 and len(document["annotations"]) == 200_000
    assert document["annotations"][-1]["id"] == 200_000 and document["annotations"][-1]["image_id"] == 20_000


# -- YOLO -------------------------------------------------------------------------------------------

def sizes_of(data: list[ReleaseSample]):
    stems = yolo.Stems()
    sizes = {stems(s.name): (s.width, s.height) for s in data}
    return sizes.get


def test_yolo_detection_export_and_import_give_the_same_boxes(tmp_path):
    data = samples()
    stats = export(yolo, tmp_path, "detection", data)
    assert (stats.samples, stats.objects) == (3, 6)
    assert stats.skipped_reasons == {"keypoints: no YOLO detection form": 1, "polyline: no YOLO detection form": 1,
                                     "point: no YOLO detection form": 1}
    data_yaml = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data_yaml["names"] == {0: "person", 1: "car"} and data_yaml["nc"] == 2
    assert yolo.read_names(tmp_path / "data.yaml") == ["person", "car"]
    assert (tmp_path / "images.txt").read_text() == (f"a\thttps://media.example/{ident('a')}\nb\tb.png\n"
                                                     "a_2\tother/a.jpg\n")
    assert (tmp_path / "labels" / "a.txt").read_text().splitlines()[0] == "1 0.181250 0.266667 0.262500 0.333333"
    assert (tmp_path / "labels" / "a_2.txt").read_text() == ""

    images = list(yolo.parse(tmp_path, sizes_of(data)))
    assert [(i.file_name, i.width, i.height) for i in images] == [("a", 40, 30), ("a_2", 10, 10), ("b", 20, 50)]
    a, b = images[0].objects, images[2].objects
    assert [o.class_name for o in a] == ["car"] * 4
    expected_a = [(2, 3, 12.5, 13), (20, 2, 35, 12), (2, 15, 14, 27), (22, 19, 31, 28)]
    for imported, box in zip(a, expected_a):
        assert imported.shape.box == pytest.approx(box, rel=0, abs=1e-6 * 40)
    assert b[1].shape.box == pytest.approx((1.25, 2.5, 18, 47.75), rel=0, abs=1e-6 * 50)


def test_yolo_segmentation_export_and_import_give_the_polygons(tmp_path):
    data = samples()
    stats = export(yolo, tmp_path, "segmentation", data)
    assert stats.objects == 4 and stats.skipped_reasons["mask: no YOLO segmentation form"] == 2
    objects = next(yolo.parse(tmp_path, sizes_of(data))).objects
    for imported, original in zip(objects, [(2, 3, 12.5, 3, 12.5, 13, 2, 13), (20, 2, 35, 2, 27, 12),
                                            (2, 15, 14, 15, 14, 27, 2, 27)]):
        assert [c for point in imported.shape.points for c in point] == pytest.approx(original, rel=0, abs=1e-6 * 40)


def test_yolo_import_yields_an_image_it_cannot_size_without_objects(tmp_path):
    export(yolo, tmp_path)
    assert [(i.file_name, i.width, i.objects) for i in yolo.parse(tmp_path, lambda name: None)][0] == ("a", None, [])


@pytest.mark.parametrize("text", [
    "names: [person, 'car', \"big \\\"truck\\\"\"]  # comment\n",
    "nc: 3\nnames:\n  - person\n  - car  # comment\n  - \"big \\\"truck\\\"\"\ntrain: images\n",
    "names:\n  2: 'big \"truck\"'\n  0: person\n  1: car\npath: .\n",
    "names: {0: person, 1: car, 2: 'big \"truck\"'}\n",
])
def test_yolo_reads_names_in_each_yaml_style(tmp_path, text):
    (tmp_path / "data.yaml").write_text(text)
    assert yolo.read_names(tmp_path / "data.yaml") == ["person", "car", 'big "truck"']
    assert yolo.read_names(tmp_path / "data.yaml") == list(_yaml_names(text))


def _yaml_names(text: str):
    names = yaml.safe_load(text)["names"]
    return [names[i] for i in sorted(names)] if isinstance(names, dict) else names


@pytest.mark.parametrize("line, words", [
    ("7 0.5 0.5 0.1 0.1", "class '7' is not an index"),
    ("0 0.5 0.5 0.1", "are 3 numbers"),
    ("0 0.5 0.5 1.5 0.1", "'1.5' is not a number between 0 and 1"),
    ("0 0.5 0.5 0 0.1", "both must be positive"),
])
def test_yolo_import_errors_name_the_file_and_line(tmp_path, line, words):
    (tmp_path / "data.yaml").write_text("names: [a, b]\n")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(LoupeError) as error:
        list(yolo.parse(tmp_path, lambda name: (100, 100)))
    assert error.value.code == "invalid" and error.value.details["path"] == "labels/x.txt:2"
    assert "labels/x.txt, line 2" in error.value.message and words in error.value.message


def test_yolo_import_needs_data_yaml(tmp_path):
    with pytest.raises(LoupeError, match="data.yaml"):
        list(yolo.parse(tmp_path, lambda name: None))


# -- Pascal VOC -------------------------------------------------------------------------------------

def test_voc_export_and_import_give_the_same_boxes(tmp_path):
    stats = export(voc, tmp_path)
    assert (stats.samples, stats.objects, stats.skipped) == (3, 6, 3)
    assert (tmp_path / "ImageSets" / "Main" / "default.txt").read_text() == "a\nb\na_2\n"
    xml = (tmp_path / "Annotations" / "a.xml").read_text()
    assert "<filename>a.jpg</filename>" in xml and "<depth>3</depth>" in xml
    assert "<xmin>3</xmin>\n      <ymin>4</ymin>\n      <xmax>12.5</xmax>\n      <ymax>13</ymax>" in xml

    images = list(voc.parse(tmp_path))
    assert [(i.file_name, i.width, i.height, len(i.objects)) for i in images] == [
        ("a.jpg", 40, 30, 4), ("a_2.jpg", 10, 10, 0), ("b.png", 20, 50, 2)]
    assert [o.shape.box for o in images[0].objects] == [(2, 3, 12.5, 13), (20, 2, 35, 12), (2, 15, 14, 27),
                                                        (22, 19, 31, 28)]
    assert [o.shape.box for o in images[2].objects] == [(3, 10, 7, 40), (1.25, 2.5, 18, 47.75)]
    assert [o.class_name for o in images[2].objects] == ["person", "person"]


@pytest.mark.parametrize("xml, path, words", [
    ("<annotation><filename>x.jpg</filename><object><name>a</name>"
     "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>wide</xmax><ymax>5</ymax></bndbox></object></annotation>",
     "annotation.object[0].bndbox.xmax", "object 0 (a)"),
    ("<annotation><object><name>a</name></object></annotation>", "annotation.filename", "is missing"),
    ("<annotation><filename>x.jpg</filename><object><name>a</name>"
     "<bndbox><xmin>5</xmin><ymin>1</ymin><xmax>4</xmax><ymax>5</ymax></bndbox></object></annotation>",
     "annotation.object[0].bndbox", "xmax must exceed"),
    ("<annotation><filename>x.jpg</filename", "annotation", "not well-formed XML"),
])
def test_voc_import_errors_name_the_file_object_and_field(tmp_path, xml, path, words):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "x.xml").write_text(xml)
    with pytest.raises(LoupeError) as error:
        list(voc.parse(tmp_path))
    assert error.value.code == "invalid" and error.value.details["path"] == path
    assert "Annotations/x.xml" in error.value.message and words in error.value.message


# -- native -----------------------------------------------------------------------------------------

def write_release(path: Path, data: list[ReleaseSample]) -> None:
    path.write_bytes(b"".join(msgspec.json.encode(line) + b"\n" for line in [HEADER, *data]))


def test_native_import_names_classes_tags_and_attributes(tmp_path):
    write_release(tmp_path / "release.jsonl", samples())
    images = list(native.parse(tmp_path / "release.jsonl", labelset="ground-truth"))
    a = images[0]
    assert (a.file_name, a.width, a.height, a.status, a.content_hash) == ("street/a.jpg", 40, 30, "LABELED", "hash-a")
    assert a.tags == ["day"] and a.attributes == {"weather": "sunny"}
    assert [o.class_name for o in a.objects] == ["car"] * 4 + ["person", "car", "car"]
    assert [o.shape for o in a.objects] == [o.shape for o in SAMPLE_A_OBJECTS]
    assert a.objects[0].attributes == {"color": "red"} and a.objects[0].confidence == 0.9
    assert (images[2].status, images[2].objects, images[2].tags) == (None, [], [])


def test_native_import_refuses_ids_outside_the_schema_and_unknown_labelsets(tmp_path):
    bad = samples()[1]
    bad = msgspec.structs.replace(bad, labels={"ground-truth": ReleaseLabel(
        status="LABELED", objects=[obj("x", ident("nope"), BoxShape(box=(0, 0, 1, 1)))])})
    write_release(tmp_path / "release.jsonl", [samples()[0], bad])
    with pytest.raises(LoupeError) as error:
        list(native.parse(tmp_path / "release.jsonl"))
    assert error.value.details["path"] == "$.labels.ground-truth.objects[0].class_id"
    assert "sample 2 (b.png)" in error.value.message
    with pytest.raises(LoupeError, match="no labelset 'predictions'"):
        list(native.parse(tmp_path / "release.jsonl", labelset="predictions"))
