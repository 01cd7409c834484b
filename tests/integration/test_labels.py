"""Labels end to end: REST → gateway → annotation (validating against the catalog's schema and its
own read model of samples) → Postgres, and LabelChanged back into the catalog's search."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from tests.integration.test_schema import call
from tests.integration.test_search import names
from tests.integration.test_samples import add, dataset, items


class Project:
    """A project with a schema (car, person with a skeleton, a bounded INT attribute, a SINGLE tag
    group) and one dataset of 640 × 480 samples."""

    def __init__(self, api: aiohttp.ClientSession, project_id: str) -> None:
        self.api = api
        self.id = project_id
        self.path = f"/v1/projects/{project_id}"
        self.classes: dict[str, str] = {}
        self.samples: list[str] = []
        self.attribute = ""
        self.tags: dict[str, str] = {}

    def label(self, sample: str, labelset: str = "ground-truth") -> str:
        return f"{self.path}/samples/{sample}/labels/{labelset}"

    def box(self, x1: float, y1: float, x2: float, y2: float, cls: str = "car", **extra: Any) -> dict:
        return {"class_id": self.classes[cls], "shape": {"type": "bbox", "box": [x1, y1, x2, y2]}, **extra}


async def make_project(api: aiohttp.ClientSession, unique: str, samples: int = 5) -> Project:
    created = await call(api, "POST", "/v1/projects", 201, json={"name": f"labels {unique}"})
    project = Project(api, created["id"])
    skeleton = await call(api, "POST", f"{project.path}/keypoint-schemas", 201,
                          json={"name": "person", "keypoints": ["head", "left hand", "right hand"],
                                "skeleton": [[0, 1], [0, 2]]})
    for name, extra in (("car", {}), ("person", {"keypoint_schema_id": skeleton["id"]})):
        made = await call(api, "POST", f"{project.path}/label-classes", 201, json={"name": name, **extra})
        project.classes[name] = made["id"]
    attribute = await call(api, "POST", f"{project.path}/attributes", 201,
                           json={"name": "occlusion", "type": "INT", "min": 0, "max": 3})
    project.attribute = attribute["id"]
    group = await call(api, "POST", f"{project.path}/tag-groups", 201,
                       json={"name": "time", "selection": "SINGLE", "tags": [{"name": "day"}, {"name": "night"}]})
    project.tags = {tag["name"]: tag["id"] for tag in group["tags"]}
    made = await dataset(api, project.id, "train")
    created_samples = await add(api, project.id, made["id"], items(samples, f"labels-{unique}"))
    project.samples = [item["id"] for item in created_samples["items"]]
    return project


@pytest.fixture
async def project(api: aiohttp.ClientSession, unique: str) -> Project:
    return await make_project(api, unique)


def png_of(mask: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


async def test_put_then_get_every_shape(api: aiohttp.ClientSession, project: Project) -> None:
    mask = np.zeros((480, 640), dtype=np.uint8, order="F")
    mask[100:200, 300:420] = 1
    rle = mask_utils.encode(mask)
    objects = [
        project.box(10, 20, 110, 220, attributes={project.attribute: 2}),
        {"class_id": project.classes["car"], "shape": {"type": "polygon", "points": [[0, 0], [100, 0], [100, 100], [0, 100]],
                                                        "holes": [[[10, 10], [20, 10], [20, 20]]]}, "z_index": 2},
        {"class_id": project.classes["car"], "shape": {"type": "polyline", "points": [[1, 1], [50, 60]]}},
        {"class_id": project.classes["car"], "shape": {"type": "point", "point": [5, 5]}, "confidence": 0.5},
        {"class_id": project.classes["person"],
         "shape": {"type": "keypoints", "keypoints": [[10, 10, 2], [0, 0, 0], [30, 40, 1]]}},
        {"class_id": project.classes["car"], "shape": {"type": "mask", "rle": {"size": [480, 640],
                                                                                "counts": rle["counts"].decode()}}},
        {"class_id": project.classes["car"], "shape": {"type": "mask", "png": png_of(mask)}, "external_id": "m-2"},
    ]
    label = await call(api, "PUT", project.label(project.samples[0]), json={
        "status": "LABELED", "objects": objects, "tag_class_ids": [project.tags["day"]]})
    assert label["version"] == 1 and label["status"] == "LABELED"
    assert [o["shape"]["type"] for o in label["objects"]] == ["bbox", "polygon", "polyline", "point", "keypoints",
                                                              "mask", "mask"]
    # A PNG mask is stored as the same compressed RLE.
    assert label["objects"][5]["shape"]["rle"] == label["objects"][6]["shape"]["rle"]
    assert label["objects"][6]["shape"]["rle"]["counts"] == rle["counts"].decode()
    again = await call(api, "GET", project.label(project.samples[0]))
    assert again == label
    # Sending the label back unchanged keeps every object's version, and the label's grows by one.
    same = await call(api, "PUT", project.label(project.samples[0]), json={
        "status": "LABELED", "objects": [
            {k: o[k] for k in ("id", "class_id", "shape", "z_index", "attributes", "confidence", "external_id")}
            for o in label["objects"]], "tag_class_ids": [project.tags["day"]], "version": 1})
    assert same["version"] == 2 and [o["version"] for o in same["objects"]] == [1] * 7


@pytest.mark.parametrize(("obj", "path", "words"), [
    ({"shape": {"type": "bbox", "box": [600, 10, 700, 50]}}, "$.objects[0].shape.box", "outside the 640×480 image"),
    ({"shape": {"type": "polygon", "points": [[0, 0], [100, 100], [100, 0], [0, 100]]}},
     "$.objects[0].shape.points", "intersect"),
    ({"shape": {"type": "mask", "rle": {"size": [480, 640], "counts": [100, 50]}}},
     "$.objects[0].shape.rle.counts", "640"),
    ({"class_id": str(uuid.uuid4())}, "$.objects[0].class_id", "class"),
    ({"attributes": {"occlusion": 9}}, "$.objects[0].attributes.", "3"),
])
async def test_bad_objects_are_422_naming_the_object_and_field(api: aiohttp.ClientSession, project: Project,
                                                                obj: dict, path: str, words: str) -> None:
    body = project.box(10, 10, 20, 20)
    if "attributes" in obj:  # by name here, by id on the wire
        obj = {"attributes": {project.attribute: obj["attributes"]["occlusion"]}}
    body.update(obj)
    problem = await call(api, "PUT", project.label(project.samples[0]), 422, json={"objects": [body]})
    assert problem["path"].startswith(path), problem
    assert words in problem["detail"], problem
    label = await call(api, "GET", project.label(project.samples[0]))
    assert label["version"] == 0 and label["status"] == "UNLABELED"


async def test_bulk_upsert_is_all_or_nothing(api: aiohttp.ClientSession, project: Project) -> None:
    good = [{"sample_id": project.samples[i % 5], **project.box(i % 600, 1, i % 600 + 10, 11)} for i in range(1200)]
    bad = [*good[:-1], {"sample_id": project.samples[0], **project.box(630, 1, 650, 11)}]
    problem = await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects", 422, json={"items": bad})
    assert problem["path"] == "$.items[1199].shape.box"
    page = await call(api, "GET", f"{project.path}/labelsets/ground-truth/objects")
    assert page["items"] == []
    written = await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects", json={"items": good})
    assert written["created"] == 1200 and len({w["id"] for w in written["items"]}) == 1200
    label = await call(api, "GET", project.label(project.samples[1]))
    assert len(label["objects"]) == 240 and label["status"] == "LABELED" and label["version"] == 1
    # Deleting is all or nothing too: one unknown id and nothing goes.
    ids = [w["id"] for w in written["items"][:10]]
    await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects/delete", 422,
               json={"ids": [*ids, str(uuid.uuid4())]})
    deleted = await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects/delete", json={"ids": ids})
    assert deleted["deleted"] == 10


async def test_a_stale_version_is_409(api: aiohttp.ClientSession, project: Project) -> None:
    label = await call(api, "PUT", project.label(project.samples[0]), json={"objects": [project.box(1, 1, 5, 5)]})
    obj = label["objects"][0]
    await call(api, "PUT", project.label(project.samples[0]), json={"objects": [], "version": 1})
    await call(api, "PUT", project.label(project.samples[0]), 409, json={"objects": [], "version": 1})
    await call(api, "PATCH", project.label(project.samples[0]), 409, json={"status": "SKIPPED", "version": 0})
    stale = {"sample_id": project.samples[0], "id": obj["id"], "version": 3, **project.box(1, 1, 6, 6)}
    await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects", 409, json={"items": [stale]})


async def test_status_steps_follow_the_workflow_and_roles(api: aiohttp.ClientSession, project: Project,
                                                           user_client) -> None:
    _, labeler = await user_client(project.id, "labeler")
    label = project.label(project.samples[0])
    await call(labeler, "PUT", label, json={"objects": [project.box(1, 1, 5, 5)], "status": "LABELED"})
    problem = await call(labeler, "PATCH", label, 403, json={"status": "REVIEWED"})
    assert "reviewer" in problem["detail"]
    await call(api, "PATCH", label, json={"status": "REVIEWED"})
    problem = await call(api, "PATCH", label, 409, json={"status": "PRELABELED"})
    assert "VERIFIED" in problem["detail"]


async def test_audit_trail_says_who_changed_what(api: aiohttp.ClientSession, project: Project) -> None:
    label = await call(api, "PUT", project.label(project.samples[2]), json={"objects": [project.box(1, 1, 5, 5)]})
    await call(api, "PATCH", project.label(project.samples[2]), json={"status": "LABELING_IN_PROGRESS"})
    await call(api, "DELETE", project.label(project.samples[2]), 204)
    trail = await call(api, "GET", f"{project.path}/audit", params={"sample_id": project.samples[2]})
    actions = [entry["action"] for entry in trail["items"]]
    assert actions == ["label.deleted", "objects.deleted", "status.changed", "label.created", "objects.written"]
    assert trail["items"][-1]["change"] == {"created": label["objects"], "updated": []}
    assert trail["items"][1]["change"] == {"deleted": [label["objects"][0]["id"]]}
    assert trail["items"][2]["change"] == {"status": ["LABELED", "LABELING_IN_PROGRESS"]}
    assert all(entry["actor"] for entry in trail["items"])
    after = await call(api, "GET", project.label(project.samples[2]))
    assert after["status"] == "UNLABELED" and after["objects"] == [] and after["version"] == 3


async def test_labelsets(api: aiohttp.ClientSession, project: Project) -> None:
    listed = await call(api, "GET", f"{project.path}/labelsets")
    assert [ls["name"] for ls in listed["items"]] == ["ground-truth"]
    await call(api, "POST", f"{project.path}/labelsets", 201, json={"name": "model-v1"})
    await call(api, "POST", f"{project.path}/labelsets", 409, json={"name": "model-v1"})
    await call(api, "PUT", project.label(project.samples[0], "model-v1"),
               json={"objects": [project.box(1, 1, 5, 5, confidence=0.9)], "status": "PRELABELED"})
    await call(api, "DELETE", f"{project.path}/labelsets/ground-truth", 409)
    await call(api, "DELETE", f"{project.path}/labelsets/model-v1", 204)
    await call(api, "GET", project.label(project.samples[0], "model-v1"), 404)


async def test_search_finds_samples_by_their_labels(api: aiohttp.ClientSession, project: Project) -> None:
    """Closes the loop: annotation's LabelChanged events feed the catalog's search read model."""
    two_cars = [project.box(1, 1, 5, 5), project.box(10, 10, 50, 50)]
    await call(api, "PUT", project.label(project.samples[0]), json={"objects": two_cars})
    await call(api, "PUT", project.label(project.samples[1]), json={"objects": two_cars[:1]})
    wanted = {"labels": {"classes": [{"class_id": project.classes["car"], "min": 2}]}}
    expected = {"img_00000.jpg"}
    for _ in range(100):
        if set(await names(api, project.id, wanted)) == expected:
            break
        await asyncio.sleep(0.1)
    assert set(await names(api, project.id, wanted)) == expected
    await call(api, "DELETE", project.label(project.samples[0]), 204)
    for _ in range(100):
        if not await names(api, project.id, wanted):
            break
        await asyncio.sleep(0.1)
    assert await names(api, project.id, wanted) == []


async def test_merging_a_class_moves_its_objects(api: aiohttp.ClientSession, project: Project) -> None:
    truck = await call(api, "POST", f"{project.path}/label-classes", 201, json={"name": "truck"})
    project.classes["truck"] = truck["id"]
    label = await call(api, "PUT", project.label(project.samples[0]),
                       json={"objects": [project.box(1, 1, 5, 5, cls="truck"), project.box(9, 9, 20, 20)]})
    await call(api, "POST", f"{project.path}/label-classes/{truck['id']}/merge", json={"into": project.classes["car"]})
    for _ in range(100):
        merged = await call(api, "GET", project.label(project.samples[0]))
        if merged["version"] > label["version"]:
            break
        await asyncio.sleep(0.1)
    assert [o["class_id"] for o in merged["objects"]] == [project.classes["car"]] * 2
    assert [o["version"] for o in merged["objects"]] == [2, 1]
    wanted = {"labels": {"classes": [{"class_id": project.classes["car"], "min": 2}]}}
    for _ in range(100):
        if await names(api, project.id, wanted) == ["img_00000.jpg"]:
            break
        await asyncio.sleep(0.1)
    assert await names(api, project.id, wanted) == ["img_00000.jpg"]
