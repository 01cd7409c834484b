"""Semantic PNG, Segments.ai release, Hasty json_v1.1 and native exports of a small synthetic release."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from proto.annotation import (BoxShape, KeypointsShape, LabelObject, MaskShape, PointShape, PolygonShape,
                              PolylineShape, Rle)
from proto.releases import (NATIVE_FORMAT_VERSION, ReleaseDataset, ReleaseHeader, ReleaseInfo, ReleaseLabel,
                            ReleaseProject, ReleaseSample)
from proto.schema import Attribute, AttributeValue, KeypointSchema, LabelClass, LabelSchema, TagClass, TagGroup
from services.annotation.formats import hasty, native_export, segments, semantic_png
from services.annotation.formats.jsonstream import STREAMED_ARRAY, streamed_json
from services.annotation.formats.target import ExportTarget
from shared import hasty_format
from shared.errors import LoupeError

SIZE = 20
CAR, PERSON, ROAD = "c-car", "c-person", "c-road"
COLOR_ATTR, NOTE_ATTR, WEATHER_ATTR = "a-color", "a-note", "a-weather"
RED = "v-red"
TAG_DAY = "t-day"
CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def label_class(class_id: str, name: str, order: int, kind: str = "object") -> LabelClass:
    return LabelClass(id=class_id, name=name, kind=kind, color="#ff8000", order=order, description="",
                      external_id=None, keypoint_schema_id=None, extra={}, archived=False, version=1)


def attribute(attribute_id: str, name: str, type_: str, subject: str = "LABEL",
              values: list[AttributeValue] | None = None) -> Attribute:
    return Attribute(id=attribute_id, name=name, type=type_, subject=subject, values=values or [], min=None, max=None,
                     required=False, default=None, description="", order=0, class_ids=[], extra={}, archived=False,
                     version=1)


SCHEMA = LabelSchema(
    version=3,
    # Listed out of order: exports sort by (order, name).
    label_classes=[label_class(ROAD, "road", 2, "background"), label_class(CAR, "car", 0),
                   label_class(PERSON, "person", 1)],
    attributes=[attribute(COLOR_ATTR, "color", "SELECTION", values=[AttributeValue(id=RED, value="red",
                                                                                   archived=False)]),
                attribute(NOTE_ATTR, "note", "TEXT"),
                attribute(WEATHER_ATTR, "weather", "TEXT", subject="IMAGE")],
    tag_groups=[TagGroup(id="g-time", name="time", selection="SINGLE", required=False, order=0, description="",
                         extra={}, archived=False, version=1,
                         tags=[TagClass(id=TAG_DAY, group_id="g-time", name="day", color="#ffffff", order=0,
                                        description="", external_id=None, extra={}, archived=False, version=1)])],
    keypoint_schemas=[KeypointSchema(id="k-body", name="body", description="", keypoints=["head", "hand", "foot"],
                                     skeleton=[], colors=None, order=0, extra={}, archived=False, version=1)])


def header(task_type: str = "vector") -> ReleaseHeader:
    return ReleaseHeader(
        format=NATIVE_FORMAT_VERSION, project=ReleaseProject(id="p-1", name="streets", task_type=task_type),
        release=ReleaseInfo(id="r-1", name="v1", description="first", created_at=CREATED),
        label_schema=SCHEMA, labelsets=["ground-truth", "predictions"],
        datasets=[ReleaseDataset(id="d-1", name="city"), ReleaseDataset(id="d-2", name="village")],
        samples=0, objects=0)


def expected_masks() -> dict[str, np.ndarray]:
    """The pixels of the area objects of sample "a", written by hand (pixel (x, y) is [y, x])."""
    box = np.zeros((SIZE, SIZE), dtype=bool)
    box[0:10, 0:10] = True
    polygon = np.zeros((SIZE, SIZE), dtype=bool)
    polygon[5:15, 5:15] = True
    polygon[8:12, 8:12] = False
    road = np.zeros((SIZE, SIZE), dtype=bool)
    road[0:3, :] = True
    return {"box": box, "polygon": polygon, "road": road}


def road_rle() -> Rle:
    encoded = coco_mask.encode(np.asfortranarray(expected_masks()["road"].astype(np.uint8)))
    return Rle(size=(SIZE, SIZE), counts=encoded["counts"].decode())


def obj(object_id: str, class_id: str, shape, z_index: int = 0, attributes: dict | None = None) -> LabelObject:
    return LabelObject(id=object_id, class_id=class_id, shape=shape, z_index=z_index, attributes=attributes or {})


SAMPLE_A_OBJECTS = [
    obj("o-box", CAR, BoxShape(box=(0, 0, 10, 10)), attributes={COLOR_ATTR: RED, NOTE_ATTR: "dented"}),
    obj("o-polygon", PERSON, PolygonShape(points=[(5, 5), (15, 5), (15, 15), (5, 15)],
                                          holes=[[(8, 8), (12, 8), (12, 12), (8, 12)]]), z_index=1),
    obj("o-road", ROAD, MaskShape(rle=road_rle()), z_index=-1),
    obj("o-keypoints", PERSON, KeypointsShape(keypoints=[(1, 1, 2), (0, 0, 0), (3, 3, 1)])),
    obj("o-polyline", CAR, PolylineShape(points=[(0, 19), (19, 19)])),
    obj("o-point", CAR, PointShape(point=(4, 4))),
]


def samples() -> list[ReleaseSample]:
    return [
        ReleaseSample(id="s-a", dataset_id="d-1", name="a.jpg", width=SIZE, height=SIZE, content_hash="h-a",
                      metadata={"camera": "front"},
                      labels={"ground-truth": ReleaseLabel(status="LABELED", objects=SAMPLE_A_OBJECTS,
                                                           tag_class_ids=[TAG_DAY],
                                                           attributes={WEATHER_ATTR: "sunny"},
                                                           updated_at=CREATED),
                              "predictions": ReleaseLabel(status="PRELABELED", score=0.5,
                                                          objects=[obj("o-pred", CAR, BoxShape(box=(1, 1, 4, 4)))])}),
        ReleaseSample(id="s-b", dataset_id="d-1", name="b.jpg", width=SIZE, height=SIZE,
                      labels={"predictions": ReleaseLabel(status="PRELABELED")}),
        # Same file stem as "a.jpg", in another dataset.
        ReleaseSample(id="s-c", dataset_id="d-2", name="photos/a.png", width=SIZE, height=SIZE,
                      labels={"ground-truth": ReleaseLabel(status="REVIEWED")}),
    ]


def image_url(sample: ReleaseSample) -> str:
    return f"https://media.example/{sample.id}?signed"


def target(release: ReleaseHeader, tmp_path: Path, task: str = "segmentation") -> ExportTarget:
    return ExportTarget(header=release, out_dir=tmp_path, labelset="ground-truth", task=task, image_url=image_url)


def run_export(module, tmp_path: Path, task_type: str = "vector", sample_list: list[ReleaseSample] | None = None):
    return module.export(target(header(task_type), tmp_path), iter(sample_list or samples()))


# -- semantic PNG -----------------------------------------------------------------------------------

def test_semantic_png_paints_class_indexes_in_z_order(tmp_path: Path) -> None:
    stats = run_export(semantic_png, tmp_path)

    pixels = np.asarray(Image.open(tmp_path / "masks" / "a.png"))
    assert pixels.dtype == np.uint8 and pixels.shape == (SIZE, SIZE)
    car, person, road = 1, 2, 3
    assert pixels[1, 1] == car  # the box (z 0) over the road mask (z -1)
    assert pixels[1, 15] == road
    assert pixels[6, 6] == person  # the polygon (z 1) over the box
    assert pixels[9, 9] == car  # the polygon's hole shows the box below
    assert pixels[11, 11] == 0  # the hole outside the box is background
    assert pixels[14, 14] == person and pixels[15, 15] == 0
    masks = expected_masks()
    expected = np.zeros((SIZE, SIZE), dtype=np.uint8)
    expected[masks["road"]] = road
    expected[masks["box"]] = car
    expected[masks["polygon"]] = person
    assert np.array_equal(pixels, expected)

    assert (tmp_path / "masks" / "a_2.png").exists()  # the stem "a" was taken
    assert not np.asarray(Image.open(tmp_path / "masks" / "a_2.png")).any()
    assert stats.samples == 2 and stats.objects == 3 and stats.skipped == 3
    assert stats.skipped_reasons == {"keypoints: not an area shape": 1, "polyline: not an area shape": 1,
                                     "point: not an area shape": 1}
    rows = (tmp_path / "classes.csv").read_text().splitlines()
    assert rows == ["index,class_id,name,color", "1,c-car,car,#ff8000", "2,c-person,person,#ff8000",
                    "3,c-road,road,#ff8000"]


def test_semantic_png_is_16_bit_past_255_classes(tmp_path: Path) -> None:
    classes = [label_class(f"c-{number}", f"class {number:03}", number) for number in range(300)]
    many = msgspec.structs.replace(header(), label_schema=msgspec.structs.replace(SCHEMA, label_classes=classes))
    sample = ReleaseSample(id="s-1", dataset_id="d-1", name="x.jpg", width=4, height=4, labels={
        "ground-truth": ReleaseLabel(status="LABELED", objects=[obj("o", "c-299", BoxShape(box=(0, 0, 2, 2)))])})
    semantic_png.export(target(many, tmp_path), iter([sample]))
    pixels = np.asarray(Image.open(tmp_path / "masks" / "x.png"))
    assert pixels.dtype == np.uint16 and pixels[0, 0] == 300 and pixels[3, 3] == 0


def test_unknown_class_names_the_object(tmp_path: Path) -> None:
    sample = ReleaseSample(id="s-1", dataset_id="d-1", name="x.jpg", width=4, height=4, labels={
        "ground-truth": ReleaseLabel(status="LABELED", objects=[obj("o", "c-gone", BoxShape(box=(0, 0, 2, 2)))])})
    with pytest.raises(LoupeError) as raised:
        run_export(semantic_png, tmp_path, sample_list=[sample])
    assert raised.value.code == "invalid"
    assert "object 0" in raised.value.message and "c-gone" in raised.value.message
    assert raised.value.details["path"] == "$.labels.ground-truth.objects[0].class_id"


def test_mask_of_another_size_is_refused(tmp_path: Path) -> None:
    sample = ReleaseSample(id="s-1", dataset_id="d-1", name="x.jpg", width=4, height=4, labels={
        "ground-truth": ReleaseLabel(status="LABELED", objects=[obj("o", ROAD, MaskShape(rle=road_rle()))])})
    with pytest.raises(LoupeError) as raised:
        run_export(semantic_png, tmp_path, sample_list=[sample])
    assert "class 'road'" in raised.value.message
    assert raised.value.details["path"] == "$.labels.ground-truth.objects[0].shape.rle.size"


# -- Segments.ai ------------------------------------------------------------------------------------

def test_segments_vector_release_file(tmp_path: Path) -> None:
    stats = run_export(segments, tmp_path)

    release = json.loads((tmp_path / "release.json").read_bytes())
    assert release["name"] == "v1" and release["description"] == "first"
    assert release["created_at"].startswith("2024-05-01T12:00:00")
    dataset = release["dataset"]
    assert dataset["name"] == "streets" and dataset["task_type"] == "vector"
    assert dataset["labelsets"] == [{"name": "ground-truth", "description": ""},
                                    {"name": "predictions", "description": ""}]
    task_attributes = dataset["task_attributes"]
    assert task_attributes["format_version"] == "0.1"
    assert [(category["id"], category["name"]) for category in task_attributes["categories"]] == [
        (0, "car"), (1, "person"), (2, "road")]
    assert task_attributes["categories"][0]["color"] == [255, 128, 0]
    assert task_attributes["categories"][0]["attributes"] == [
        {"name": "color", "input_type": "select", "values": ["red"]}, {"name": "note", "input_type": "text"}]
    assert task_attributes["image_attributes"] == [{"name": "weather", "input_type": "text"}]

    a, b, c = dataset["samples"]
    assert a["uuid"] == "s-a" and a["name"] == "a.jpg" and a["metadata"] == {"camera": "front"}
    assert a["attributes"] == {"image": {"url": "https://media.example/s-a?signed"}}
    assert set(a["labels"]) == {"ground-truth", "predictions"}
    assert b["labels"]["ground-truth"] is None and b["labels"]["predictions"]["label_status"] == "PRELABELED"
    assert c["labels"]["predictions"] is None

    label = a["labels"]["ground-truth"]
    assert label["label_status"] == "LABELED"
    assert label["attributes"]["format_version"] == "0.1"
    assert label["attributes"]["image_attributes"] == {"weather": "sunny"}
    annotations = label["attributes"]["annotations"]
    assert [annotation["id"] for annotation in annotations] == [1, 2, 3, 4, 5, 6]
    assert annotations[0] == {"id": 1, "category_id": 0, "type": "bbox", "points": [[0, 0], [10, 10]],
                              "attributes": {"color": "red", "note": "dented"}}
    assert annotations[1]["type"] == "polygon" and annotations[1]["points"] == [[5, 5], [15, 5], [15, 15], [5, 15]]
    # keypoints: one point per labelled keypoint (the unlabelled second one is left out)
    assert [(item["type"], item["category_id"], item["points"]) for item in annotations[2:]] == [
        ("point", 1, [[1, 1]]), ("point", 1, [[3, 3]]), ("polyline", 0, [[0, 19], [19, 19]]), ("point", 0, [[4, 4]])]
    assert stats.samples == 3 and stats.objects == 6 and stats.skipped == 1
    assert stats.skipped_reasons == {"mask: Segments vector labels have no such annotation": 1}


def instance_ids(path: Path) -> np.ndarray:
    rgba = np.asarray(Image.open(path)).astype(np.uint32)
    assert (rgba[:, :, 3] == 255).all()
    return rgba[:, :, 0] + 256 * rgba[:, :, 1] + 65536 * rgba[:, :, 2]


def test_segments_bitmap_ids_decode_to_the_objects_masks(tmp_path: Path) -> None:
    stats = run_export(segments, tmp_path, task_type="segmentation-bitmap")

    release = json.loads((tmp_path / "release.json").read_bytes())
    label = release["dataset"]["samples"][0]["labels"]["ground-truth"]["attributes"]
    assert label["segmentation_bitmap"] == {"url": "bitmaps/ground-truth/s-a.png"}
    assert label["annotations"] == [{"id": 1, "category_id": 0, "attributes": {"color": "red", "note": "dented"}},
                                    {"id": 2, "category_id": 1, "attributes": {}},
                                    {"id": 3, "category_id": 2, "attributes": {}}]
    ids = instance_ids(tmp_path / "bitmaps" / "ground-truth" / "s-a.png")
    masks = expected_masks()
    # painted by ascending z_index: road (3), then the box (1), then the polygon (2)
    assert np.array_equal(ids == 2, masks["polygon"])
    assert np.array_equal(ids == 1, masks["box"] & ~masks["polygon"])
    assert np.array_equal(ids == 3, masks["road"] & ~masks["box"] & ~masks["polygon"])
    assert (tmp_path / "bitmaps" / "predictions" / "s-a.png").exists()
    assert stats.skipped_reasons == {"keypoints: not an area shape": 1, "polyline: not an area shape": 1,
                                     "point: not an area shape": 1}


def test_segments_bitmap_ids_past_255_use_green_and_blue(tmp_path: Path) -> None:
    boxes = [obj(f"o-{x}", CAR, BoxShape(box=(x, 0, x + 1, 1))) for x in range(300)]
    sample = ReleaseSample(id="s-wide", dataset_id="d-1", name="wide.jpg", width=300, height=1,
                           labels={"ground-truth": ReleaseLabel(status="LABELED", objects=boxes)})
    run_export(segments, tmp_path, task_type="segmentation-bitmap", sample_list=[sample])
    ids = instance_ids(tmp_path / "bitmaps" / "ground-truth" / "s-wide.png")
    assert ids[0].tolist() == list(range(1, 301))


# -- Hasty ------------------------------------------------------------------------------------------

def test_hasty_json_v1_1(tmp_path: Path) -> None:
    stats = run_export(hasty, tmp_path)

    export = json.loads((tmp_path / "export.json").read_bytes())
    assert export["project_name"] == "streets" and export["export_format_version"] == "1.1"
    assert export["create_date"].startswith("2024-05-01T12:00:00") and export["export_date"]
    assert export["label_classes"] == [
        {"class_name": "car", "color": "#ff8000ff", "class_type": "object", "norder": 0, "attributes": ["color", "note"]},
        {"class_name": "person", "color": "#ff8000ff", "class_type": "object", "norder": 1,
         "attributes": ["color", "note"]},
        {"class_name": "road", "color": "#ff8000ff", "class_type": "background", "norder": 2,
         "attributes": ["color", "note"]}]
    assert export["attributes"] == [{"name": "color", "type": "SELECTION", "values": ["red"]},
                                    {"name": "note", "type": "TEXT", "values": []}]

    a, b, c = export["images"]
    assert (a["image_id"], a["image_name"], a["dataset_name"], a["width"], a["height"]) == (
        "s-a", "a.jpg", "city", SIZE, SIZE)
    assert [a["image_status"], b["image_status"], c["image_status"]] == ["DONE", "NEW", "COMPLETED"]
    assert a["tags"] == ["day"] and b["tags"] == [] and b["labels"] == []
    assert c["dataset_name"] == "village"

    box, polygon, road = a["labels"]
    assert box == {"id": "o-box", "class_name": "car", "bbox": [0, 0, 10, 10], "polygon": None, "mask": None,
                   "z_index": 0, "attributes": {"color": "red", "note": "dented"}}
    masks = expected_masks()
    # a polygon with a hole becomes a mask
    assert polygon["bbox"] == [5, 5, 15, 15] and polygon["polygon"] is None and polygon["z_index"] == 1
    assert np.array_equal(decode_hasty_mask(polygon), masks["polygon"])
    assert road["bbox"] == [0, 0, SIZE, 3] and road["z_index"] == -1
    assert np.array_equal(decode_hasty_mask(road), masks["road"])
    assert stats.samples == 3 and stats.objects == 3 and stats.skipped == 3


def test_hasty_plain_polygon_keeps_its_points(tmp_path: Path) -> None:
    triangle = obj("o-t", PERSON, PolygonShape(points=[(1, 1), (9, 1), (5, 7)]))
    sample = ReleaseSample(id="s-t", dataset_id="d-1", name="t.jpg", width=SIZE, height=SIZE,
                           labels={"ground-truth": ReleaseLabel(status="SKIPPED", objects=[triangle])})
    run_export(hasty, tmp_path, sample_list=[sample])
    image = json.loads((tmp_path / "export.json").read_bytes())["images"][0]
    assert image["image_status"] == "SKIPPED"
    assert image["labels"][0]["polygon"] == [[1, 1], [9, 1], [5, 7]]
    assert image["labels"][0]["bbox"] == [1, 1, 9, 7] and image["labels"][0]["mask"] is None


def decode_hasty_mask(label: dict) -> np.ndarray:
    """The whole image's mask of a Hasty label: runs inside its bbox, row by row, 1-based starts."""
    rle = hasty_format.to_coco(tuple(label["bbox"]), label["mask"], SIZE, SIZE, "label")
    return coco_mask.decode({"size": [SIZE, SIZE], "counts": rle.counts.encode()}).astype(bool)


