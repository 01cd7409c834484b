"""Inference on the real stack, through Triton: a detector trained on synthetic data auto-labels 500 new
images about as well as its evaluation said, a SIGKILLed inference process resumes its job without
duplicating a label, predictions of one image, embeddings and similar images, ranking sessions, tag status,
and the 4xx answers."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import signal
from dataclasses import dataclass

import aiohttp
import numpy as np
import pytest
from PIL import Image
from tritonclient.grpc.aio import InferenceServerClient

from loupe import synth
from loupe.stack import Stack
from services.inference.triton import TritonModels
from services.training.ml.evaluate import score
from shared.predictions import Prediction, TaskSpec
from tests.helpers import call, eventually, finished, items_of, presigned_upload
from tests.media_server import MediaServer, jpeg

pytestmark = pytest.mark.timeout(600)

TRAIN_IMAGES = 500
NEW_IMAGES = 500
# Enough for the detector to be worth measuring, small enough for two shared CPU cores.
DETECTOR = {"epochs": 12, "batch_size": 16, "image_size": 64, "learning_rate": 5e-3, "workers": 0}


@dataclass(frozen=True)
class Trained:
    path: str
    project_id: str
    version: dict
    incoming: str  # the dataset of the new, unlabelled images
    val: str  # the validation dataset the version was evaluated on
    train_images: list[synth.SynthImage]
    new_images: list[synth.SynthImage]
    names: dict[str, int]  # sample id -> index into new_images


@pytest.fixture(scope="module")
async def trained(stack: Stack, api: aiohttp.ClientSession) -> Trained:
    """A detector trained on 500 labelled synthetic images, and 500 new unlabelled ones in `incoming`."""
    train_images = list(synth.generate(TRAIN_IMAGES, size=64, seed=21))
    loaded = await synth.load(
        train_images,
        stack.gateway_url,
        stack.admin_key,
        name="inference tests",
        progress=False,
    )
    path = f"/v1/projects/{loaded.project_id}"
    run = await call(
        api, "POST", f"{path}/training/runs", 202, json={"family": "detection", "model": "detector", "config": DETECTOR}
    )
    run = await finished(api, f"{path}/training/runs/{run['id']}", 400)
    assert run["state"] == "SUCCEEDED", run
    version = await call(api, "GET", f"{path}/models/detector/versions/1")
    new_images = list(synth.generate(NEW_IMAGES, size=64, seed=22))
    uploaded = await synth.upload_unlabelled(
        new_images, stack.gateway_url, stack.admin_key, project=loaded.project_id, progress=False
    )
    return Trained(
        path,
        loaded.project_id,
        version,
        uploaded.dataset_id,
        loaded.datasets["val"],
        train_images,
        new_images,
        {s: i for i, s in enumerate(uploaded.sample_ids)},
    )


async def start(api: aiohttp.ClientSession, trained: Trained, job: dict) -> dict:
    return await call(api, "POST", f"{trained.path}/inference/jobs", 202, json=job)


async def job_done(api: aiohttp.ClientSession, trained: Trained, job: dict, timeout: float = 300) -> dict:
    return await finished(api, f"{trained.path}/inference/jobs/{job['id']}", timeout)


async def all_results(api: aiohttp.ClientSession, trained: Trained, job_id: str) -> list[dict]:
    items: list[dict] = []
    params: dict = {"limit": 1000}
    while True:
        page = await call(api, "GET", f"{trained.path}/inference/jobs/{job_id}/results", params=params)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


def detections(predictions: dict | None) -> Prediction:
    objects = (predictions or {}).get("objects", [])
    return Prediction(
        boxes=np.array([o["shape"]["box"] for o in objects], np.float32).reshape(-1, 4),
        box_classes=np.array([synth.SHAPES.index(o["class_name"]) for o in objects], np.int64),
        box_scores=np.array([o["confidence"] for o in objects], np.float32),
    )


def png(image: synth.SynthImage, size: int | None = None, jpeg_quality: int | None = None) -> bytes:
    picture = image.image if size is None else image.image.resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    if jpeg_quality:
        picture.save(buffer, format="JPEG", quality=jpeg_quality)
    else:
        picture.save(buffer, format="PNG")
    return buffer.getvalue()


async def autolabel_map50(
    api: aiohttp.ClientSession, trained: Trained, dataset: str, images: list[synth.SynthImage]
) -> float:
    """Auto-label a dataset with the evaluation's thresholds; the mAP@0.5 of its predictions."""
    job = await start(
        api,
        trained,
        {
            "kind": "autolabel",
            "model": {"family": "detection"},
            "selection": {"filter": {"dataset_ids": [dataset]}},
            # The evaluation's mAP counts the low-score tail too.
            "thresholds": {"confidence": 0.05, "max_detections": 100},
        },
    )
    assert (job["state"], job["model"], job["version"]) == ("QUEUED", "detector", 1)
    job = await job_done(api, trained, job)
    assert job["state"] == "SUCCEEDED", job
    results = await all_results(api, trained, job["id"])
    assert len(results) == job["done"] == job["written"] == job["total"] and job["failed"] == 0
    names = {image.name: index for index, image in enumerate(images)}
    index_of = {}
    for result in results:
        sample = await call(api, "GET", f"{trained.path}/samples/{result['sample_id']}")
        index_of[result["sample_id"]] = names[sample["name"]]
    spec, truth = synth.examples(images, "detection")
    found = [detections(r["predictions"]) for r in results]
    chosen = [truth[index_of[r["sample_id"]]] for r in results]
    return score(TaskSpec("detection", spec.classes), found, chosen).metrics["map50"]


