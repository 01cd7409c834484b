"""Hasty's model inference on Loupe's PREDICT: the SDK's object detector, discovered and asked for boxes of an
image by path (a signed upload, which makes no sample) and by URL, answers the boxes native predict answers;
the models Loupe has no counterpart for answer 501 with what to use instead."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from loupe import synth
from loupe.stack import Stack
from tests.compat.sdk import flow_env, run_flow
from tests.compat.test_hasty import hasty_call
from tests.helpers import TINY_DETECTOR, call, create, train
from tests.media_server import MediaServer

pytestmark = pytest.mark.timeout(400)

CONFIDENCE = 0.05
# Long enough for a tiny segmentor to paint some class on an image it was trained on.
TINY_SEGMENTOR = {**TINY_DETECTOR, "epochs": 20, "learning_rate": 5e-3}
MAX_DETECTIONS = 10  # the flow asks for as many


@dataclass(frozen=True)
class Detector:
    project_id: str
    image: bytes  # a PNG the tiny detector was trained on


@pytest.fixture(scope="module")
async def detector(stack: Stack, api: aiohttp.ClientSession) -> Detector:
    """A tiny detector trained in seconds, as the console's tests train theirs."""
    images = list(synth.generate(40, size=32, seed=5))
    loaded = await synth.load(
        images, stack.gateway_url, stack.admin_key, name=f"hasty inference {uuid.uuid4().hex[:8]}", progress=False
    )
    await train(api, loaded.project_id)
    buffer = io.BytesIO()
    images[0].image.save(buffer, format="PNG")
    return Detector(loaded.project_id, buffer.getvalue())


@pytest.fixture(scope="module")
async def segmentor(api: aiohttp.ClientSession, detector: Detector) -> str:
    """A tiny semantic segmentor of the detector's project; its active version's id."""
    base = f"/v1/projects/{detector.project_id}"
    await train(api, detector.project_id, "segmentation", "tinyseg", TINY_SEGMENTOR)
    return (await call(api, "GET", f"{base}/models/tinyseg/versions/1"))["id"]


@pytest.fixture(scope="module")
async def hasty(stack: Stack) -> Any:
    async with aiohttp.ClientSession(f"{stack.gateway_url}/hasty/", headers={"X-Api-Key": stack.admin_key}) as session:
        yield session


def boxed(box: list[float], score: float, class_id: str) -> tuple:
    """A box as both APIs answer it, to the 1/1000 pixel: JSON numbers need not print alike."""
    return [round(c, 3) for c in box], round(score, 4), class_id


async def sample_count(api: aiohttp.ClientSession, project_id: str) -> int:
    return (await call(api, "POST", f"/v1/projects/{project_id}/samples/count", json={}))["count"]


async def test_the_sdks_detector_predicts_the_native_boxes_by_path_and_by_url(
    stack: Stack,
    sdk_python: Path,
    api: aiohttp.ClientSession,
    media_server: MediaServer,
    detector: Detector,
    tmp_path: Path,
) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(detector.image)
    media_server.files["hasty-inference.png"] = detector.image
    samples_before = await sample_count(api, detector.project_id)
    env = {
        **flow_env(stack.gateway_url, stack.segments_url, stack.admin_key)["hasty_flow"],
        "HASTY_PROJECT_ID": detector.project_id,
        "HASTY_IMAGE_PATH": str(path),
        "HASTY_IMAGE_URL": media_server.url("/files/hasty-inference.png", public=True),
    }
    seen = await asyncio.to_thread(run_flow, sdk_python, "hasty_inference_flow", env)

    base = f"/v1/projects/{detector.project_id}"
    version = await call(api, "GET", f"{base}/models/tiny/versions/1")
    assert (seen["model_id"], seen["status"]) == (version["id"], "LOADED")
    native = await call(
        api,
        "POST",
        f"{base}/inference/predict",
        json={
            "model": {"family": "detection"},
            "image": base64.b64encode(detector.image).decode(),
            "thresholds": {"confidence": CONFIDENCE, "max_detections": MAX_DETECTIONS},
        },
    )
    expected = [boxed(obj["shape"]["box"], obj["confidence"], obj["class_id"]) for obj in native["objects"]]
    assert expected, "the tiny detector finds something on an image it was trained on"
    for predicted in (seen["by_path"], seen["by_url"]):
        assert [boxed(p["bbox"], p["score"], p["class_id"]) for p in predicted] == expected, seen
    # Predicting an uploaded image completes no upload: the project has no new sample.
    assert await sample_count(api, detector.project_id) == samples_before


