"""Imports of labelled data end to end: a file PUT to the presigned URL, the import job (images
through ingest, labels through annotation's write path), its per-image report, and round trips
through releases and exports (COCO compared with pycocotools, native compared field by field)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import aiohttp
import asyncpg
import msgspec
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from proto import subjects
from services.annotation.label_imports.images import claim
from shared.bus import Bus
from shared.settings import Settings
from shared.storage import Storage
from tests.external_s3 import ExternalS3
from tests.helpers import (FINISHED, call, dataset, dataset_in_new_project, eventually, finished, make_project,
                           release_and_export, requests_sent)


def image(seed: int, size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    """Noise, so that every seed is another image to ingest."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def zipped(files: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


class Target(msgspec.Struct, frozen=True):
    """A project to import into: its path and its dataset."""

    path: str
    dataset_id: str


async def new_project(api: aiohttp.ClientSession, unique: str) -> Target:
    """A project with an empty schema and one dataset."""
    made = await dataset_in_new_project(api, f"imports {unique}")
    return Target(f"/v1/projects/{made['project_id']}", made["id"])


async def run_import(api: aiohttp.ClientSession, project: str, data: bytes, timeout: float = 60.0,
                     **create: Any) -> tuple[dict, list[dict]]:
    """Create, upload, start and wait for an import: the finished import and its items."""
    made = await call(api, "POST", f"{project}/label-imports", 201, json=create)
    path = f"{project}/label-imports/{made['id']}"
    await call(api, "POST", f"{path}/start", 409)  # nothing uploaded yet
    async with aiohttp.ClientSession() as s3, s3.put(made["upload_url"], data=data) as response:
        assert response.status == 200, await response.text()
    started = await call(api, "POST", f"{path}/start")
    assert started["state"] == "PENDING" and started["upload_url"] is None
    assert (await call(api, "POST", f"{path}/start"))["state"] in ("PENDING", "RUNNING", *FINISHED)  # idempotent
    done = await finished(api, path, timeout)
    items = (await call(api, "GET", f"{path}/items", params={"limit": 1000}))["items"]
    return done, items


# -- COCO -------------------------------------------------------------------------------------------

def coco_mask(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8, order="F")
    mask[10:30, 20:50] = 1
    mask[15:18, 25:28] = 0
    return mask


def coco_file() -> dict:
    """Three images with boxes, a polygon and an RLE mask, in COCO's own form."""
    rle = mask_utils.encode(coco_mask(48, 64))
    triangle = [5.0, 5.0, 40.0, 8.0, 20.0, 40.0]
    annotations = [
        {"image_id": 1, "category_id": 7, "bbox": [4, 5, 20, 10], "area": 200, "iscrowd": 0},
        {"image_id": 1, "category_id": 9, "segmentation": [triangle], "iscrowd": 0,
         "bbox": [5, 5, 35, 35], "area": 590.0},
        {"image_id": 2, "category_id": 9, "iscrowd": 0, "segmentation": {"size": [48, 64],
                                                                         "counts": rle["counts"].decode()},
         "bbox": mask_utils.toBbox(rle).tolist(), "area": float(mask_utils.area(rle))},
        {"image_id": 3, "category_id": 7, "bbox": [0, 0, 80, 60], "area": 4800, "iscrowd": 0},
    ]
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                       {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
                       {"id": 3, "file_name": "c.png", "width": 80, "height": 60}],
            "categories": [{"id": 7, "name": "car"}, {"id": 9, "name": "blob"}],
            "annotations": [{**a, "id": i} for i, a in enumerate(annotations, 100)]}


