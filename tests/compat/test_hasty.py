"""The real `hasty` SDK against Loupe's Hasty dialect (`/hasty` of the gateway), and the dialect's
contract where the SDK does not reach: its error shape, exact pagination totals, 501s, and one project
seen alike through Hasty and the native API."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from loupe.stack import Stack
from tests.compat.sdk import flow_env, run_flow
from tests.external_s3 import ExternalS3
from tests.helpers import add, call, create, dataset, finished, items
from tests.media_server import MediaServer

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="session")
async def hasty(stack: Stack) -> Any:
    """A raw client of the Hasty dialect with the admin key, as Hasty's SDK sends it."""
    async with aiohttp.ClientSession(
        f"{stack.gateway_url}/hasty/", headers={"X-Api-Key": stack.admin_key}
    ) as session:
        yield session


async def hasty_call(session: aiohttp.ClientSession, method: str, path: str, expect: int = 200, **request: Any) -> Any:
    async with session.request(method, path.lstrip("/"), **request) as response:
        assert response.status == expect, await response.text()
        return None if expect == 204 else await response.json()


def png(width: int = 64, height: int = 48, colour: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


async def hasty_project(hasty: aiohttp.ClientSession, name: str) -> tuple[str, str]:
    """A project made through the dialect, and its dataset `train`."""
    project = await hasty_call(hasty, "POST", "v1/projects", 201, json={"name": name})
    made = await hasty_call(hasty, "POST", f"v1/projects/{project['id']}/datasets", 201, json={"name": "train"})
    return project["id"], made["id"]


async def upload_image(hasty: aiohttp.ClientSession, project_id: str, dataset_id: str, name: str) -> dict:
    """Hasty's signed upload: a URL, a raw PUT of the bytes, then the image."""
    slots = await hasty_call(hasty, "GET", f"v1/projects/{project_id}/uploads", params={"count": 1})
    colour = tuple(hashlib.sha256(name.encode()).digest()[:3])  # one image per name
    async with aiohttp.ClientSession() as s3, s3.put(slots["items"][0]["url"], data=png(colour=colour)) as response:
        assert response.status == 200, await response.text()
    return await hasty_call(
        hasty, "POST", f"v1/projects/{project_id}/images", 201,
        json={"dataset_id": dataset_id, "filename": name, "upload_id": slots["items"][0]["id"],
              "external_id": f"ext-{name}"},
    )


async def test_the_sdk_runs_a_whole_session(stack: Stack, sdk_python: Path) -> None:
    env = flow_env(stack.gateway_url, stack.segments_url, stack.admin_key)["hasty_flow"]
    seen = await asyncio.to_thread(run_flow, sdk_python, "hasty_flow", env)
    assert seen["workspaces"] == 1
    assert seen["project_name_matches"] and seen["project_listed"]
    assert seen["datasets"] == ["train", "val"]
    assert seen["uploaded"] == [[f"frame-{i}.png", 64, 48, f"ext-{i}", True] for i in range(3)]
    assert seen["public_url_bytes"] > 0
    assert seen["label_classes"] == [["car", "object"], ["road", "background"]]
    assert seen["attributes"] == [["colour", "SELECTION"], ["occluded", "BOOL"]]
    assert seen["attribute_classes"] == [[True, True]]
    assert seen["tag_classes"] == ["rainy", "sunny"]
    assert seen["image_tags"] == ["sunny"]
    assert seen["box_attributes"] == [True]
    assert seen["labels"] == 5  # box, polygon, mask and two of the three batch labels
    assert seen["box"] == [[6, 6, 31, 21], 2, "box-1"]
    assert seen["polygon"] == [[0, 30], [40, 30], [40, 47], [0, 47]]
    assert seen["mask_same_pixels"] is True
    assert seen["statuses"] == ["DONE", "IN PROGRESS", "NEW"]
    assert seen["done_images"] is True
    assert seen["val_images"] == [["renamed.png", "val"]]
    # The exports ask for images DONE or IN PROGRESS: the third image is NEW.
    assert seen["json_v1_1"] == {"images": 2, "labels": 5, "classes": ["car", "road"],
                                 "statuses": ["DONE", "IN PROGRESS"], "mask_same_pixels": True}
    assert seen["json_coco"]["images"] == 2 and seen["json_coco"]["annotations"] == 5
    assert seen["json_coco"]["categories"] == ["car", "road"]
    assert seen["missing_project"] == "NotFound" and seen["missing_image"] == "NotFound"
    assert seen["images_after_delete"] == 2
    assert seen["deleted"] is True


async def test_a_user_without_the_role_gets_the_sdks_permission_error(
    stack: Stack, sdk_python: Path, hasty: aiohttp.ClientSession,
    user_client: Callable[..., Awaitable[tuple[str, aiohttp.ClientSession]]], unique: str,
) -> None:
    project_id, _ = await hasty_project(hasty, f"hasty roles {unique}")
    user_id, _ = await user_client(project_id, "viewer")
    key = await call_for_key(stack, user_id)
    env = {**flow_env(stack.gateway_url, stack.segments_url, key)["hasty_flow"], "HASTY_PROJECT_ID": project_id}
    seen = await asyncio.to_thread(run_flow, sdk_python, "hasty_viewer_flow", env)
    assert seen == {"reads_classes": 0, "create_class": "AuthorisationException"}


async def call_for_key(stack: Stack, user_id: str) -> str:
    async with aiohttp.ClientSession(stack.gateway_url, headers={"Authorization": f"Bearer {stack.admin_key}"}) as api:
        made = await call(api, "POST", f"/v1/users/{user_id}/api-keys", 201, json={"name": "hasty sdk"})
    return made["key"]


async def test_a_bad_label_answers_400_naming_the_field(hasty: aiohttp.ClientSession, unique: str) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty bad labels {unique}")
    image = await upload_image(hasty, project_id, dataset_id, "a.png")
    label_class = await hasty_call(hasty, "POST", f"v1/projects/{project_id}/label_classes", 201, json={"name": "car"})
    labels = f"v1/projects/{project_id}/images/{image['id']}/labels"
    for label, field in (
        ({"class_id": label_class["id"], "bbox": [10, 10, 5, 20]}, "[0].bbox"),
        ({"class_id": label_class["id"], "bbox": [10, 10, 500, 20]}, "[0].bbox"),  # leaves the 64 × 48 image
        ({"class_id": label_class["id"], "polygon": [[1, 1], [2]]}, "[0].polygon"),
        ({"class_id": label_class["id"], "bbox": [1, 1, 5, 5], "mask": [1, 100]}, "[0].mask"),
        ({"class_id": "not-a-uuid", "bbox": [1, 1, 5, 5]}, "[0].class_id"),
    ):
        async with hasty.post(labels, json=[label]) as response:
            assert response.status == 400, await response.text()
            answer = await response.json()
        assert answer["path"].startswith(field) and field.split(".")[-1] in answer["message"], answer
    async with hasty.post(labels, json=[{"class_id": label_class["id"], "bbox": [1, 1, 5, 5]}] * 101) as response:
        assert response.status == 400 and "100" in (await response.json())["message"]


async def test_pagination_totals_are_exact_across_pages(
    hasty: aiohttp.ClientSession, api: aiohttp.ClientSession, unique: str
) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty pages {unique}")
    for i in range(7):
        await hasty_call(hasty, "POST", f"v1/projects/{project_id}/label_classes", 201, json={"name": f"class {i}"})
    await add(api, project_id, dataset_id, items(5, f"hasty-pages-{unique}"))
    for path, total in ((f"v1/projects/{project_id}/label_classes", 7), (f"v1/projects/{project_id}/images", 5)):
        seen: list[str] = []
        for offset in range(0, total + 3, 3):
            page = await hasty_call(hasty, "GET", path, params={"offset": offset, "limit": 3})
            assert page["meta"]["total"] == total
            assert len(page["items"]) == max(0, min(3, total - offset))
            seen.extend(item["id"] for item in page["items"])
        assert len(set(seen)) == total


async def test_one_project_is_the_same_through_hasty_and_the_native_api(
    hasty: aiohttp.ClientSession, api: aiohttp.ClientSession, unique: str
) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty and native {unique}")
    label_class = await hasty_call(hasty, "POST", f"v1/projects/{project_id}/label_classes", 201, json={"name": "car"})
    native = f"/v1/projects/{project_id}"
    # In through Hasty, read natively.
    image = await upload_image(hasty, project_id, dataset_id, "hasty.png")
    await hasty_call(hasty, "PUT", f"v1/projects/{project_id}/images/{image['id']}/status", json={"status": "IN PROGRESS"})
    made = await hasty_call(hasty, "POST", f"v1/projects/{project_id}/images/{image['id']}/labels", 201,
                            json=[{"class_id": label_class["id"], "bbox": [1, 2, 30, 40], "z_index": 3}])
    sample = await call(api, "GET", f"{native}/samples/{image['id']}")
    assert (sample["name"], sample["dataset_id"], sample["status"]) == ("hasty.png", dataset_id, "IN_PROGRESS")
    label = await call(api, "GET", f"{native}/samples/{image['id']}/labels/ground-truth")
    assert [(o["id"], o["class_id"], o["shape"], o["z_index"]) for o in label["objects"]] == [
        (made["items"][0]["id"], label_class["id"], {"type": "bbox", "box": [1, 2, 30, 40]}, 3)
    ]
    # The native object listing finds one object by its id (what the dialect's label calls use).
    found = await call(api, "GET", f"{native}/labelsets/ground-truth/objects",
                       params={"object_id": made["items"][0]["id"]})
    assert [(o["id"], o["sample_id"]) for o in found["items"]] == [(made["items"][0]["id"], image["id"])]
    # In natively, read through Hasty.
    added = await add(api, project_id, dataset_id, items(1, f"hasty-native-{unique}"))
    sample_id = added["items"][0]["id"]
    await call(api, "PUT", f"{native}/samples/{sample_id}/labels/ground-truth", json={"objects": [
        {"class_id": label_class["id"], "shape": {"type": "polygon", "points": [[0, 0], [10, 0], [10, 10]]}}]})
    seen = await hasty_call(hasty, "GET", f"v1/projects/{project_id}/images/{sample_id}")
    assert (seen["name"], seen["dataset_name"], seen["status"], seen["width"]) == ("img_00000.jpg", "train", "NEW", 640)
    labels = await hasty_call(hasty, "GET", f"v1/projects/{project_id}/images/{sample_id}/labels")
    assert [(x["class_id"], x["polygon"], x["bbox"]) for x in labels["items"]] == [
        (label_class["id"], [[0, 0], [10, 0], [10, 10]], [0, 0, 10, 10])
    ]
    assert labels["meta"]["total"] == 1


async def test_deletes_answer_204_and_missing_things_404(hasty: aiohttp.ClientSession, unique: str) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty deletes {unique}")
    await hasty_call(hasty, "DELETE", f"v1/projects/{project_id}/datasets/{dataset_id}", 204)
    for path in (f"v1/projects/{project_id}/datasets/{dataset_id}", f"v1/projects/{project_id}/images/{uuid.uuid4()}",
                 f"v1/projects/{uuid.uuid4()}"):
        async with hasty.get(path) as response:
            assert response.status == 404 and (await response.json())["message"]
    async with hasty.post("v1/projects", data=b"{not json") as response:
        assert response.status == 400 and (await response.json())["message"]


async def test_what_loupe_does_not_serve_answers_501_saying_what_to_do(
    hasty: aiohttp.ClientSession, unique: str
) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty 501 {unique}")
    project = f"v1/projects/{project_id}"
    for method, path, body, hint in (
        ("POST", f"{project}/attribute_prediction", {}, "attribute-prediction"),
        ("GET", f"{project}/videos", None, "video"),
        ("GET", f"{project}/activity_types", None, "video"),
        ("PUT", f"v1/buckets/{uuid.uuid4()}/credentials/{uuid.uuid4()}", {}, "create them again"),
        ("POST", f"{project}/exports", {"format": "videos"}, "video"),
    ):
        async with hasty.request(method, path, json=body) as response:
            assert response.status == 501, (path, await response.text())
            assert hint in (await response.json())["message"]


async def test_projects_made_natively_show_their_content_type(
    hasty: aiohttp.ClientSession, api: aiohttp.ClientSession, unique: str
) -> None:
    project = await create(api, f"native for hasty {unique}")
    await dataset(api, project["id"])
    seen = await hasty_call(hasty, "GET", f"v1/projects/{project['id']}")
    assert (seen["content_type"], seen["name"]) == ("IMAGES", project["name"])
    async with hasty.post("v1/projects", json={"name": f"video {unique}", "content_type": "VIDEOS"}) as response:
        assert response.status == 400 and "video" in (await response.json())["message"]


async def finished_hasty(hasty: aiohttp.ClientSession, path: str, timeout: float = 60.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while (job := await hasty_call(hasty, "GET", path))["status"] not in ("DONE", "FAILED"):
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.2)
    return job


async def test_the_error_finder_runs_label_qa_and_lists_its_errors(
    hasty: aiohttp.ClientSession, api: aiohttp.ClientSession, unique: str
) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty error finder {unique}")
    project = f"v1/projects/{project_id}"
    car = await hasty_call(hasty, "POST", f"{project}/label_classes", 201, json={"name": "car"})
    image = await upload_image(hasty, project_id, dataset_id, "qa.png")
    clean = await upload_image(hasty, project_id, dataset_id, "clean.png")
    for each in (image, clean):
        await hasty_call(hasty, "POST", f"{project}/images/{each['id']}/labels", 201,
                         json=[{"class_id": car["id"], "bbox": [2, 2, 30, 30]}])
    native = f"/v1/projects/{project_id}"
    await call(api, "POST", f"{native}/labelsets", 201, json={"name": "model"})
    predictions = {image["id"]: [[2, 2, 30, 30], [40, 20, 60, 40]], clean["id"]: [[2, 2, 30, 30]]}
    for sample_id, boxes in predictions.items():
        await call(api, "PUT", f"{native}/samples/{sample_id}/labels/model", json={"objects": [
            {"class_id": car["id"], "shape": {"type": "bbox", "box": box}, "confidence": 0.9} for box in boxes]})
    run = await hasty_call(hasty, "POST", f"{project}/error_finder/runs", 201, json={"predictions": "model"})
    run = await finished_hasty(hasty, f"{project}/error_finder/runs/{run['id']}")
    assert (run["status"], run["errors"], run["error_counts"]) == ("DONE", 1, {"MISSING_LABEL": 1})
    errors = await hasty_call(hasty, "GET", f"{project}/error_finder/runs/{run['id']}/errors")
    assert errors["meta"]["total"] == 1
    [error] = errors["items"]
    assert (error["image_id"], error["error_type"], error["user_action"]) == (image["id"], "MISSING_LABEL", "UNRESOLVED")
    flagged = await hasty_call(hasty, "GET", f"{project}/images", params={"ef_run_ids": run["id"]})
    assert [i["id"] for i in flagged["items"]] == [image["id"]] and flagged["meta"]["total"] == 1
    resolved = await hasty_call(hasty, "PATCH", f"{project}/error_finder/errors/{error['id']}",
                                json={"resolution": "NOT_AN_ERROR"})
    assert resolved["user_action"] == "RESOLVED"
    open_ones = await hasty_call(hasty, "GET", f"{project}/error_finder/runs/{run['id']}/errors",
                                 params={"ef_user_action": "UNRESOLVED"})
    assert open_ones == {"items": [], "meta": {"total": 0, "offset": 0, "limit": 100}}
    runs = await hasty_call(hasty, "GET", f"{project}/error_finder/runs")
    assert [r["id"] for r in runs["items"]] == [run["id"]]


async def test_keypoints_tags_and_labels_of_the_whole_project(hasty: aiohttp.ClientSession, unique: str) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty keypoints {unique}")
    project = f"v1/projects/{project_id}"
    schema = await hasty_call(hasty, "POST", f"{project}/keypoint_schemas", 201, json={
        "name": "face", "type": "points", "keypoint_classes": [{"name": "left eye", "norder": 0},
                                                               {"name": "right eye", "norder": 1}]})
    left, right = (k["id"] for k in schema["keypoint_classes"])
    schema = await hasty_call(hasty, "PUT", f"{project}/keypoint_schemas/{schema['id']}", json={
        "name": "face", "type": "points", "keypoint_classes": [{"name": "left eye"}, {"name": "right eye", "norder": 1}],
        "keypoint_skeleton": [{"keypoint_class_id_a": left, "keypoint_class_id_b": right}]})
    assert [(e["keypoint_class_id_a"], e["keypoint_class_id_b"]) for e in schema["keypoint_skeleton"]] == [(left, right)]
    face = await hasty_call(hasty, "POST", f"{project}/label_classes", 201, json={"name": "face"})
    car = await hasty_call(hasty, "POST", f"{project}/label_classes", 201, json={"name": "car"})
    await hasty_call(hasty, "POST", f"{project}/keypoint_schemas/label_classes", 201,
                     json=[{"keypoint_schema_id": schema["id"], "label_class_id": face["id"], "label_class_order": 0}])
    links = await hasty_call(hasty, "GET", f"{project}/keypoint_schemas/label_classes")
    assert [(x["keypoint_schema_id"], x["label_class_id"]) for x in links] == [(schema["id"], face["id"])]
    image = await upload_image(hasty, project_id, dataset_id, "face.png")
    made = await hasty_call(hasty, "POST", f"{project}/images/{image['id']}/labels", 201, json=[
        {"class_id": face["id"], "keypoints": [{"keypoint_class_id": right, "x": 30, "y": 10, "visible": False}]},
        {"class_id": car["id"], "bbox": [1, 1, 9, 9]},
    ])
    keypoints = made["items"][0]["keypoints"]
    assert [(k["keypoint_class_id"], k["x"], k["y"], k["visible"]) for k in keypoints] == [(right, 30, 10, False)]
    one = await hasty_call(hasty, "GET", f"{project}/labels/{made['items'][1]['id']}")
    assert (one["bbox"], one["image_id"]) == ([1, 1, 9, 9], image["id"])
    cars = await hasty_call(hasty, "GET", f"{project}/labels", params={"label_class_id": car["id"]})
    assert [x["id"] for x in cars["items"]] == [one["id"]] and cars["meta"]["total"] == 1
    group = await hasty_call(hasty, "POST", f"{project}/tag_groups", 201, json={"name": "weather", "type": "SELECTION"})
    sunny = await hasty_call(hasty, "POST", f"{project}/tag_classes", 201,
                             json={"name": "sunny", "tag_group_id": group["id"]})
    assert sunny["tag_group_name"] == "weather"
    tags = f"{project}/images/{image['id']}/tags"
    added = await hasty_call(hasty, "POST", tags, 201, json=[{"tag_class_id": sunny["id"]}])
    assert [t["tag_class_name"] for t in added] == ["sunny"]
    await hasty_call(hasty, "DELETE", tags, 204, json=[{"tag_class_id": sunny["id"]}])
    assert (await hasty_call(hasty, "GET", tags))["meta"]["total"] == 0


async def test_attribute_values_of_an_images_labels(hasty: aiohttp.ClientSession, unique: str) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty label attributes {unique}")
    project = f"v1/projects/{project_id}"
    car = await hasty_call(hasty, "POST", f"{project}/label_classes", 201, json={"name": "car"})
    size = await hasty_call(hasty, "POST", f"{project}/attributes", 201,
                            json={"name": "size", "type": "INT", "min": 0, "max": 9, "values": []})
    image = await upload_image(hasty, project_id, dataset_id, "attributes.png")
    made = await hasty_call(hasty, "POST", f"{project}/images/{image['id']}/labels", 201,
                            json=[{"class_id": car["id"], "bbox": [1, 1, 9, 9]}, {"class_id": car["id"], "bbox": [9, 9, 19, 19]}])
    first, second = (label["id"] for label in made["items"])
    path = f"{project}/images/{image['id']}/label_attributes"
    await hasty_call(hasty, "PUT", path, json=[{"id": size["id"], "label_id": first, "value": 3},
                                               {"id": size["id"], "label_id": second, "value": 7}])
    seen = await hasty_call(hasty, "GET", path)
    assert sorted((x["label_id"], x["name"], x["value"]) for x in seen["items"]) == sorted(
        [(first, "size", 3), (second, "size", 7)])
    async with hasty.put(path, json=[{"id": size["id"], "label_id": first, "value": 12}]) as response:
        assert response.status == 400, await response.text()
        assert (await response.json())["path"] == "[].value"


async def test_conflicts_answer_400_so_the_sdk_shows_the_message(hasty: aiohttp.ClientSession, unique: str) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty conflicts {unique}")
    project = f"v1/projects/{project_id}"
    image = await upload_image(hasty, project_id, dataset_id, "workflow.png")
    status = f"{project}/images/{image['id']}/status"
    await hasty_call(hasty, "PUT", status, json={"status": "DONE"})
    await hasty_call(hasty, "PUT", status, json={"status": "COMPLETED"})
    async with hasty.put(status, json={"status": "NEW"}) as response:
        assert response.status == 400
        answer = await response.json()
    assert (answer["code"], answer["path"]) == ("conflict", "status") and "COMPLETED" in answer["message"]


@pytest.mark.parametrize(("hasty_format", "native_file"), [
    ("json_v1.1", "hasty.zip"), ("json_coco", "coco.zip"), ("semantic_png", ".zip"), ("pascal", ".zip"),
    ("yolo", ".zip"), ("images", "images.zip"),
])
async def test_each_export_format_downloads_without_a_key(
    hasty: aiohttp.ClientSession, unique: str, hasty_format: str, native_file: str
) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty export {hasty_format} {unique}")
    project = f"v1/projects/{project_id}"
    car = await hasty_call(hasty, "POST", f"{project}/label_classes", 201, json={"name": "car"})
    for name in ("one.png", "two.png"):
        image = await upload_image(hasty, project_id, dataset_id, name)
        await hasty_call(hasty, "POST", f"{project}/images/{image['id']}/labels", 201,
                         json=[{"class_id": car["id"], "bbox": [2, 2, 20, 20]}])
    job = await hasty_call(hasty, "POST", f"{project}/exports", 201,
                           json={"format": hasty_format, "export_name": "mine", "dataset_id": [dataset_id]})
    job = await finished_hasty(hasty, f"{project}/exports/{job['id']}")
    assert (job["status"], job["meta"]["export_name"]) == ("DONE", "mine"), job
    async with aiohttp.ClientSession() as anonymous, anonymous.get(job["meta"]["url"]) as response:
        assert response.status == 200
        assert native_file in response.url.path
        assert zipfile.is_zipfile(io.BytesIO(await response.read())), "the SDK saves every export as a zip"


async def test_the_images_export_zips_every_original(hasty: aiohttp.ClientSession, unique: str) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty images export {unique}")
    project = f"v1/projects/{project_id}"
    other = await hasty_call(hasty, "POST", f"{project}/datasets", 201, json={"name": "val"})
    names = {"one.png": dataset_id, "two.png": dataset_id, "three.png": other["id"]}
    for name, into in names.items():
        await upload_image(hasty, project_id, into, name)
    job = await hasty_call(hasty, "POST", f"{project}/exports", 201, json={"format": "images", "export_name": "pix"})
    job = await finished_hasty(hasty, f"{project}/exports/{job['id']}")
    assert job["status"] == "DONE", job
    async with aiohttp.ClientSession() as anonymous, anonymous.get(job["meta"]["url"]) as response:
        zipped = zipfile.ZipFile(io.BytesIO(await response.read()))
    folders = {dataset_id: "train", other["id"]: "val"}
    expected = {f"{folders[into]}/{name}" for name, into in names.items()}
    assert set(zipped.namelist()) == expected
    for entry in expected:
        name = entry.split("/")[1]
        assert zipped.read(entry) == png(colour=tuple(hashlib.sha256(name.encode()).digest()[:3]))


async def test_an_image_from_a_url_and_one_that_cannot_be_read(
    hasty: aiohttp.ClientSession, media_server: MediaServer, unique: str
) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty urls {unique}")
    images = f"v1/projects/{project_id}/images"
    image = await hasty_call(hasty, "POST", images, 201, json={
        "dataset_id": dataset_id, "filename": "from-url.jpg", "url": media_server.url("/img/7.jpg", public=True),
        "copy_original": False, "external_id": "u-7"})
    assert (image["name"], image["external_id"], image["width"], image["height"]) == ("from-url.jpg", "u-7", 64, 48)
    async with hasty.post(images, json={"dataset_id": dataset_id, "filename": "x.jpg",
                                        "url": "http://169.254.169.254/latest"}) as response:
        assert response.status == 400, await response.text()
        answer = await response.json()
    assert answer["path"] == "url" and answer["message"].startswith("the image could not be stored")


async def test_bucket_credentials_import_a_prefix_and_single_images(
    hasty: aiohttp.ClientSession, api: aiohttp.ClientSession, external_s3: ExternalS3, unique: str
) -> None:
    project_id, dataset_id = await hasty_project(hasty, f"hasty buckets {unique}")
    workspace = (await hasty_call(hasty, "GET", "v1/workspaces"))["items"][0]["id"]
    credentials = f"v1/buckets/{workspace}/credentials"
    bucket = f"hasty-{unique}"
    await external_s3.put_images(bucket, "frames", range(400, 403))
    keys = {"access_key": external_s3.access_key, "secret_key": external_s3.secret_key}
    new = {"description": "dashcam", "cloud_provider": "s3", "bucket_s3": bucket, "project_id": project_id,
           "endpoint": external_s3.endpoint, "secure": False, **keys}
    made = await hasty_call(hasty, "POST", credentials, 201, json=new)
    assert (made["description"], made["cloud_provider"], made["project_id"]) == ("dashcam", "s3", project_id)
    assert external_s3.secret_key not in str(made)
    listed = await hasty_call(hasty, "GET", credentials)
    assert made in listed["items"]
    assert await hasty_call(hasty, "GET", f"{credentials}/{made['credential_id']}") == made

    for change, path in (({"cloud_provider": "gcs"}, "cloud_provider"), ({"project_id": None}, "project_id"),
                         ({"access_key": "", "role": "arn:aws:iam::1:role/hasty"}, "access_key")):
        async with hasty.post(credentials, json={**new, **change}) as response:
            assert response.status == 400 and (await response.json())["path"] == path

    image = await hasty_call(hasty, "POST", f"v1/projects/{project_id}/images", 201,
                             json={"dataset_id": dataset_id, "url": "frames/401.jpg", "filename": "one.jpg",
                                   "bucket_id": made["credential_id"]})
    assert (image["name"], image["dataset_id"]) == ("one.jpg", dataset_id)
    async with hasty.post(f"v1/projects/{project_id}/images",
                          json={"dataset_id": dataset_id, "url": "frames/none.jpg", "bucket_id": made["credential_id"]}
                          ) as response:
        assert response.status == 400 and "frames/none.jpg" in (await response.json())["message"]

    started = await hasty_call(hasty, "POST", f"{credentials}/{made['credential_id']}/import",
                               json={"dataset_id": dataset_id, "prefix": "frames/"})
    run = await finished(api, f"/v1/projects/{project_id}/imports/{started['import_id']}")
    assert (run["created"], run["duplicates"]) == (2, 1)

    await hasty_call(hasty, "DELETE", f"{credentials}/{made['credential_id']}", 204)
    async with hasty.get(f"{credentials}/{made['credential_id']}") as response:
        assert response.status == 404


async def test_the_sdk_keeps_bucket_credentials_and_uploads_from_a_bucket(
    stack: Stack, sdk_python: Path, external_s3: ExternalS3, unique: str
) -> None:
    bucket = f"hasty-sdk-{unique}"
    await external_s3.put_images(bucket, "cams", range(410, 411))
    env = {**flow_env(stack.gateway_url, stack.segments_url, stack.admin_key)["hasty_flow"],
           "BUCKET_ENDPOINT": external_s3.endpoint, "BUCKET_NAME": bucket, "BUCKET_KEY": "cams/410.jpg",
           "BUCKET_ACCESS_KEY": external_s3.access_key, "BUCKET_SECRET_KEY": external_s3.secret_key}
    seen = await asyncio.to_thread(run_flow, sdk_python, "hasty_bucket_flow", env)
    assert "access_key" in seen["role_refused"]
    assert seen["bucket"] == ["dashcam", "s3", 36]
    assert seen["image"] == ["from-bucket.jpg", "frames", 64, 48]
