"""The real segments-ai SDK against the session's stack (tests/compat/flows/segments_flow.py), and the
Segments.ai dialect's edges over plain HTTP: signed asset uploads, and one project seen through both APIs."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image

from loupe.stack import Stack
from services.gateway.dialects.segments import policy
from tests.compat.sdk import flow_env, run_flow

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def flow(sdk_python: Path, stack: Stack) -> dict[str, Any]:
    return run_flow(
        sdk_python, "segments_flow", flow_env(stack.gateway_url, stack.segments_url, stack.admin_key)["segments_flow"]
    )


def test_the_sdk_makes_a_bboxes_dataset_with_its_categories(flow: dict[str, Any]) -> None:
    assert flow["dataset"]["task_type"] == "bboxes"
    assert flow["dataset"]["categories"] == [[1, "car"], [2, "person"]]
    assert flow["dataset"]["full_name"] == f"{flow['user']}/{flow['dataset']['full_name'].split('/')[1]}"
    assert "already exists" in flow["duplicate_dataset"]


def test_samples_come_from_presigned_post_assets_one_by_one_and_in_bulk(flow: dict[str, Any]) -> None:
    assert flow["asset_loads"] == [64, 48]
    assert flow["samples"] == {
        "first": {"name": "first.png", "metadata": {"weather": "sunny"}, "priority": 5.0},
        "second": "second.png",
        "bulk": ["bulk-0.png", "bulk-1.png"],
    }


def test_labels_are_written_read_and_updated(flow: dict[str, Any]) -> None:
    assert flow["label"] == {
        "added_status": "LABELED",
        "annotations": [[1, "bbox", [[2.0, 3.0], [20.0, 30.0]]], [2, "bbox", [[10.0, 10.0], [40.0, 40.0]]]],
        "updated_status": "REVIEWED",
    }


def test_a_bad_label_is_refused_naming_its_field(flow: dict[str, Any]) -> None:
    problem = json.loads(flow["bad_label"])
    assert problem["field"] == "attributes.annotations[0].category_id"
    assert problem["detail"].startswith("attributes.annotations[0].category_id: category_id 99 is not a category")


def test_samples_are_listed_with_filters_as_bare_arrays(flow: dict[str, Any]) -> None:
    assert flow["list"] == {
        "all": ["bulk-0.png", "bulk-1.png", "first.png", "second.png"],
        "name": ["bulk-0.png", "bulk-1.png"],
        "reviewed": ["first.png"],
        "labeled_or_reviewed": ["first.png", "second.png"],
        "page2": ["first.png", "second.png"],
        "by_priority": ["first.png"],
        "full_label": [2],
    }
    assert flow["label_stats"]["REVIEWED"] == 1 and flow["label_stats"]["LABELED"] == 1
    assert flow["label_stats"]["TOTAL"] == 4


def test_collaborators_hold_their_role_and_others_get_the_sdk_errors(flow: dict[str, Any]) -> None:
    assert flow["collaborator"] == [True, "labeler", "labeler"]
    assert flow["collaborator_labels"] == 2
    assert "does not exist" in flow["outsider_private"]
    assert f"sample '{flow['first_uuid']}' does not exist" in flow["outsider_sample"]
    assert flow["outsider_reads_public"].startswith("flow-")
    assert "do not have permission" in flow["outsider_label"]


def test_a_release_is_read_by_segments_dataset_with_its_images(flow: dict[str, Any]) -> None:
    assert flow["release"] == {"status": "SUCCEEDED", "samples": 4, "listed": ["v1.0"]}
    assert flow["segments_dataset"] == {
        "samples": 4,
        "images": [[64, 48]] * 4,
        "first_annotations": [[1, "bbox"], [2, "bbox"]],
        "categories": [[1, "car"], [2, "person"]],
    }


def test_a_clone_has_the_samples_and_labels(flow: dict[str, Any]) -> None:
    assert flow["clone"] == {
        "name": f"flow-{flow['dataset']['full_name'].split('-')[-1]}-clone",
        "samples": 4,
        "first_annotations": [[1, "bbox"], [2, "bbox"]],
        "first_status": "REVIEWED",
    }


def test_issues_labelsets_a_missing_dataset_and_deletion(flow: dict[str, Any]) -> None:
    assert flow["issues"] == [["the car is cut off", "CLOSED", "first.png"]]
    assert flow["labelsets"] == ["ground-truth", "review-2"]
    assert "labelset 'review-2' already exists" in flow["duplicate_labelset"]
    assert "not found" in flow["missing"] or "does not exist" in flow["missing"]
    assert "does not exist" in flow["deleted"]


# -- over plain HTTP ---------------------------------------------------------------------------------


def png_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
async def segments(stack: Stack) -> Any:
    async with aiohttp.ClientSession(headers={"Authorization": f"APIKey {stack.admin_key}"}) as session:
        yield session


async def post_form(session: aiohttp.ClientSession, url: str, fields: dict[str, str], data: bytes) -> int:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", data, filename="x.png", content_type="image/png")
    async with aiohttp.ClientSession() as anonymous, anonymous.post(url, data=form) as response:
        return response.status


async def test_a_tampered_or_expired_policy_is_refused(stack: Stack, segments: aiohttp.ClientSession) -> None:
    async with segments.post(f"{stack.segments_url}/assets/", json={"filename": "a.png"}) as response:
        assert response.status == 201
        asset = await response.json()
    post = asset["presignedPostFields"]
    fields = post["fields"]
    assert sorted(fields) == sorted(
        ["acl", "Content-Type", "key", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "policy", "x-amz-signature"]
    )
    other_key = fields["key"].rsplit("/", 2)[0] + "/00000000-0000-4000-8000-000000000000/a.png"
    assert await post_form(segments, post["url"], {**fields, "key": other_key}, png_bytes((1, 2, 3))) == 403
    forged = {**fields, "x-amz-signature": "0" * 64}
    assert await post_form(segments, post["url"], forged, png_bytes((1, 2, 3))) == 403
    expired = policy.post_fields(
        stack.settings.secrets_key, fields["key"], "image/png", 1000, datetime.now(UTC) - timedelta(hours=2)
    )
    assert await post_form(segments, post["url"], expired, png_bytes((1, 2, 3))) == 403
    small = policy.post_fields(stack.settings.secrets_key, fields["key"], "image/png", 10, datetime.now(UTC))
    assert await post_form(segments, post["url"], small, png_bytes((1, 2, 3))) == 403
    assert await post_form(segments, post["url"], fields, png_bytes((1, 2, 3))) == 204
    async with aiohttp.ClientSession() as anonymous, anonymous.get(asset["url"]) as response:
        assert response.status == 200 and await response.read() == png_bytes((1, 2, 3))


async def test_a_sample_is_the_same_through_segments_and_the_native_api(
    stack: Stack, api: aiohttp.ClientSession, segments: aiohttp.ClientSession, unique: str
) -> None:
    async with api.get("/v1/me") as response:
        owner = (await response.json())["org_name"]
    async with api.post("/v1/projects", json={"name": f"both ways {unique}", "task_type": "bboxes"}) as response:
        project = await response.json()
    async with api.post(f"/v1/projects/{project['id']}/label-classes", json={"name": "car", "order": 3}) as response:
        assert response.status == 201, await response.text()
        car = await response.json()
    async with api.post(f"/v1/projects/{project['id']}/datasets", json={"name": "native"}) as response:
        dataset = await response.json()
    form = aiohttp.FormData()
    form.add_field("file", png_bytes((200, 0, 0)), filename="native.png", content_type="image/png")
    async with api.post(f"/v1/projects/{project['id']}/datasets/{dataset['id']}/files", data=form) as response:
        assert response.status == 201, await response.text()
        native_id = (await response.json())["items"][0]["sample_id"]
    label = {"status": "LABELED", "objects": [{"class_id": car["id"], "shape": {"type": "bbox", "box": [1, 2, 3, 4]}}]}
    async with api.put(f"/v1/projects/{project['id']}/samples/{native_id}/labels/ground-truth", json=label) as response:
        assert response.status == 200, await response.text()

    full_name = f"{owner}/both ways {unique}"
    async with segments.get(
        f"{stack.segments_url}/datasets/{full_name}/samples/?labelset=ground-truth&include_full_label=1"
    ) as response:
        assert response.status == 200, await response.text()
        (seen,) = await response.json()
    assert seen["uuid"] == native_id and seen["name"] == "native.png"
    assert seen["label"]["attributes"]["annotations"] == [
        {"id": 1, "category_id": 3, "type": "bbox", "points": [[1.0, 2.0], [3.0, 4.0]], "attributes": {}}
    ]

    async with segments.post(f"{stack.segments_url}/assets/", json={"filename": "seg.png"}) as response:
        asset = await response.json()
    post = asset["presignedPostFields"]
    assert await post_form(segments, post["url"], post["fields"], png_bytes((0, 200, 0))) == 204
    sample = {"name": "seg.png", "attributes": {"image": {"url": asset["url"]}}, "metadata": {"from": "segments"}}
    async with segments.post(f"{stack.segments_url}/datasets/{full_name}/samples/", json=sample) as response:
        assert response.status == 201, await response.text()
        added = await response.json()
    body = {
        "label_status": "LABELED",
        "attributes": {
            "format_version": "0.1",
            "annotations": [{"id": 1, "category_id": 3, "type": "bbox", "points": [[5, 6], [7, 8]]}],
        },
    }
    async with segments.put(
        f"{stack.segments_url}/labels/{added['uuid']}/ground-truth/",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 201, await response.text()
    async with api.get(f"/v1/projects/{project['id']}/samples/{added['uuid']}") as response:
        native_sample = await response.json()
    assert native_sample["name"] == "seg.png" and native_sample["metadata"] == {"from": "segments"}
    assert native_sample["dataset_id"] == dataset["id"]
    async with api.get(f"/v1/projects/{project['id']}/samples/{added['uuid']}/labels/ground-truth") as response:
        native_label = await response.json()
    assert native_label["status"] == "LABELED"
    assert [(o["class_id"], o["shape"]) for o in native_label["objects"]] == [
        (car["id"], {"type": "bbox", "box": [5.0, 6.0, 7.0, 8.0]})
    ]


async def test_gzip_bodies_are_read_and_errors_have_segments_shape(
    stack: Stack, segments: aiohttp.ClientSession
) -> None:
    body = gzip.compress(json.dumps({"name": "x", "task_type": "pointcloud-cuboid"}).encode())
    async with segments.post(
        f"{stack.segments_url}/user/datasets/",
        data=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    ) as response:
        assert response.status == 400
        problem = await response.json()
    assert problem["field"] == "task_type" and "pointcloud-cuboid" in problem["detail"]
    async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{stack.segments_url}/api_status/") as response:
        assert response.status == 401


def instance_png(ids: np.ndarray) -> bytes:
    """Segments' bitmap encoding: each pixel's annotation id little-endian in R, G, B; A 255."""
    rgba = ids.astype("<u4")[:, :, None].view(np.uint8).copy()
    rgba[:, :, 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def instance_ids(png: bytes) -> np.ndarray:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.uint32)
    return rgb[:, :, 0] | rgb[:, :, 1] << 8 | rgb[:, :, 2] << 16


async def upload(stack: Stack, segments: aiohttp.ClientSession, data: bytes, filename: str) -> str:
    async with segments.post(f"{stack.segments_url}/assets/", json={"filename": filename}) as response:
        asset = await response.json()
    assert await post_form(segments, asset["presignedPostFields"]["url"], asset["presignedPostFields"]["fields"],
                           data) == 204
    return asset["url"]


async def fetched(url: str) -> bytes:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.read()


async def test_segmentation_bitmap_labels_become_masks_and_are_drawn_back(
    stack: Stack, api: aiohttp.ClientSession, segments: aiohttp.ClientSession, unique: str
) -> None:
    base = stack.segments_url
    dataset = {"name": f"bitmaps-{unique}", "task_type": "segmentation-bitmap",
               "task_attributes": {"format_version": "0.1", "categories": [{"id": 1, "name": "cat"},
                                                                          {"id": 2, "name": "dog"}]}}
    async with segments.post(f"{base}/user/datasets/", json=dataset) as response:
        assert response.status == 201, await response.text()
        full_name = (await response.json())["full_name"]
    image = await upload(stack, segments, png_bytes((9, 9, 9)), "photo.png")
    async with segments.post(f"{base}/datasets/{full_name}/samples/",
                             json={"name": "photo.png", "attributes": {"image": {"url": image}}}) as response:
        sample = await response.json()
    ids = np.zeros((24, 32), dtype=np.uint32)
    ids[2:10, 3:12] = 1
    ids[12:20, 15:30] = 2
    ids[14:16, 16:18] = 1  # an island of the first inside the second
    body = {"label_status": "LABELED", "attributes": {
        "format_version": "0.1", "annotations": [{"id": 1, "category_id": 1}, {"id": 2, "category_id": 2}],
        "segmentation_bitmap": {"url": await upload(stack, segments, instance_png(ids), "label.png")}}}
    async with segments.put(f"{base}/labels/{sample['uuid']}/ground-truth/", json=body) as response:
        assert response.status == 201, await response.text()
    async with segments.get(f"{base}/labels/{sample['uuid']}/ground-truth/") as response:
        label = await response.json()
    attributes = label["attributes"]
    assert [(a["id"], a["category_id"]) for a in attributes["annotations"]] == [(1, 1), (2, 2)]
    assert (instance_ids(await fetched(attributes["segmentation_bitmap"]["url"])) == ids).all()

    async with api.get("/v1/projects") as response:
        project = next(p for p in (await response.json())["items"] if p["name"] == f"bitmaps-{unique}")
    async with api.get(f"/v1/projects/{project['id']}/samples/{sample['uuid']}/labels/ground-truth") as response:
        native = await response.json()
    assert [o["shape"]["type"] for o in native["objects"]] == ["mask", "mask"]

    small = await upload(stack, segments, instance_png(ids[:10, :10]), "small.png")
    wrong = {**body, "attributes": {**body["attributes"], "segmentation_bitmap": {"url": small}}}
    async with segments.put(f"{base}/labels/{sample['uuid']}/ground-truth/", json=wrong) as response:
        assert response.status == 400
        assert (await response.json())["field"] == "attributes.segmentation_bitmap.url"

    async with segments.post(f"{base}/datasets/{full_name}/releases/", json={"name": "v1"}) as response:
        assert response.status == 201, await response.text()
    for _ in range(240):
        async with segments.get(f"{base}/datasets/{full_name}/releases/v1/") as response:
            release = await response.json()
        if release["status"] != "PENDING":
            break
        await asyncio.sleep(0.5)
    assert release["status"] == "SUCCEEDED"
    document = json.loads(await fetched(release["attributes"]["url"]))
    (released,) = document["dataset"]["samples"]
    bitmap_url = released["labels"]["ground-truth"]["attributes"]["segmentation_bitmap"]["url"]
    assert (instance_ids(await fetched(bitmap_url)) == ids).all()
    assert Image.open(io.BytesIO(await fetched(released["attributes"]["image"]["url"]))).size == (32, 24)