async def test_auto_labelling_the_validation_images_reproduces_the_versions_evaluation(
    api: aiohttp.ClientSession, trained: Trained
) -> None:
    """Decoding, resizing and post-processing through Triton are those of the evaluation in training."""
    achieved = await autolabel_map50(api, trained, trained.val, trained.train_images)
    assert abs(achieved - trained.version["metrics"]["map50"]) <= 0.01, (achieved, trained.version["metrics"])


async def test_auto_labelled_images_are_as_good_as_the_models_evaluation_and_become_auto_labelled(
    api: aiohttp.ClientSession, trained: Trained
) -> None:
    job = await start(
        api,
        trained,
        {
            "kind": "autolabel",
            "model": {"family": "detection"},
            "selection": {"filter": {"dataset_ids": [trained.incoming]}},
            # The evaluation's mAP counts the low-score tail too.
            "thresholds": {"confidence": 0.05, "max_detections": 100},
        },
    )
    assert (job["state"], job["model"], job["version"], job["total"]) == ("QUEUED", "detector", 1, NEW_IMAGES)
    job = await job_done(api, trained, job)
    assert job["state"] == "SUCCEEDED", job
    assert (job["done"], job["written"], job["failed"]) == (NEW_IMAGES, NEW_IMAGES, 0)

    results = await all_results(api, trained, job["id"])
    assert len(results) == NEW_IMAGES
    order = [trained.names[r["sample_id"]] for r in results]
    spec, truth = synth.examples(trained.new_images, "detection")
    found = [detections(r["predictions"]) for r in results]
    achieved = score(TaskSpec("detection", spec.classes), found, [truth[i] for i in order]).metrics["map50"]
    assert achieved >= trained.version["metrics"]["map50"] - 0.05, (achieved, trained.version["metrics"])

    # The labels are there, in the predictions labelset, searchable like any label.
    sample_id = results[0]["sample_id"]
    label = await call(api, "GET", f"{trained.path}/samples/{sample_id}/labels/predictions")
    assert label["status"] == "PRELABELED"
    assert len(label["objects"]) == len(results[0]["predictions"]["objects"])
    assert all(o["confidence"] is not None for o in label["objects"])
    sample = await call(api, "GET", f"{trained.path}/samples/{sample_id}")
    assert sample["status"] == "AUTO_LABELLED"
    count = await call(
        api,
        "POST",
        f"{trained.path}/samples/count",
        json={"dataset_ids": [trained.incoming], "statuses": ["AUTO_LABELLED"]},
    )
    assert count["count"] == NEW_IMAGES