# -- native -----------------------------------------------------------------------------------------

def test_native_write_then_read_gives_equal_structs(tmp_path: Path) -> None:
    written = samples()
    stats = run_export(native_export, tmp_path, sample_list=written)

    assert stats.samples == 3 and stats.objects == len(SAMPLE_A_OBJECTS) + 1
    read_header, read_samples = native_export.read(tmp_path / "release.jsonl")
    assert read_header == msgspec.structs.replace(header(), samples=3, objects=stats.objects)
    assert list(read_samples) == written
    assert sorted(path.name for path in tmp_path.iterdir()) == ["release.jsonl"]


def test_native_reader_names_the_bad_line(tmp_path: Path) -> None:
    run_export(native_export, tmp_path)
    path = tmp_path / "release.jsonl"
    path.write_bytes(path.read_bytes() + b'{"id": "s-x"}\n')
    _, read_samples = native_export.read(path)
    with pytest.raises(LoupeError) as raised:
        list(read_samples)
    assert raised.value.details["path"] == "line 5"


def test_native_export_streams_20000_samples(tmp_path: Path) -> None:
    def generated() -> Iterator[ReleaseSample]:
        for number in range(20_000):
            box = obj(f"o-{number}", CAR, BoxShape(box=(1, 2, 30, 40)))
            yield ReleaseSample(id=f"s-{number}", dataset_id="d-1", name=f"{number}.jpg", width=640, height=480,
                                labels={"ground-truth": ReleaseLabel(status="LABELED", objects=[box])})

    tracemalloc.start()
    started = time.monotonic()
    try:
        stats = native_export.export(target(header(), tmp_path, "detection"), generated())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.samples == 20_000 and stats.objects == 20_000
    assert peak < 16 * 2**20  # about the write buffer: nothing grows with the number of samples
    assert time.monotonic() - started < 5
    read_header, read_samples = native_export.read(tmp_path / "release.jsonl")
    assert read_header.samples == 20_000
    assert sum(1 for _ in read_samples) == 20_000