def by_file(coco_json: dict) -> dict[str, list[tuple[str, list[float], float, np.ndarray]]]:
    """Per image file name: each annotation's class, bbox, area and pixels, in a stable order."""
    coco = COCO()
    coco.dataset = coco_json
    coco.createIndex()
    names = {c["id"]: c["name"] for c in coco_json["categories"]}
    result = {}
    for image_info in coco_json["images"]:
        annotations = []
        for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[image_info["id"]])):
            x, y, w, h = annotation["bbox"]
            box = [[x, y, x + w, y, x + w, y + h, x, y + h]]  # what a box-only annotation covers
            pixels = coco.annToMask({**annotation, "segmentation": annotation.get("segmentation") or box})
            annotations.append((names[annotation["category_id"]], annotation["bbox"], annotation["area"], pixels))
        result[image_info["file_name"]] = sorted(annotations, key=lambda a: (a[0], a[1]))
    return result


async def test_coco_import_then_coco_export_gives_the_same_annotations(api: aiohttp.ClientSession,
                                                                       unique: str) -> None:
    project = await new_project(api, unique)
    original = coco_file()
    data = zipped({"annotations/instances.json": json.dumps(original), "images/a.jpg": image(1),
                   "images/b.jpg": image(2), "images/c.png": image(3, (80, 60), "PNG")})
    done, items = await run_import(api, project.path, data, format="coco", dataset_id=project.dataset_id)
    assert done["state"] == "SUCCEEDED", (done, items)
    assert (done["images"], done["imported"], done["failed"], done["objects"]) == (3, 3, 0, 4)
    assert sorted(done["classes_created"]) == ["blob", "car"]
    assert [(i["name"], i["outcome"], i["objects"]) for i in items] == [
        ("a.jpg", "IMPORTED", 2), ("b.jpg", "IMPORTED", 1), ("c.png", "IMPORTED", 1)]

    exported = json.loads(await release_and_export(api, project.path, "v1", format="coco", task="segmentation"))
    want, got = by_file(original), by_file(exported)
    assert set(got) == set(want)
    for name, expected in want.items():
        assert len(got[name]) == len(expected), name
        for (cls, bbox, area, pixels), (got_cls, got_bbox, got_area, got_pixels) in zip(expected, got[name]):
            assert got_cls == cls
            assert got_bbox == pytest.approx(bbox)
            assert got_area == pytest.approx(area)
            assert (got_pixels == pixels).all(), name


# -- native -----------------------------------------------------------------------------------------

def comparable(release: bytes) -> list[dict]:
    """The samples of a native release without ids, versions and times: classes, tags and attributes
    by name, so that two projects' releases compare."""
    header, *samples = [json.loads(line) for line in release.splitlines()]
    schema = header["label_schema"]
    classes = {c["id"]: c["name"] for c in schema["label_classes"]}
    tags = {t["id"]: t["name"] for group in schema["tag_groups"] for t in group["tags"]}
    attributes = {a["id"]: a["name"] for a in schema["attributes"]}
    result = []
    for sample in samples:
        labels = {}
        for labelset, label in sample["labels"].items():
            objects = [{**{k: v for k, v in obj.items() if k not in ("id", "version", "updated_at", "updated_by")},
                        "class_id": classes[obj["class_id"]],
                        "attributes": {attributes[k]: v for k, v in obj["attributes"].items()}}
                       for obj in label["objects"]]
            labels[labelset] = {"status": label["status"], "score": label.get("score"), "objects": objects,
                                "tags": sorted(tags[t] for t in label["tag_class_ids"]),
                                "attributes": {attributes[k]: v for k, v in label["attributes"].items()}}
        result.append({**{k: v for k, v in sample.items() if k not in ("id", "dataset_id")}, "labels": labels})
    return result


