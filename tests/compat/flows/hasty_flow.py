"""A realistic session of the real `hasty` SDK against Loupe's Hasty dialect.

Reads HASTY_BASE_URL (the gateway's `/hasty`) and HASTY_API_KEY; prints progress on stderr and, last,
one JSON line of what it saw. Runs with the SDK venv's Python: the SDK, numpy, PIL and the standard
library only.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import numpy as np
from hasty import Client
from hasty.exception import NotFound
from hasty.label_utils import rle_decode, rle_encoding
from PIL import Image as PILImage

EXPORT_WAIT_S = 120


def log(*parts: object) -> None:
    print("hasty_flow:", *parts, file=sys.stderr, flush=True)


def make_image(folder: Path, name: str, colour: tuple[int, int, int]) -> Path:
    path = folder / name
    image = PILImage.new("RGB", (64, 48), colour)
    image.paste((255, 255, 255), (8, 8, 24, 20))
    image.save(path)
    return path


def mask_pixels(bbox: list[int], mask: list[int]) -> set[tuple[int, int]]:
    """The image pixels (x, y) a Hasty mask covers, decoded with the SDK's own helper."""
    x1, y1, x2, y2 = bbox
    inside = rle_decode(mask, (x2 - x1, y2 - y1))
    return {(x1 + int(x), y1 + int(y)) for y, x in zip(*np.nonzero(inside), strict=True)}


def wait_for_export(job) -> None:
    deadline = time.monotonic() + EXPORT_WAIT_S
    while job.check_status() != "DONE":
        if job.status == "FAILED" or time.monotonic() > deadline:
            raise RuntimeError(f"export {job.id} ended {job.status}: {job.meta}")
        time.sleep(0.5)


def read_export(folder: Path, name: str) -> dict:
    """The JSON document of a downloaded export, which the SDK saves as `<name>.zip`."""
    with zipfile.ZipFile(folder / f"{name}.zip") as archive:
        json_names = [n for n in archive.namelist() if n.endswith(".json")]
        return json.loads(archive.read(json_names[0]))