# -- the streamed JSON helper -----------------------------------------------------------------------

def test_streamed_json_puts_the_array_where_the_placeholder_is(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    with streamed_json(path, {"a": 1, "inner": {"items": STREAMED_ARRAY, "after": True}}) as items:
        for number in range(3):
            items.append({"n": number})
    assert json.loads(path.read_bytes()) == {"a": 1, "inner": {"items": [{"n": 0}, {"n": 1}, {"n": 2}],
                                                               "after": True}}
    with streamed_json(path, {"items": STREAMED_ARRAY}):
        pass
    assert json.loads(path.read_bytes()) == {"items": []}


def test_hasty_masks_are_runs_inside_their_tight_bbox(tmp_path: Path) -> None:
    """As Hasty writes them (the SDK's `rle_encoding`): row by row inside the bbox, 1-based starts."""
    pixels = np.zeros((SIZE, SIZE), dtype=np.uint8)
    pixels[1:3, 2:5] = 1  # 3 wide, 2 high at (2, 1)
    pixels[2, 2] = 0
    counts = coco_mask.encode(np.asfortranarray(pixels))["counts"].decode()
    square = obj("o-m", PERSON, MaskShape(rle=Rle(size=(SIZE, SIZE), counts=counts)))
    sample = ReleaseSample(id="s-m", dataset_id="d-1", name="m.jpg", width=SIZE, height=SIZE,
                           labels={"ground-truth": ReleaseLabel(status="LABELED", objects=[square])})
    run_export(hasty, tmp_path, sample_list=[sample])
    [label] = json.loads((tmp_path / "export.json").read_bytes())["images"][0]["labels"]
    assert (label["bbox"], label["mask"]) == ([2, 1, 5, 3], [1, 3, 5, 2])


def test_hasty_image_status_is_the_samples_status(tmp_path: Path) -> None:
    """Hasty's image statuses are Loupe's sample statuses; the label's status only stands in for a release
    file that does not know the sample's."""
    labelled = ReleaseLabel(status="LABELED", objects=[])
    known = ReleaseSample(id="s-k", dataset_id="d-1", name="k.jpg", width=SIZE, height=SIZE, status="TO_REVIEW",
                          labels={"ground-truth": labelled})
    older = ReleaseSample(id="s-o", dataset_id="d-1", name="o.jpg", width=SIZE, height=SIZE,
                          labels={"ground-truth": labelled})
    run_export(hasty, tmp_path, sample_list=[known, older])
    images = json.loads((tmp_path / "export.json").read_bytes())["images"]
    assert [image["image_status"] for image in images] == ["TO REVIEW", "DONE"]
