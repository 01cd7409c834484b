"""Releases and exports end to end: labels written through REST, a release job snapshotting them to
S3, export jobs converting the snapshot, and the files downloaded from their presigned URLs, with
pycocotools as the reference for COCO."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile

import aiohttp
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from shared.storage import Storage
from tests.helpers import Project, call, download, eventually, finished, make_project, release_and_export


def mask_of(box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((480, 640), dtype=np.uint8, order="F")
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = 1
    mask[y1 + 2:y1 + 5, x1 + 2:x1 + 5] = 0  # not a rectangle: a hole
    return mask


@pytest.fixture
async def labelled(api: aiohttp.ClientSession, unique: str) -> tuple[Project, dict[str, list]]:
    """Five samples with known boxes and masks; returns the project and, per sample, what it holds."""
    project = await make_project(api, unique)
    truth: dict[str, list] = {}
    for index, sample in enumerate(project.samples):
        boxes = [(10 + index, 20, 110 + index, 70), (300, 300 + index, 350, 420)]
        masks = [mask_of((400, 10 + index, 480, 90))]
        objects = [project.box(*box) for box in boxes]
        objects += [{"class_id": project.classes["car"], "shape": {"type": "mask", "rle": {
            "size": [480, 640], "counts": mask_utils.encode(m)["counts"].decode()}}} for m in masks]
        await call(api, "PUT", project.label(sample), json={"objects": objects})
        truth[sample] = [*boxes, *masks]
    return project, truth


async def test_coco_export_matches_pycocotools(api: aiohttp.ClientSession,
                                               labelled: tuple[Project, dict[str, list]]) -> None:
    project, truth = labelled
    data = await release_and_export(api, project.path, "v1", format="coco", task="segmentation")
    coco_file = json.loads(data)
    coco = COCO()
    coco.dataset = coco_file
    coco.createIndex()
    images = {image["loupe_sample_id"]: image["id"] for image in coco_file["images"]}
    assert set(images) == set(truth)
    for sample, expected in truth.items():
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[images[sample]]))
        assert len(annotations) == len(expected)
        for annotation, want in zip(annotations, expected, strict=True):
            if isinstance(want, tuple):
                x1, y1, x2, y2 = want
                assert annotation["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1])
                assert annotation["area"] == pytest.approx((x2 - x1) * (y2 - y1))
            else:
                reference = mask_utils.encode(want)
                assert annotation["segmentation"]["counts"] == reference["counts"].decode()
                assert annotation["area"] == pytest.approx(float(mask_utils.area(reference)))
                assert annotation["bbox"] == pytest.approx(mask_utils.toBbox(reference).tolist())
                assert (coco.annToMask(annotation) == want).all()


async def test_every_format_exports(api: aiohttp.ClientSession, labelled: tuple[Project, dict[str, list]]) -> None:
    project, truth = labelled
    release = await call(api, "POST", f"{project.path}/releases", 201, json={"name": "all formats"})
    assert (await finished(api, f"{project.path}/releases/{release['id']}"))["state"] == "SUCCEEDED"
    expected_files = {"native": "release.jsonl", "coco": "annotations.json", "yolo": "data.yaml",
                      "voc": "ImageSets/Main/default.txt", "semantic_png": "classes.csv", "segments": "release.json",
                      "hasty": "export.json"}
    made = {fmt: await call(api, "POST", f"{project.path}/releases/{release['id']}/exports", 201,
                            json={"format": fmt}) for fmt in expected_files}
    for fmt, export in made.items():
        done = await finished(api, f"{project.path}/exports/{export['id']}")
        assert done["state"] == "SUCCEEDED", done
        assert done["samples"] == 5
        data = await download(done["download_url"])
        if zipfile.is_zipfile(io.BytesIO(data)):
            assert expected_files[fmt] in zipfile.ZipFile(io.BytesIO(data)).namelist()
        else:
            assert data and done["size_bytes"] == len(data)
    listed = await call(api, "GET", f"{project.path}/releases/{release['id']}/exports")
    assert {e["format"] for e in listed["items"]} == set(expected_files)


async def test_a_release_is_a_snapshot(api: aiohttp.ClientSession, labelled: tuple[Project, dict[str, list]]) -> None:
    project, truth = labelled
    release = await call(api, "POST", f"{project.path}/releases", 201, json={"name": "before"})
    assert (await finished(api, f"{project.path}/releases/{release['id']}"))["objects"] == 15
    await call(api, "DELETE", project.label(project.samples[0]), 204)
    export = await call(api, "POST", f"{project.path}/releases/{release['id']}/exports", 201,
                        json={"format": "coco", "filter": {"class_ids": [project.classes["car"]]}})
    done = await finished(api, f"{project.path}/exports/{export['id']}")
    assert len(json.loads(await download(done["download_url"]))["annotations"]) == 15
    await call(api, "POST", f"{project.path}/releases", 409, json={"name": "before"})
    filtered = await call(api, "POST", f"{project.path}/releases/{release['id']}/exports", 201,
                          json={"format": "coco", "filter": {"statuses": ["REVIEWED"]}})
    assert (await finished(api, f"{project.path}/exports/{filtered['id']}"))["samples"] == 0
    await call(api, "POST", f"{project.path}/releases/{release['id']}/exports", 422,
               json={"format": "coco", "labelset": "nope"})


async def test_deleting_the_project_deletes_its_release_files(api: aiohttp.ClientSession, settings,
                                                               labelled: tuple[Project, dict[str, list]]) -> None:
    project, _ = labelled
    release = await call(api, "POST", f"{project.path}/releases", 201, json={"name": "gone"})
    await finished(api, f"{project.path}/releases/{release['id']}")
    storage = Storage(settings)
    release_file = f"{project.id}/releases/{release['id']}/release.jsonl"
    try:
        assert await storage.exists("releases", release_file)
        await call(api, "DELETE", project.path, 204)

        async def deleted() -> bool:
            assert not await storage.exists("releases", release_file)
            return True
        await eventually(deleted, interval=0.1)
    finally:
        await storage.close()


async def test_killing_annotation_mid_release_loses_nothing(api: aiohttp.ClientSession, stack, unique: str) -> None:
    """A release whose process dies is built again by the next one, from the job JetStream redelivers."""
    project = await make_project(api, unique, samples=3000)
    items = [{"sample_id": sample, **project.box(1 + i, 1, 20 + i, 20)} for sample in project.samples
             for i in range(10)]
    for start in range(0, len(items), 10_000):
        await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects", json={"items": items[start:start + 10_000]})
    release = await call(api, "POST", f"{project.path}/releases", 201, json={"name": "survivor"})
    path = f"{project.path}/releases/{release['id']}"
    for _ in range(200):  # kill it while it builds, or as soon after as the poll sees
        if (await call(api, "GET", path))["state"] != "PENDING":
            break
        await asyncio.sleep(0.01)
    stack.stop_service("annotation", kill=True)
    stack.start_service("annotation")
    done = await finished(api, path, timeout=90)
    assert (done["state"], done["samples"], done["objects"]) == ("SUCCEEDED", 3000, 30_000)