async def test_a_version_named_by_model_id_predicts(
    hasty: aiohttp.ClientSession, media_server: MediaServer, detector: Detector
) -> None:
    project = f"v1/projects/{detector.project_id}"
    media_server.files["hasty-inference.png"] = detector.image
    found = await hasty_call(hasty, "GET", f"{project}/object_detector")
    url = media_server.url("/files/hasty-inference.png", public=True)
    boxes = await hasty_call(
        hasty,
        "POST",
        f"{project}/object_detection",
        json={"image_url": url, "model_id": found["model_id"], "confidence_threshold": CONFIDENCE},
    )
    assert boxes and all(len(box["bbox"]) == 4 and box["score"] >= CONFIDENCE for box in boxes)


async def test_the_semantic_segmentor_answers_the_native_masks(
    hasty: aiohttp.ClientSession,
    api: aiohttp.ClientSession,
    media_server: MediaServer,
    detector: Detector,
    segmentor: str,
) -> None:
    project = f"v1/projects/{detector.project_id}"
    assert (await hasty_call(hasty, "GET", f"{project}/semantic_segmentor"))["model_id"] == segmentor
    media_server.files["hasty-inference.png"] = detector.image
    url = media_server.url("/files/hasty-inference.png", public=True)
    masks = await hasty_call(hasty, "POST", f"{project}/semantic_segmentation", json={"image_url": url})
    native = await call(
        api, "POST", f"/{project}/inference/predict", json={"model": {"family": "segmentation"}, "url": url}
    )
    assert native["objects"], "the tiny segmentor finds a class on an image it was trained on"
    assert [(m["class_id"], m["score"]) for m in masks] == [(obj["class_id"], None) for obj in native["objects"]]
    # Each mask is Hasty's: runs of [start, length] inside its bbox, row by row, for the native mask's pixels.
    for mask, obj in zip(masks, native["objects"], strict=True):
        assert mask["mask"] and len(mask["bbox"]) == 4 and obj["shape"]["type"] == "mask"
    # `min_size` is an area: a mask of fewer pixels is left out.
    smallest = min(sum(mask["mask"][1::2]) for mask in masks)
    fewer = await hasty_call(
        hasty, "POST", f"{project}/semantic_segmentation", json={"image_url": url, "min_size": smallest + 1}
    )
    assert len(fewer) == len([mask for mask in masks if sum(mask["mask"][1::2]) > smallest])


async def test_refusals_say_what_to_fix(
    hasty: aiohttp.ClientSession, api: aiohttp.ClientSession, detector: Detector
) -> None:
    project = f"v1/projects/{detector.project_id}"
    untrained = (await create(api, f"hasty untrained {uuid.uuid4().hex[:8]}"))["id"]
    async with hasty.get(f"v1/projects/{untrained}/object_detector") as response:
        assert response.status == 404 and "no active detection model" in (await response.json())["message"]
    for method, path, message in (
        ("GET", "instance_segmentor", "semantic_segmentor"),
        ("POST", "instance_segmentation", "semantic_segmentation"),
        ("GET", "attributer", "no attribute-prediction model"),
        ("POST", "attribute_prediction", "no attribute-prediction model"),
    ):
        async with hasty.request(method, f"{project}/{path}", json={}) as response:
            assert response.status == 501 and message in (await response.json())["message"], path
    predict = "object_detection"
    upload = await hasty_call(hasty, "GET", f"{project}/uploads", params={"count": 1})
    for path, body, status, field in (
        (predict, {}, 400, "image_url"),
        (predict, {"image_url": "http://example.com/a.png", "upload_id": str(uuid.uuid4())}, 400, "image_url"),
        (predict, {"image_url": "http://127.0.0.1:9/private.png"}, 400, "url"),
        (predict, {"upload_id": "not an id"}, 400, "upload_id"),
        (predict, {"upload_id": str(uuid.uuid4())}, 404, None),
        (predict, {"upload_id": upload["items"][0]["id"]}, 400, "upload_id"),
        (predict, {"image_url": "http://example.com/a.png", "model_id": str(uuid.uuid4())}, 404, "model_id"),
        (predict, {"image_url": "http://example.com/a.png", "confidence_threshold": 2}, 400, "confidence"),
    ):
        method = "GET" if body is None else "POST"
        async with hasty.request(method, f"{project}/{path}", json=body) as response:
            answer = await response.json()
            assert response.status == status and answer["message"], (body, answer)
            assert field is None or field in answer.get("path", ""), (body, answer)