async def test_native_release_imported_into_a_fresh_project_releases_the_same(api: aiohttp.ClientSession,
                                                                              unique: str) -> None:
    source = await make_project(api, unique, samples=1)  # its one sample has no media: it cannot be imported
    real = (await dataset(api, source.id, "real"))["id"]
    empty = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}], "categories": []}
    done, items = await run_import(api, source.path, zipped({"a.jpg": image(11), "b.jpg": image(12),
                                                             "coco.json": json.dumps(empty)}),
                                   format="coco", dataset_id=real)
    assert done["state"] == "SUCCEEDED", items
    a, b = (item["sample_id"] for item in items)
    hole = {"class_id": source.classes["car"], "shape": {
        "type": "polygon", "points": [[2, 2], [40, 2], [40, 40], [2, 40]], "holes": [[[10, 10], [20, 10], [20, 20]]]}}
    await call(api, "PUT", source.label(a), json={
        "objects": [source.box(1, 2, 30, 40, attributes={source.attribute: 2}, z_index=3), hole],
        "tag_class_ids": [source.tags["day"]]})
    mask = coco_mask(48, 64)
    await call(api, "PUT", source.label(b), json={
        "objects": [{"class_id": source.classes["car"], "confidence": 0.75, "external_id": "m-1", "shape": {
            "type": "mask", "rle": {"size": [48, 64], "counts": mask_utils.encode(mask)["counts"].decode()}}}],
        "tag_class_ids": [source.tags["night"]], "score": 0.5})
    await call(api, "PATCH", source.label(b), json={"status": "REVIEWED"})
    exported = await release_and_export(api, source.path, "v1", format="native")

    target = await new_project(api, f"{unique}-copy")
    await call(api, "POST", f"{target.path}/attributes", 201,
               json={"name": "occlusion", "type": "INT", "min": 0, "max": 3})
    await call(api, "POST", f"{target.path}/tag-groups", 201,
               json={"name": "time", "selection": "SINGLE", "tags": [{"name": "day"}, {"name": "night"}]})
    done, items = await run_import(api, target.path, exported, format="native", dataset_id=target.dataset_id)
    assert done["state"] == "PARTIAL" and done["classes_created"] == ["car"], done
    failed = [item for item in items if item["outcome"] == "FAILED"]
    assert [(item["name"], item["error_code"]) for item in failed] == [("img_00000.jpg", "unknown_media")]
    copied = await release_and_export(api, target.path, "copy", format="native")

    want = [s for s in comparable(exported) if s["name"] != "img_00000.jpg"]
    assert len(want) == 2 and want[1]["labels"]["ground-truth"]["status"] == "REVIEWED"
    assert comparable(copied) == want


# -- YOLO and VOC -----------------------------------------------------------------------------------

async def boxes_of(api: aiohttp.ClientSession, project: str, sample_id: str) -> list[tuple[str, list[float]]]:
    label = await call(api, "GET", f"{project}/samples/{sample_id}/labels/ground-truth")
    schema = await call(api, "GET", f"{project}/schema")
    names = {c["id"]: c["name"] for c in schema["label_classes"]}
    return [(names[o["class_id"]], o["shape"]["box"]) for o in label["objects"]]


async def test_yolo_import_gives_the_boxes(api: aiohttp.ClientSession, unique: str) -> None:
    project = await new_project(api, unique)
    data = zipped({"data.yaml": "path: .\ntrain: images/train\nnames:\n  0: car\n  1: person\n",
                   "images/train/a.jpg": image(21), "images/train/b.jpg": image(22),
                   "labels/train/a.txt": "0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.5 0.5\n", "labels/train/b.txt": ""})
    done, items = await run_import(api, project.path, data, format="yolo", dataset_id=project.dataset_id)
    assert done["state"] == "SUCCEEDED", items
    assert [(i["name"], i["objects"]) for i in items] == [("train/a", 2), ("train/b", 0)]
    assert await boxes_of(api, project.path, items[0]["sample_id"]) == [("car", [24, 12, 40, 36]),
                                                                   ("person", [0, 0, 32, 24])]


