"""A small labelled project for the console's browser tests (and its screenshots): real images, a schema
with a skeleton and a tag group, and every label shape."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from playwright.async_api import Page

from bench.console import call, make_pictures, upload

# The weather of each uploaded image; the filter test looks for rain with a car in it.
WEATHER = ["rain", "sun", "rain", "sun", "rain", "fog"]
PREDICTIONS = "model-v1"


@dataclass
class Seeded:
    id: str
    base: str
    classes: dict[str, str] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    datasets: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict] = field(default_factory=dict)


def box(seeded: Seeded, cls: str, x1: float, y1: float, x2: float, y2: float) -> dict:
    return {"class_id": seeded.classes[cls], "shape": {"type": "bbox", "box": [x1, y1, x2, y2]}}


async def seed_project(api: aiohttp.ClientSession, name: str) -> Seeded:
    project = await call(api, "POST", "/v1/projects", {"name": name, "task_type": "bboxes"})
    seeded = Seeded(project["id"], f"/v1/projects/{project['id']}")
    base = seeded.base
    skeleton = await call(
        api,
        "POST",
        f"{base}/keypoint-schemas",
        {"name": "person", "keypoints": ["head", "left hand", "right hand"], "skeleton": [[0, 1], [0, 2]]},
    )
    for cls, extra in (("car", {"color": "#e6194b"}), ("person", {"keypoint_schema_id": skeleton["id"]}), ("road", {})):
        made = await call(api, "POST", f"{base}/label-classes", {"name": cls, **extra})
        seeded.classes[cls] = made["id"]
    await call(
        api,
        "POST",
        f"{base}/tag-groups",
        {"name": "time", "selection": "SINGLE", "tags": [{"name": "day"}, {"name": "night"}]},
    )
    for attribute in (
        {"name": "occluded", "type": "BOOL", "class_ids": [seeded.classes["car"]]},
        {"name": "light", "type": "SELECTION", "subject": "IMAGE", "values": ["day", "dusk", "night"]},
    ):
        seeded.attributes[attribute["name"]] = await call(api, "POST", f"{base}/attributes", attribute)
    for dataset in ("train", "val"):
        seeded.datasets[dataset] = (await call(api, "POST", f"{base}/datasets", {"name": dataset}))["id"]
    pictures = make_pictures(len(WEATHER), "street", [{"weather": w} for w in WEATHER])
    seeded.samples = await upload(api, base, seeded.datasets["train"], pictures)
    await label(api, seeded)
    return seeded


async def label(api: aiohttp.ClientSession, seeded: Seeded) -> None:
    """Sample 0 (rain) gets every shape; 1 (sun) and 2 (rain) one car each; 3 a person; 4 and 5 nothing."""
    person, road = seeded.classes["person"], seeded.classes["road"]
    every_shape = [
        box(seeded, "car", 5, 5, 40, 30),
        box(seeded, "car", 50, 50, 90, 90),
        {
            "class_id": road,
            "shape": {
                "type": "polygon",
                "points": [[10, 60], [45, 60], [45, 92], [10, 92]],
                "holes": [[[20, 70], [30, 70], [30, 80], [20, 80]]],
            },
        },
        {"class_id": road, "shape": {"type": "polyline", "points": [[0, 95], [48, 70], [95, 95]]}},
        {"class_id": person, "shape": {"type": "point", "point": [70, 20]}},
        {"class_id": person, "shape": {"type": "keypoints", "keypoints": [[60, 10, 2], [55, 25, 2], [75, 25, 1]]}},
        # A 96 × 96 mask: rows 40-47 of columns 0-2 (column-major runs: background, foreground, ...).
        {"class_id": road, "shape": {"type": "mask", "rle": {"size": [96, 96], "counts": [40, 8, 88, 8, 88, 8, 8976]}}},
    ]
    labels = {0: every_shape, 1: [box(seeded, "car", 10, 10, 30, 30)], 2: [box(seeded, "car", 20, 20, 60, 50)]}
    labels[3] = [{"class_id": person, "shape": {"type": "point", "point": [40, 40]}}]
    for index, objects in labels.items():
        await call(
            api, "PUT", f"{seeded.base}/samples/{seeded.samples[index]}/labels/ground-truth", {"objects": objects}
        )
    await call(api, "POST", f"{seeded.base}/labelsets", {"name": PREDICTIONS})
    predicted = {**box(seeded, "car", 8, 8, 42, 33), "confidence": 0.9}
    await call(api, "PUT", f"{seeded.base}/samples/{seeded.samples[0]}/labels/{PREDICTIONS}", {"objects": [predicted]})


async def sign_in(page: Page, gateway_url: str, key: str, path: str) -> None:
    """The console at `path` (after `#`), signed in with `key` as the sign-in form would leave it."""
    await page.goto(gateway_url + "/")
    await page.evaluate("key => sessionStorage.setItem('loupe.apiKey', key)", key)
    await page.goto(f"{gateway_url}/#{path}")