def main() -> None:
    client = Client(api_key=os.environ["HASTY_API_KEY"], base_url=os.environ["HASTY_BASE_URL"])
    seen: dict[str, object] = {}
    workspaces = client.get_workspaces()
    workspace = workspaces[0]
    seen["workspaces"] = len(workspaces)
    log("workspace", workspace.id)

    project = client.create_project(workspace, f"hasty flow {uuid.uuid4().hex[:8]}", description="SDK flow")
    again = client.get_project(project.id)
    seen["project_name_matches"] = again.name == project.name
    seen["project_listed"] = any(p.id == project.id for p in client.get_projects())
    log("project", project.id)

    train = project.create_dataset("train")
    val = project.create_dataset("val", norder=1)
    seen["datasets"] = sorted(d.name for d in project.get_datasets())

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
        images = [
            project.upload_from_file(train, make_image(folder, f"frame-{i}.png", colour), external_id=f"ext-{i}")
            for i, colour in enumerate(colours)
        ]
        seen["uploaded"] = [(i.name, i.width, i.height, i.external_id, i.dataset_id == train.id) for i in images]
        image = project.get_image(images[0].id)
        with urllib.request.urlopen(image.public_url) as response:  # no key: the URL is signed
            seen["public_url_bytes"] = len(response.read())
        log("uploaded", len(images))

        car = project.create_label_class("car", color="#ff0000ff", class_type="object", norder=1, external_id="c-1")
        road = project.create_label_class("road", class_type="background", norder=2)
        seen["label_classes"] = sorted((c.name, c.class_type) for c in project.get_label_classes())

        colour = project.create_attribute("colour", "SELECTION", values=["red", "blue"])
        project.create_attribute("occluded", "BOOL", values=[])
        project.set_attribute_classes([{"attribute_id": colour.id, "class_id": car.id}])
        seen["attributes"] = sorted((a.name, a.attribute_type) for a in project.get_attributes())
        seen["attribute_classes"] = [(x["attribute_id"] == colour.id, x["class_id"] == car.id)
                                     for x in project.get_attribute_classes()]

        sunny = project.create_tag_class("sunny")
        project.create_tag_class("rainy")
        seen["tag_classes"] = sorted(t.name for t in project.get_tag_classes())
        image.add_tags([sunny])
        seen["image_tags"] = [t.tag_class_name for t in image.get_tags()]

        box = image.create_label(car, bbox=[5, 5, 30, 20], z_index=1, external_id="box-1")
        polygon = image.create_label(road, polygon=[[0, 30], [40, 30], [40, 47], [0, 47], [0, 30]])
        shape = np.zeros((10, 10), dtype=np.uint8)
        shape[2:8, 3:9] = 1
        sent_mask = [int(v) for v in rle_encoding(shape)]
        masked = image.create_label(car, bbox=[10, 10, 20, 20], mask=sent_mask)
        batch = image.create_labels([
            {"class_id": car.id, "bbox": [40 + i, 2, 50 + i, 12], "external_id": f"batch-{i}"} for i in range(3)
        ])
        box.edit(car, bbox=[6, 6, 31, 21], z_index=2, external_id="box-1")
        red = next(v["id"] for v in colour.values if v["value"] == "red")
        box.set_attribute(colour, red)
        seen["box_attributes"] = [(a.value == red) for a in box.get_attributes()]
        image.delete_labels([batch[0].id])
        labels = {label.id: label for label in image.get_labels()}
        seen["labels"] = len(labels)
        seen["box"] = (labels[box.id].bbox, labels[box.id].z_index, labels[box.id].external_id)
        seen["polygon"] = labels[polygon.id].polygon
        seen["mask_same_pixels"] = (
            mask_pixels(labels[masked.id].bbox, labels[masked.id].mask) == mask_pixels([10, 10, 20, 20], sent_mask)
        )
        log("labels", len(labels))

        image.set_status("IN PROGRESS")
        images[1].set_status("DONE")
        seen["statuses"] = sorted(i.status for i in project.get_images())
        seen["done_images"] = [i.id for i in project.get_images(image_status="DONE")] == [images[1].id]

        images[2].rename("renamed.png")
        images[2].move(val)
        seen["val_images"] = [(i.name, i.dataset_name) for i in project.get_images(dataset=val)]

        exports = {}
        for export_format in ("json_v1.1", "json_coco"):
            name = f"flow-{export_format}"
            job = project.export(name, export_format, dataset=[train, val], image_status=["DONE", "IN PROGRESS"])
            wait_for_export(job)
            job.download(tmp)
            exports[export_format] = read_export(folder, name)
            log("export", export_format, job.status)
        hasty_images = {i["image_id"]: i for i in exports["json_v1.1"]["images"]}
        exported_labels = {label["id"]: label for label in hasty_images[image.id]["labels"]}
        exported_mask = exported_labels[masked.id]
        seen["json_v1_1"] = {
            "images": len(hasty_images),
            "labels": len(exported_labels),
            "classes": sorted(c["class_name"] for c in exports["json_v1.1"]["label_classes"]),
            "statuses": sorted(i["image_status"] for i in hasty_images.values()),
            "mask_same_pixels": (
                mask_pixels(exported_mask["bbox"], exported_mask["mask"]) == mask_pixels([10, 10, 20, 20], sent_mask)
            ),
        }
        coco = exports["json_coco"]
        seen["json_coco"] = {
            "images": len(coco["images"]),
            "annotations": len(coco["annotations"]),
            "categories": sorted(c["name"] for c in coco["categories"]),
        }

    try:
        client.get_project(str(uuid.uuid4()))
        seen["missing_project"] = "found"
    except NotFound:
        seen["missing_project"] = "NotFound"
    try:
        project.get_image(str(uuid.uuid4()))
        seen["missing_image"] = "found"
    except NotFound:
        seen["missing_image"] = "NotFound"

    images[2].delete()
    val.delete()
    seen["images_after_delete"] = len(project.get_images())
    seen["project_id"] = project.id
    seen["image_id"] = image.id
    project.delete()
    try:
        client.get_project(project.id)
        seen["deleted"] = False
    except NotFound:
        seen["deleted"] = True
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