async def test_voc_import_gives_the_boxes(api: aiohttp.ClientSession, unique: str) -> None:
    project = await new_project(api, unique)
    xml = ("<annotation><filename>a.jpg</filename><size><width>64</width><height>48</height><depth>3</depth></size>"
           "<object><name>dog</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>20</xmax><ymax>30</ymax></bndbox>"
           "</object></annotation>")
    data = zipped({"voc/Annotations/a.xml": xml, "voc/JPEGImages/a.jpg": image(31)})
    done, items = await run_import(api, project.path, data, format="voc", dataset_id=project.dataset_id)
    assert done["state"] == "SUCCEEDED", items
    assert await boxes_of(api, project.path, items[0]["sample_id"]) == [("dog", [4, 5, 20, 30])]



async def test_images_may_come_from_a_bucket_prefix(api: aiohttp.ClientSession, external_s3: ExternalS3,
                                                    settings: Settings, unique: str) -> None:
    project = await new_project(api, unique)
    bucket = f"tests-labels-{unique}"
    await external_s3.put_images(bucket, "cams/front", range(70, 72))  # 64 × 48 JPEGs named <seed>.jpg
    coco = {"images": [{"id": 1, "file_name": "front/70.jpg", "width": 64, "height": 48},
                       {"id": 2, "file_name": "front/71.jpg", "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "car"}],
            "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 2, 10, 20]}]}
    done, items = await run_import(api, project.path, json.dumps(coco).encode(), format="coco",
                                   dataset_id=project.dataset_id, images=external_s3.source(bucket, "cams"))
    assert done["state"] == "SUCCEEDED", items
    assert await boxes_of(api, project.path, items[1]["sample_id"]) == [("car", [1, 2, 11, 22])]

    # The keys are kept only sealed, and no answer repeats them.
    assert external_s3.secret_key not in json.dumps([done, items])
    db = await asyncpg.connect(settings.database_url)
    try:
        kept = await db.fetchval("SELECT images_source FROM annotation.imports WHERE id = $1", uuid.UUID(done["id"]))
    finally:
        await db.close()
    assert bucket in kept and external_s3.secret_key not in kept


async def test_images_on_loupes_own_storage_are_refused(api: aiohttp.ClientSession, settings: Settings,
                                                        unique: str) -> None:
    """It holds every organisation's images: `images` names your S3, by its endpoint."""
    project = await new_project(api, unique)
    media = Storage(settings).bucket("media")
    failure = await call(api, "POST", f"{project.path}/label-imports", 422, json={
        "format": "coco", "dataset_id": project.dataset_id, "images": {"bucket": media}})
    assert failure["path"] == "$.images.endpoint" and "s3.amazonaws.com" in failure["detail"], failure
    failure = await call(api, "POST", f"{project.path}/label-imports", 422, json={
        "format": "coco", "dataset_id": project.dataset_id,
        "images": {"bucket": media, "endpoint": "s3.amazonaws.com"}})
    assert failure["path"] == "$.images.access_key", failure

    # Even with Loupe's own endpoint and keys, nothing is read.
    own = {"bucket": media, "endpoint": settings.s3_endpoint, "secure": False, "access_key": settings.s3_access_key,
           "secret_key": settings.s3_secret_key}
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}], "categories": []}
    done, items = await run_import(api, project.path, json.dumps(coco).encode(), format="coco",
                                   dataset_id=project.dataset_id, images=own)
    assert (done["state"], done["imported"], items) == ("FAILED", 0, []), (done, items)
    assert "Loupe's own storage" in done["error"], done
    samples = await call(api, "GET", f"{project.path}/samples", params={"limit": "1", "total": "exact"})
    assert samples["total"] == 0


# -- waiting for ingest ----------------------------------------------------------------------------

async def test_a_label_import_asks_ingest_for_its_run_once(api: aiohttp.ClientSession, bus: Bus,
                                                           unique: str) -> None:
    """It learns that ingest's run finished from the run's event; the one request is the look right after
    handing the images over, in case the run finished at once."""
    project = await new_project(api, unique)
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}], "categories": []}
    async with requests_sent(bus, subjects.GET_RUN, project.path.rsplit("/", 1)[1]) as asked:
        done, items = await run_import(api, project.path, zipped({"coco.json": json.dumps(coco), "a.jpg": image(81),
                                                                  "b.jpg": image(82)}),
                                       format="coco", dataset_id=project.dataset_id)
    assert (done["state"], done["imported"]) == ("SUCCEEDED", 2), items
    assert len(asked) <= 1, asked


