"""A release file as training examples: the label space from the schema, targets from labels, the split."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest
from PIL import Image

from proto.releases import NATIVE_FORMAT_VERSION, ReleaseDataset, ReleaseHeader, ReleaseInfo, ReleaseProject
from proto.schema import LabelClass, LabelSchema, TagClass, TagGroup
from proto.training import ConfigChanges, TrainingConfig
from services.training import configs, release_data, runner
from shared.errors import LoupeError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def label_class(id: str, name: str, order: int, archived: bool = False) -> LabelClass:
    return LabelClass(id=id, name=name, kind="object", color="#ff0000", order=order, description="", external_id=None,
                      keypoint_schema_id=None, extra={}, archived=archived, version=1)


def tag_group(id: str, name: str, tags: list[str], selection: str = "SINGLE") -> TagGroup:
    return TagGroup(id=id, name=name, selection=selection, required=False, order=0, description="", extra={},
                    archived=False, version=1,
                    tags=[TagClass(id=f"{id}-{t}", group_id=id, name=t, color="#00ff00", order=i, description="",
                                   external_id=None, extra={}, archived=False, version=1) for i, t in enumerate(tags)])


SCHEMA = LabelSchema(
    version=3,
    label_classes=[label_class("c-sq", "square", 1), label_class("c-ci", "circle", 0), label_class("c-old", "old", 2,
                                                                                                    archived=True)],
    attributes=[],
    tag_groups=[tag_group("g-w", "weather", ["clear", "fog"])],
    keypoint_schemas=[],
)


DATASETS = (ReleaseDataset(id="d-train", name="train"), ReleaseDataset(id="d-val", name="Val"),
            ReleaseDataset(id="d-test", name="test"))


def write_release(tmp_path: Path, samples: list[dict], datasets: tuple[ReleaseDataset, ...] = DATASETS) -> Path:
    header = ReleaseHeader(
        format=NATIVE_FORMAT_VERSION, project=ReleaseProject(id="p", name="p", task_type="vector"),
        release=ReleaseInfo(id="r", name="r", description="", created_at=NOW), label_schema=SCHEMA,
        labelsets=["ground-truth"], datasets=list(datasets),
        samples=len(samples), objects=0)
    path = tmp_path / "release.jsonl"
    path.write_bytes(b"\n".join([msgspec.json.encode(header), *(msgspec.json.encode(s) for s in samples)]) + b"\n")
    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(tmp_path / "abc", format="PNG")
    return path


def sample(index: int, dataset: str, objects: list[dict], tags: list[str] = (), status: str = "LABELED") -> dict:
    return {"id": f"00000000-0000-0000-0000-{index:012}", "dataset_id": dataset, "name": f"{index}.png", "width": 30,
            "height": 20, "content_hash": "abc",
            "labels": {"ground-truth": {"status": status, "objects": objects, "tag_class_ids": list(tags)}}}


def obj(class_id: str, shape: dict, z: int = 0) -> dict:
    return {"id": "o", "class_id": class_id, "shape": shape, "z_index": z}


BOX = {"type": "bbox", "box": [2, 3, 12, 13]}
POLYGON = {"type": "polygon", "points": [[0, 0], [10, 0], [10, 10], [0, 10]]}


def split(tmp_path: Path, samples: list[dict], family: str, tag_group: str | None = None,
          datasets: tuple[ReleaseDataset, ...] = DATASETS) -> release_data.Split:
    path = write_release(tmp_path, samples, datasets)
    return release_data.split_release(path, family, "ground-truth", lambda sha: tmp_path / sha, tag_group)


def test_detection_learns_active_object_classes_in_order_from_boxes_or_else_shape_bounds(tmp_path: Path) -> None:
    made = split(tmp_path, [
        sample(1, "d-train", [obj("c-sq", BOX), obj("c-sq", POLYGON), obj("c-old", BOX)]),
        sample(2, "d-val", [obj("c-ci", POLYGON)]),
    ], "detection")
    assert made.spec.classes == ("circle", "square")
    (train,), (val,) = made.train, made.val
    assert train.image.shape == (20, 30, 3)
    assert train.boxes.tolist() == [[2, 3, 12, 13]] and train.box_classes.tolist() == [1]  # the box, not twice
    assert val.boxes.tolist() == [[0, 0, 10, 10]] and val.box_classes.tolist() == [0]


def test_segmentation_paints_polygons_by_z_index_over_background(tmp_path: Path) -> None:
    made = split(tmp_path, [sample(1, "d-train", [obj("c-sq", POLYGON, z=1), obj("c-ci", BOX, z=0),
                                                  obj("c-ci", {"type": "polygon", "points": [[5, 5], [20, 5],
                                                                                               [20, 15]]}, z=0)])],
                 "segmentation")
    (example,) = made.train
    assert example.mask.shape == (20, 30)
    assert example.mask[2, 2] == 2  # square (class 1) + 1, painted last
    assert example.mask[6, 18] == 1  # circle's triangle
    assert example.mask[18, 28] == 0


def test_tags_become_heads_and_samples_missing_a_tag_are_skipped(tmp_path: Path) -> None:
    made = split(tmp_path, [sample(1, "d-train", [], ["g-w-fog"]), sample(2, "d-train", []),
                            sample(3, "d-val", [], ["g-w-clear"])], "tagging")
    assert made.spec.tag_groups == (("weather", ("clear", "fog")),)
    assert [e.tags for e in made.train] == [(1,)] and [e.tags for e in made.val] == [(0,)]
    assert made.skipped == 1


def test_classification_uses_the_tags_of_a_single_group_as_classes(tmp_path: Path) -> None:
    made = split(tmp_path, [sample(1, "d-train", [], ["g-w-fog"])], "classification")
    assert made.spec.classes == ("clear", "fog") and made.train[0].label == 1
    with pytest.raises(LoupeError) as refused:
        release_data.task_spec(SCHEMA, "classification", "nope")
    assert refused.value.details["path"] == "$.tag_group"


def test_unfinished_labels_and_test_datasets_are_left_out(tmp_path: Path) -> None:
    made = split(tmp_path, [sample(1, "d-train", [obj("c-sq", BOX)], status="PRELABELED"),
                            sample(2, "d-test", [obj("c-sq", BOX)])], "detection")
    assert (made.train, made.val, made.skipped) == ([], [], 1)


def test_without_a_validation_dataset_one_sample_in_five_is_held_out() -> None:
    ids = [f"00000000-0000-0000-0000-{i:012}" for i in range(100)]
    held = [i for i in ids if release_data.is_validation(release_data.ReleaseSample(
        id=i, dataset_id="d", name="n", width=1, height=1), set(), False)]
    assert len(held) == 20


def test_a_small_release_the_one_in_five_draw_misses_still_holds_out_one_sample(tmp_path: Path) -> None:
    # Ids 1-4 are none of them 0 modulo 5: the draw alone would leave validation empty and the run would fail.
    only_train = DATASETS[:1]
    made = split(tmp_path, [sample(i, "d-train", [obj("c-sq", BOX)]) for i in range(1, 5)], "detection",
                 datasets=only_train)
    assert (len(made.train), len(made.val)) == (3, 1)
    alone = split(tmp_path, [sample(1, "d-train", [obj("c-sq", BOX)])], "detection", datasets=only_train)
    assert (len(alone.train), len(alone.val)) == (1, 0)  # one sample cannot be split: the run says so
    named = split(tmp_path, [sample(i, "d-train", [obj("c-sq", BOX)]) for i in range(1, 5)], "detection")
    assert (len(named.train), len(named.val)) == (4, 0)  # a validation dataset was named: it is the validation


def test_a_run_accepts_the_small_release_its_split_holds_one_sample_out_of(tmp_path: Path) -> None:
    # The check before any image is downloaded agrees with the split: it refused what the split takes.
    only_train = DATASETS[:1]
    path = write_release(tmp_path, [sample(i, "d-train", [obj("c-sq", BOX)]) for i in range(1, 5)], only_train)
    assert runner.release_images(path, "ground-truth") == {"abc"}
    for samples, datasets in (([sample(1, "d-train", [obj("c-sq", BOX)])], only_train),
                              ([sample(i, "d-train", [obj("c-sq", BOX)]) for i in range(1, 5)], DATASETS)):
        with pytest.raises(LoupeError, match="both splits need at least one"):
            runner.release_images(write_release(tmp_path, samples, datasets), "ground-truth")


def test_a_run_changes_only_the_fields_it_names() -> None:
    base = TrainingConfig(epochs=5, seed=3)
    changed = configs.with_changes(base, ConfigChanges(epochs=2, early_stopping_patience=None))
    assert changed == TrainingConfig(epochs=2, seed=3, early_stopping_patience=None)
    assert configs.with_changes(base, ConfigChanges()) == base


def test_masks_are_decoded_from_compressed_rle(tmp_path: Path) -> None:
    from pycocotools import mask as coco_mask

    pixels = np.zeros((20, 30), np.uint8)
    pixels[4:8, 10:20] = 1
    rle = coco_mask.encode(np.asfortranarray(pixels))
    shape = {"type": "mask", "rle": {"size": [20, 30], "counts": rle["counts"].decode()}}
    made = split(tmp_path, [sample(1, "d-train", [obj("c-sq", shape)])], "segmentation")
    assert (made.train[0].mask == pixels * 2).all()
    made = split(tmp_path, [sample(1, "d-train", [obj("c-sq", shape)])], "detection")
    assert made.train[0].boxes.tolist() == [[10, 4, 20, 8]]