async def test_a_killed_inference_process_resumes_its_job_and_duplicates_no_label(
    api: aiohttp.ClientSession, trained: Trained, stack: Stack
) -> None:
    job = await start(
        api,
        trained,
        {
            "kind": "autolabel",
            "model": {"family": "detection", "model": "detector", "version": 1},
            "selection": {"filter": {"dataset_ids": [trained.incoming]}},
            "target": "predictions",
            "thresholds": {"confidence": 0.3},
        },
    )

    async def part_done() -> dict:
        current = await call(api, "GET", f"{trained.path}/inference/jobs/{job['id']}")
        assert current["done"] >= 64 and current["state"] == "RUNNING"
        return current

    await eventually(part_done, timeout=120, interval=0.05)
    killed = stack.pids()["inference"]
    os.kill(killed, signal.SIGKILL)  # the stack starts the service again; JetStream redelivers the job

    job = await job_done(api, trained, job)
    assert job["state"] == "SUCCEEDED" and job["resumed"] >= 1, job
    assert job["done"] == NEW_IMAGES and job["written"] + job["skipped"] >= NEW_IMAGES

    results = await all_results(api, trained, job["id"])
    assert len({r["sample_id"] for r in results}) == len(results) == NEW_IMAGES
    # Every label holds exactly the objects the job predicted for it: none twice.
    for result in results[:: NEW_IMAGES // 25]:
        label = await call(api, "GET", f"{trained.path}/samples/{result['sample_id']}/labels/predictions")
        assert len(label["objects"]) == len(result["predictions"]["objects"])
    objects = await call(api, "GET", f"{trained.path}/labelsets/predictions/objects", params={"limit": 10000})
    by_sample: dict[str, int] = {}
    for obj in objects["items"]:
        if obj["sample_id"] not in trained.names:  # another test's predictions for the validation images
            continue
        by_sample[obj["sample_id"]] = by_sample.get(obj["sample_id"], 0) + 1
    expected = {r["sample_id"]: len(r["predictions"]["objects"]) for r in results if r["predictions"]["objects"]}
    assert by_sample == expected


async def test_predict_one_image_by_bytes_or_sample(api: aiohttp.ClientSession, trained: Trained) -> None:
    image = trained.new_images[0]
    found = await call(
        api,
        "POST",
        f"{trained.path}/inference/predict",
        json={"model": {"family": "detection"}, "image": base64.b64encode(png(image)).decode()},
    )
    assert (found["model"], found["version"], found["width"], found["height"]) == ("detector", 1, 64, 64)
    assert found["objects"] and all(o["shape"]["type"] == "bbox" and o["class_id"] for o in found["objects"])
    assert all(o["confidence"] >= 0.3 for o in found["objects"])
    sample_id = next(s for s, i in trained.names.items() if i == 0)
    by_sample = await call(
        api,
        "POST",
        f"{trained.path}/inference/predict",
        json={"model": {"family": "detection"}, "sample_id": sample_id},
    )
    assert by_sample == found


async def test_embeddings_find_an_images_near_duplicates_first(api: aiohttp.ClientSession, trained: Trained) -> None:
    job = await start(
        api,
        trained,
        {
            "kind": "embeddings",
            "model": {"family": "detection"},
            "selection": {"filter": {"dataset_ids": [trained.incoming]}},
        },
    )
    job = await job_done(api, trained, job)
    assert job["state"] == "SUCCEEDED" and job["written"] == NEW_IMAGES, job
    spaces = await call(api, "GET", f"{trained.path}/embeddings")
    assert {s["space"]: s["count"] for s in spaces["items"]}["detector:1"] == NEW_IMAGES

    # Resized and recompressed copies of an image are added; the original's nearest samples are its copies.
    original = trained.new_images[7]
    copies = [png(original, size=80), png(original, size=48), png(original, jpeg_quality=60)]
    copy_ids = await upload_files(api, trained, "near-copy-", copies)
    job = await start(
        api,
        trained,
        {
            "kind": "embeddings",
            "model": {"family": "detection"},
            "selection": {"filter": {"name_contains": "near-copy"}},
        },
    )
    job = await job_done(api, trained, job)
    assert job["written"] == len(copies)
    sample_id = next(s for s, i in trained.names.items() if i == 7)
    nearest = await call(
        api, "POST", f"{trained.path}/samples/similar", json={"space": "detector:1", "sample_id": sample_id, "limit": 5}
    )
    assert {n["sample"]["id"] for n in nearest["items"][:3]} == set(copy_ids)

    # The same, from an uploaded image, through the model.
    by_image = await call(
        api,
        "POST",
        f"{trained.path}/inference/similar",
        json={"model": {"family": "detection"}, "image": base64.b64encode(png(original)).decode(), "limit": 4},
    )
    assert {n["sample"]["id"] for n in by_image["items"][:4]} == {sample_id, *copy_ids}


async def upload_files(api: aiohttp.ClientSession, trained: Trained, prefix: str, files: list[bytes]) -> list[str]:
    """Upload PNG bytes into `incoming` as `<prefix><i>.png`; their sample ids, in order, once registered."""
    dataset = {"id": trained.incoming, "project_id": trained.project_id}
    run = await presigned_upload(api, dataset, [(f"{prefix}{i}.png", data) for i, data in enumerate(files)])
    items = sorted(await items_of(api, dataset, run["id"]), key=lambda item: item["index"])
    assert all(i["sample_id"] for i in items), items

    async def registered() -> bool:
        count = await call(api, "POST", f"{trained.path}/samples/count", json={"name_contains": prefix})
        return count["count"] == len(files)

    await eventually(registered, timeout=30, interval=0.1)
    return [i["sample_id"] for i in items]


async def test_a_ranking_orders_new_samples_and_becomes_a_view_and_the_work_queue(
    api: aiohttp.ClientSession, trained: Trained
) -> None:
    heuristics = await call(api, "GET", "/v1/inference/heuristics")
    assert {"least-confidence", "margin", "entropy", "core-set", "random"} <= {h["id"] for h in heuristics["items"]}
    shifted = list(synth.generate(20, size=64, seed=23, shift=True))
    await upload_files(api, trained, "shifted-", [png(image) for image in shifted])
    top: dict[str, str] = {}
    for heuristic in ("entropy", "core-set"):
        job = await start(
            api,
            trained,
            {
                "kind": "ranking",
                "model": {"family": "detection"},
                "heuristic": heuristic,
                "count": 10,
                "selection": {"filter": {"name_contains": "shifted-"}},
                "set_priority": heuristic == "entropy",
            },
        )
        job = await job_done(api, trained, job)
        assert job["state"] == "SUCCEEDED" and job["view_id"] and job["done"] == len(shifted), job
        picks = await all_results(api, trained, job["id"])
        assert [p["rank"] for p in picks] == list(range(1, 11))
        assert all(a["score"] >= b["score"] for a, b in zip(picks, picks[1:], strict=False))
        view = await call(api, "GET", f"{trained.path}/views/{job['view_id']}")
        assert view["item_count"] == 10
        top[heuristic] = picks[0]["sample_id"]

    # The entropy ranking raised its picks' priority: the work queue hands out its best pick first.
    async def first_in_queue() -> bool:
        reply = await call(api, "POST", f"{trained.path}/queues/label/next", json={})
        sample_id = reply["assignment"]["sample_id"]
        await call(api, "DELETE", f"{trained.path}/samples/{sample_id}/locks/ground-truth", 204)
        assert sample_id == top["entropy"]
        return True

    await eventually(first_in_queue, timeout=20, interval=0.2)


async def test_tag_status_follows_training_and_models(api: aiohttp.ClientSession, trained: Trained) -> None:
    status = await call(api, "GET", f"{trained.path}/tagging/status")
    assert {s["group"]: s["status"] for s in status["items"]} == {
        "weather": "queued",
        "shape": "queued",
        "colour": "queued",
    }


async def test_bad_requests_are_refused_with_the_field(api: aiohttp.ClientSession, trained: Trained) -> None:
    bad = [
        ({"kind": "autolabel", "model": {"family": "tagging"}}, 409, "$.model"),
        ({"kind": "autolabel", "model": {"family": "detection", "model": "nope"}}, 422, "$.model.model"),
        ({"kind": "autolabel", "model": {"family": "detection", "version": 9}}, 422, "$.model.version"),
        ({"kind": "ranking", "model": {"family": "detection"}, "heuristic": "guess"}, 422, "$.heuristic"),
        (
            {
                "kind": "autolabel",
                "model": {"family": "detection"},
                "selection": {"filter": {"metadata": {"bad key!": 1}}},
            },
            422,
            "$.selection.filter",
        ),
        ({"kind": "autolabel", "model": {"family": "detection"}, "thresholds": {"confidence": 2}}, 422, None),
    ]
    for body, status, path in bad:
        async with api.post(f"{trained.path}/inference/jobs", json=body) as response:
            problem = await response.json()
            assert response.status == status, (body, problem)
            if path:
                assert problem.get("path", "").startswith(path), (body, problem)
    async with api.post(
        f"{trained.path}/inference/predict",
        json={"model": {"family": "detection"}, "image": base64.b64encode(b"not an image").decode()},
    ) as response:
        assert response.status == 422 and (await response.json())["path"] == "$.image"
    async with api.post(f"{trained.path}/inference/predict", json={"model": {"family": "detection"}}) as response:
        assert response.status == 422
    await asyncio.sleep(0)


async def test_a_cancelled_job_stops_after_its_current_slice(api: aiohttp.ClientSession, trained: Trained) -> None:
    job = await start(
        api,
        trained,
        {"kind": "embeddings", "model": {"family": "detection"}, "selection": {"limit": 5000}},
    )
    cancelled = await call(api, "POST", f"{trained.path}/inference/jobs/{job['id']}/cancel")
    assert cancelled["cancel_requested"]
    job = await job_done(api, trained, job, timeout=60)
    assert job["state"] == "CANCELLED" and job["done"] < job["total"], job


async def test_an_idle_version_is_unloaded_and_loaded_again_when_needed(
    api: aiohttp.ClientSession, trained: Trained, stack: Stack
) -> None:
    name, version = trained.version["triton_model"], trained.version["version"]
    client = InferenceServerClient(stack.settings.triton_grpc_url)
    models = TritonModels(stack.settings.triton_grpc_url, batch=16, in_flight=4, idle_unload_s=0.0)
    try:
        await models.ensure(name, version, 64)
        assert await client.is_model_ready(name, str(version))
        await models.unload_idle()

        async def unloaded() -> bool:
            return not await client.is_model_ready(name, str(version))

        await eventually(unloaded, timeout=10, interval=0.1)
        # The service loaded it before; it finds it gone and loads it again.
        image = base64.b64encode(png(trained.new_images[1])).decode()
        found = await call(
            api, "POST", f"{trained.path}/inference/predict", json={"model": {"family": "detection"}, "image": image}
        )
        assert found["version"] == version
        assert await client.is_model_ready(name, str(version))
    finally:
        await models.close()
        await client.close()


async def test_predict_by_url_fetches_as_url_imports_do(
    api: aiohttp.ClientSession, trained: Trained, media_server: MediaServer, stack: Stack
) -> None:
    """A URL the stack may fetch from predicts as the same image's bytes do; a URL the fetcher refuses, or whose
    fetch fails, is a 422 at `$.url` that says why, and a request must name exactly one image."""
    predict = f"{trained.path}/inference/predict"
    model = {"family": "detection"}
    thresholds = {"confidence": 0.0, "max_detections": 5}  # every box the detector sees: a real comparison
    image = base64.b64encode(jpeg(7)).decode()
    by_bytes = await call(api, "POST", predict, json={"model": model, "image": image, "thresholds": thresholds})
    assert by_bytes["objects"] and (by_bytes["width"], by_bytes["height"]) == (64, 48)
    for url in (media_server.url("/img/7.jpg"), media_server.url("/img/7.jpg", public=True)):
        assert await call(api, "POST", predict, json={"model": model, "url": url, "thresholds": thresholds}) == by_bytes
    refused = [
        ("http://169.254.169.254/latest/meta-data/", "blocked_address", "169.254.169.254 is link-local"),
        (f"http://{stack.settings.s3_endpoint}/", "blocked_address", "is Loupe's own storage"),
        (media_server.url("/redirect?to=http://10.0.0.1/a.jpg"), "blocked_address", "10.0.0.1 is private"),
        (media_server.url("/img/none.jpg"), "http_error", "HTTP 404"),
        ("ftp://example.com/a.jpg", "bad_url", "not an http:// or https:// URL"),
    ]
    for url, code, words in refused:
        problem = await call(api, "POST", predict, 422, json={"model": model, "url": url})
        assert (problem["path"], problem["details"]["fetch_error"]) == ("$.url", code), (url, problem)
        assert words in problem["detail"], (url, problem)
    both = {"model": model, "url": media_server.url("/img/7.jpg"), "image": image}
    problem = await call(api, "POST", predict, 422, json=both)
    assert problem["path"] == "$" and "`image` and `url`" in problem["detail"]
    assert (await call(api, "POST", predict, 422, json={"model": model, "url": ""}))["path"] == "$.url"


async def test_a_tagger_goes_live_and_its_tags_join_the_detectors_boxes(
    api: aiohttp.ClientSession, trained: Trained
) -> None:
    run = await call(
        api,
        "POST",
        f"{trained.path}/training/runs",
        202,
        json={
            "family": "tagging",
            "model": "tagger",
            "config": {"epochs": 2, "batch_size": 16, "image_size": 64, "workers": 0},
            "pretrained": {"model": "detector", "version": 1},
        },
    )

    async def statuses() -> dict[str, str]:
        return {s["group"]: s["status"] for s in (await call(api, "GET", f"{trained.path}/tagging/status"))["items"]}

    async def training() -> bool:
        return set((await statuses()).values()) <= {"training", "live"}

    await eventually(training, timeout=30, interval=0.2)
    run = await finished(api, f"{trained.path}/training/runs/{run['id']}", 300)
    assert run["state"] == "SUCCEEDED", run
    assert await statuses() == {"weather": "live", "shape": "live", "colour": "live"}

    # One image: a tag per group, with its confidence.
    image = base64.b64encode(png(trained.new_images[3])).decode()
    found = await call(
        api,
        "POST",
        f"{trained.path}/inference/predict",
        json={"model": {"family": "tagging"}, "image": image, "thresholds": {"confidence": 0}},
    )
    assert [t["group"] for t in found["tags"]] == ["weather", "shape", "colour"]
    assert all(t["tag_id"] and 0 < t["confidence"] <= 1 for t in found["tags"])

    # Tagging samples the detector labelled: their boxes stay, the tags join them, and search finds them.
    boxes = await start(
        api,
        trained,
        {
            "kind": "autolabel",
            "model": {"family": "detection"},
            "selection": {"filter": {"dataset_ids": [trained.incoming]}, "limit": 20},
        },
    )
    assert (await job_done(api, trained, boxes))["state"] == "SUCCEEDED"
    tags = await start(
        api,
        trained,
        {
            "kind": "autolabel",
            "model": {"family": "tagging"},
            "selection": {"filter": {"dataset_ids": [trained.incoming]}, "limit": 20},
            "thresholds": {"confidence": 0},
        },
    )
    tags = await job_done(api, trained, tags)
    assert tags["state"] == "SUCCEEDED" and tags["written"] == tags["total"] > 0, tags
    result = (await all_results(api, trained, tags["id"]))[0]
    label = await call(api, "GET", f"{trained.path}/samples/{result['sample_id']}/labels/predictions")
    boxed = [r for r in await all_results(api, trained, boxes["id"]) if r["sample_id"] == result["sample_id"]][0]
    assert len(label["objects"]) == len(boxed["predictions"]["objects"])
    predicted = [t["tag_id"] for t in result["predictions"]["tags"]]
    assert sorted(label["tag_class_ids"]) == sorted(predicted) and len(predicted) == 3

    async def searchable() -> bool:
        count = await call(
            api,
            "POST",
            f"{trained.path}/samples/count",
            json={"dataset_ids": [trained.incoming], "labels": {"labelset": "predictions", "tags_all": [predicted[0]]}},
        )
        return count["count"] >= 1

    await eventually(searchable, timeout=10, interval=0.1)


async def test_two_versions_of_a_model_serve_side_by_side(api: aiohttp.ClientSession, trained: Trained) -> None:
    """The repository's config names the newest version; predicting with the first as well pins both."""
    run = await call(
        api,
        "POST",
        f"{trained.path}/training/runs",
        202,
        json={"family": "detection", "model": "detector", "config": {**DETECTOR, "epochs": 1}},
    )
    run = await finished(api, f"{trained.path}/training/runs/{run['id']}", 300)
    assert run["state"] == "SUCCEEDED", run
    image = base64.b64encode(png(trained.new_images[5])).decode()
    for version in (2, 1, 2):
        found = await call(
            api,
            "POST",
            f"{trained.path}/inference/predict",
            json={"model": {"family": "detection", "model": "detector", "version": version}, "image": image},
        )
        assert found["version"] == version
    active = await call(
        api, "POST", f"{trained.path}/inference/predict", json={"model": {"family": "detection"}, "image": image}
    )
    assert active["version"] == 1  # the first version stays active until another is activated