async def waits_for_ingest_without_a_job(db: asyncpg.Connection, bus: Bus, import_id: str) -> bool:
    """The import handed its images to ingest, and no label-import job is queued or being worked on."""
    stage = await db.fetchval("SELECT stage FROM annotation.imports WHERE id = $1", uuid.UUID(import_id))
    jobs = await bus.js.consumer_info(subjects.JOBS_STREAM, "annotation-label-import")
    assert (stage, jobs.num_pending, jobs.num_ack_pending) == ("images", 0, 0)
    return True


async def test_an_import_resumes_from_the_event_of_a_run_that_finished_while_annotation_was_down(
        api: aiohttp.ClientSession, bus: Bus, external_s3: ExternalS3, settings: Settings, stack,
        unique: str) -> None:
    project = await new_project(api, unique)
    bucket, seeds = f"tests-resume-{unique}", range(90_000, 90_400)
    await external_s3.put_images(bucket, "cams", seeds)
    coco = {"images": [{"id": seed, "file_name": f"{seed}.jpg"} for seed in seeds], "categories": []}
    made = await call(api, "POST", f"{project.path}/label-imports", 201, json={
        "format": "coco", "dataset_id": project.dataset_id, "images": external_s3.source(bucket, "cams")})
    async with aiohttp.ClientSession() as s3, s3.put(made["upload_url"], data=json.dumps(coco)) as response:
        assert response.status == 200, await response.text()
    path = f"{project.path}/label-imports/{made['id']}"
    await call(api, "POST", f"{path}/start")
    db = await asyncpg.connect(settings.database_url)
    try:
        await eventually(lambda: waits_for_ingest_without_a_job(db, bus, made["id"]), timeout=60)
        stack.stop_service("annotation", kill=True)
        try:
            waiting = await db.fetchrow("SELECT stage, ingest_run_id FROM annotation.imports WHERE id = $1",
                                        uuid.UUID(made["id"]))
            assert waiting["stage"] == "images", "ingest's run finished before annotation stopped: use more images"
            ingest_run = f"{project.path}/imports/{waiting['ingest_run_id']}"

            async def ingested() -> bool:
                assert (await call(api, "GET", ingest_run))["finished_at"] is not None
                return True
            await eventually(ingested, timeout=60, interval=0.2)
        finally:
            stack.start_service("annotation")
    finally:
        await db.close()
    done = await finished(api, path, timeout=90)
    assert (done["state"], done["imported"], done["failed"]) == ("SUCCEEDED", len(seeds), 0), done


async def test_the_job_and_the_runs_event_move_a_waiting_import_on_once(settings: Settings) -> None:
    """Both may find the run finished; the one that claims the import submits the labels job, the other
    nothing. In a transaction rolled back at the end, so nothing of it is published."""
    db = await asyncpg.connect(settings.database_url, server_settings={"search_path": "annotation, public"})
    transaction = db.transaction()
    await transaction.start()
    try:
        run_id = uuid.uuid4()
        import_id = await db.fetchval(
            "INSERT INTO imports (project_id, org_id, dataset_id, labelset, format, create_classes, state, stage, "
            "ingest_run_id) VALUES ($1, $1, $1, 'ground-truth', 'coco', true, 'RUNNING', 'images', $2) RETURNING id",
            uuid.uuid4(), run_id)
        for _ in range(2):
            async with db.transaction():
                await claim(db, run_id)
        jobs = await db.fetch("SELECT msg_id, payload FROM outbox WHERE subject = $1 AND msg_id LIKE $2",
                              subjects.LABEL_IMPORT_JOB.subject, f"{import_id}:%")
        assert [(job["msg_id"], json.loads(job["payload"])) for job in jobs] == [
            (f"{import_id}:labels", {"import_id": str(import_id), "step": "labels"})]
        assert await db.fetchval("SELECT stage FROM imports WHERE id = $1", import_id) == "ingested"
    finally:
        await transaction.rollback()
        await db.close()


# -- failures ---------------------------------------------------------------------------------------

async def test_a_bad_annotation_fails_only_its_image(api: aiohttp.ClientSession, unique: str) -> None:
    project = await new_project(api, unique)
    coco = {"images": [{"id": 1, "file_name": "ok.jpg", "width": 64, "height": 48},
                       {"id": 2, "file_name": "bad.jpg", "width": 64, "height": 48},
                       {"id": 3, "file_name": "gone.jpg", "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "car"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 10, 10]},
                            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [50, 10, 30, 10]}]}
    data = zipped({"coco.json": json.dumps(coco), "ok.jpg": image(41), "bad.jpg": image(42)})
    done, items = await run_import(api, project.path, data, format="coco", dataset_id=project.dataset_id)
    assert (done["state"], done["imported"], done["failed"], done["objects"]) == ("PARTIAL", 1, 2, 1), done
    ok, bad, gone = items
    assert ok["outcome"] == "IMPORTED" and ok["sample_id"]
    assert bad["outcome"] == "FAILED" and bad["sample_id"] and bad["error_code"] == "invalid"
    assert "object 1 (car)" in bad["error"] and "box" in bad["error"], bad
    assert (gone["outcome"], gone["error_code"]) == ("FAILED", "image_missing")
    assert (await call(api, "GET", f"{project.path}/samples/{bad['sample_id']}/labels/ground-truth"))["status"] \
        == "UNLABELED"
    page = await call(api, "GET", f"{project.path}/label-imports/{done['id']}/items",
                      params={"outcome": "FAILED", "limit": 1})
    assert page["total"] == 2 and [i["name"] for i in page["items"]] == ["bad.jpg"]


async def test_unknown_classes_fail_their_images_without_create_classes(api: aiohttp.ClientSession,
                                                                        unique: str) -> None:
    project = await new_project(api, unique)
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "zebra"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]}]}
    done, items = await run_import(api, project.path, zipped({"coco.json": json.dumps(coco), "a.jpg": image(51)}),
                                   format="coco", dataset_id=project.dataset_id, create_classes=False)
    assert done["state"] == "FAILED" and done["classes_created"] == []
    assert "no label class 'zebra'" in items[0]["error"]


async def test_a_malformed_file_fails_the_import_naming_it(api: aiohttp.ClientSession, unique: str) -> None:
    project = await new_project(api, unique)
    done, items = await run_import(api, project.path, b'{"images": "none", "categories": []}', format="coco",
                                   dataset_id=project.dataset_id)
    assert done["state"] == "FAILED" and items == []
    assert done["error"].startswith("annotations.json:") and "$.images" in done["error"], done
    done, _ = await run_import(api, project.path, zipped({"a.jpg": image(61)}), format="coco",
                               dataset_id=project.dataset_id)
    assert done["error"] == "the zip must hold one COCO annotation file (*.json); it holds 0", done
    done, _ = await run_import(api, project.path, zipped({"../coco.json": "{}"}), format="coco",
                               dataset_id=project.dataset_id)
    assert "'../coco.json' would be written outside" in done["error"], done


async def test_an_import_needs_a_dataset_and_labelset_of_the_project(api: aiohttp.ClientSession,
                                                                    unique: str) -> None:
    project, other = await new_project(api, unique), await new_project(api, f"{unique}-other")
    await call(api, "POST", f"{project.path}/label-imports", 404,
               json={"format": "coco", "dataset_id": other.dataset_id})
    await call(api, "POST", f"{project.path}/label-imports", 422,
               json={"format": "coco", "dataset_id": project.dataset_id, "labelset": "nope"})
