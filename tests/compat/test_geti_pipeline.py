"""Geti Tune's flows as its REST document writes them, over plain HTTP (aiohttp) and NATS (nats-py) against the
local stack: a project with labels, its training configuration, a `train` job followed over Server-Sent Events
until done, a folder source and a NATS sink, the pipeline enabled with 200 frames in → 200 results out in
order and metrics that agree with the client, a captured frame in the dataset, a source exported and imported
as YAML, an export job, and bad input answered 4xx naming the field."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nats
import numpy as np
import pytest
import yaml

from loupe import synth
from loupe.stack import Stack
from tests.helpers import TINY_DETECTOR, eventually

pytestmark = pytest.mark.timeout(900)

FRAMES = 200


@dataclass(frozen=True)
class Project:
    id: str
    path: str  # /api/projects/<id>


async def geti(client: aiohttp.ClientSession, method: str, path: str, expect: int = 200, **request: Any) -> Any:
    """A Geti call that must answer `expect`: its JSON (Geti's error object for an error), None for 204."""
    async with client.request(method, path, **request) as response:
        assert response.status == expect, await response.text()
        if expect == 204:
            return None
        data = await response.json()
        if expect >= 400:
            assert data["http_status"] == expect and data["error_code"] and data["message"], data
        return data


async def events(client: aiohttp.ClientSession, path: str) -> AsyncIterator[tuple[str, dict]]:
    """The (event, data) pairs of a Server-Sent Events stream, until the server ends it."""
    async with client.get(path, timeout=aiohttp.ClientTimeout(total=600)) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        event, data = "message", ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif line == "" and data:
                yield event, json.loads(data)
                event, data = "message", ""


async def collected(client: aiohttp.ClientSession, path: str) -> list[tuple[str, dict]]:
    return [item async for item in events(client, path)]


@pytest.fixture(scope="module")
async def project(api: aiohttp.ClientSession, stack: Stack) -> Project:
    """A Geti detection project with the synthetic shapes' labels, and labelled images loaded natively."""
    task = {"task_type": "detection", "labels": [{"name": name} for name in ("circle", "square", "triangle")]}
    made = await geti(api, "POST", "/api/projects", 201, json={"name": f"geti io {uuid.uuid4().hex[:6]}", "task": task})
    await synth.load(
        synth.generate(48, size=64, seed=51), stack.gateway_url, stack.admin_key, project=made["id"], progress=False
    )
    return Project(made["id"], f"/api/projects/{made['id']}")


@pytest.fixture(scope="module")
async def trained(api: aiohttp.ClientSession, project: Project) -> dict:
    """The project's training configuration set, a `train` job followed over SSE (status and logs at once)."""
    await geti(api, "PATCH", f"{project.path}/training_configuration", 204, json=TINY_DETECTOR)
    assert (await geti(api, "GET", f"{project.path}/training_configuration"))["epochs"] == 1
    job = await geti(api, "POST", "/api/jobs", 201, json={"job_type": "train", "project_id": project.id})
    assert job["job_type"] == "train" and job["status"] in ("pending", "running")
    statuses, logs = await asyncio.gather(
        collected(api, f"/api/jobs/{job['id']}/status"), collected(api, f"/api/jobs/{job['id']}/logs")
    )
    seen = [data for event, data in statuses if event == "status"]
    assert seen[-1]["status"] == "done", seen[-1]
    assert seen[-1]["metadata"]["epoch"] == 1 and seen[-1]["metadata"]["model_id"]
    # Each epoch as the training service announced it (the run is still cutting its release when the stream opens).
    epochs = [data for event, data in statuses if event == "progress"]
    assert [(e["run_id"], e["epoch"], e["epochs"]) for e in epochs] == [(job["id"], 1, 1)], epochs
    lines = [data for event, data in logs if event == "log"]
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert any("epoch" in line["message"] for line in lines), lines
    return seen[-1]


async def test_a_train_job_is_listed_and_read_and_cancelling_a_finished_one_changes_nothing(
    api: aiohttp.ClientSession, project: Project, trained: dict
) -> None:
    listed = await geti(api, "GET", "/api/jobs", params={"project_id": project.id})
    assert trained["id"] in [job["id"] for job in listed["jobs"]]
    assert (await geti(api, "GET", f"/api/jobs/{trained['id']}"))["status"] == "done"
    await geti(api, "POST", f"/api/jobs/{trained['id']}:cancel", 204)
    assert (await geti(api, "GET", f"/api/jobs/{trained['id']}"))["status"] == "done"
    await geti(api, "GET", f"/api/jobs/{uuid.uuid4()}", 404)


def frames(count: int) -> list[bytes]:
    images = []
    for item in synth.generate(count, size=64, seed=52):
        buffer = io.BytesIO()
        item.image.save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


def put(folder: Path, name: str, data: bytes) -> None:
    """Written aside and renamed in, as a camera writing a folder would."""
    aside = folder / f".{name}"
    aside.write_bytes(data)
    aside.rename(folder / name)


async def test_a_folder_source_through_the_pipeline_to_a_nats_sink_with_metrics_capture_and_yaml(
    api: aiohttp.ClientSession, stack: Stack, project: Project, trained: dict
) -> None:
    folder = Path(stack.settings.pipeline_folders) / f"geti-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    subject = f"tests.geti.{uuid.uuid4().hex[:8]}"
    source = await geti(
        api,
        "POST",
        "/api/sources",
        201,
        json={"name": "cam", "source_type": "folder", "path": str(folder), "poll_s": 0.1},
    )
    assert source["source_type"] == "folder" and source["path"] == str(folder)
    sink = await geti(api, "POST", "/api/sinks", 201, json={"name": "bus", "sink_type": "nats", "subject": subject})
    assert source["id"] in [s["id"] for s in await geti(api, "GET", "/api/sources")]

    model_id = trained["metadata"]["model_id"]  # the version the train job made, as /models lists it
    assert model_id in [model["id"] for model in await geti(api, "GET", f"{project.path}/models")]
    chosen = {"source_id": source["id"], "sink_id": sink["id"], "model_id": model_id}
    pipeline = await geti(api, "PATCH", f"{project.path}/pipeline", json=chosen)
    assert {key: pipeline[key] for key in chosen} == chosen and pipeline["status"] == "idle"
    await geti(api, "POST", f"{project.path}/pipeline:enable")

    async def running() -> dict:
        current = await geti(api, "GET", f"{project.path}/pipeline")
        assert current["status"] == "running" and current["state"] == "running", current
        return current

    await eventually(running, timeout=120, interval=0.2)

    connection = await nats.connect(stack.settings.nats_url)
    received: list[tuple[float, dict]] = []

    async def keep(msg: Any) -> None:
        received.append((time.monotonic(), json.loads(msg.data)))

    images = frames(FRAMES)
    subscription = await connection.subscribe(subject, cb=keep)
    await connection.flush()  # the server has the subscription before the first frame can come out
    try:
        written: dict[str, float] = {}
        for i, data in enumerate(images):
            name = f"frame-{i:04}.png"
            put(folder, name, data)
            written[name] = time.monotonic()

        async def all_out() -> bool:
            assert len(received) >= FRAMES, f"{len(received)} of {FRAMES}"
            return True

        await eventually(all_out, timeout=180, interval=0.1)
        await asyncio.sleep(0.5)  # nothing more comes
    finally:
        await subscription.unsubscribe()
        await connection.close()

    results = [result for _, result in received]
    assert len(results) == FRAMES
    assert [r["name"] for r in results] == sorted(written)
    assert [r["frame"] for r in results] == list(range(1, FRAMES + 1))
    client_ms = [(at - written[r["name"]]) * 1000 for at, r in received]
    own_ms = np.array([r["latency_ms"] for r in results])

    metrics = await geti(api, "GET", f"{project.path}/pipeline/metrics")
    assert metrics["frames"] == FRAMES and metrics["dropped_frames"] == 0 and metrics["failed_frames"] == 0
    minute = metrics["windows"][0]
    assert minute["window"] == "1m" and minute["frames"] == FRAMES and minute["throughput_fps"] > 0
    # The pipeline's latency (queue → result) is what each result says; the client's clock adds the folder's
    # polls and the trip over NATS, so it is never less.
    for quantile, key in ((50, "p50_ms"), (95, "p95_ms")):
        measured = float(np.percentile(own_ms, quantile))
        assert abs(minute["latency"][key] - measured) <= max(5.0, 0.25 * measured), (minute, measured)
        assert float(np.percentile(client_ms, quantile)) + 1.0 >= minute["latency"][key]

    # Capture: the next frame goes into the project's dataset.
    before = (await geti(api, "GET", f"{project.path}/dataset/items"))["pagination"]["total"]
    await geti(api, "POST", f"{project.path}/pipeline:capture", 204)
    put(folder, "zz-captured.png", frames(1)[0])

    async def captured() -> bool:
        items = await geti(api, "GET", f"{project.path}/dataset/items", params={"limit": 5})
        assert items["pagination"]["total"] == before + 1, items["pagination"]
        assert items["items"][0]["name"] == "zz-captured.png", items["items"][0]
        return True

    await eventually(captured, timeout=60, interval=0.3)

    # A change of the saved source reaches the pipeline.
    await geti(api, "PATCH", f"/api/sources/{source['id']}", json={"poll_s": 0.2})
    current = await geti(api, "GET", f"{project.path}/pipeline")
    assert current["source"]["poll_s"] == 0.2 and current["source_id"] == source["id"]

    # The source as YAML, and back.
    async with api.post(f"/api/sources/{source['id']}:export") as response:
        assert response.status == 200 and "yaml" in response.content_type
        text = await response.text()
    assert yaml.safe_load(text) == {"name": "cam", "source_type": "folder", "path": str(folder), "poll_s": 0.2}
    imported = await geti(api, "POST", "/api/sources:import", 201, data=text.encode())
    assert imported["id"] != source["id"] and imported["path"] == str(folder) and imported["poll_s"] == 0.2
    async with api.post(f"/api/sinks/{sink['id']}:export") as response:
        sink_yaml = await response.text()
    assert yaml.safe_load(sink_yaml) == {"name": "bus", "sink_type": "nats", "subject": subject}

    disabled = await geti(api, "POST", f"{project.path}/pipeline:disable")
    assert disabled["status"] == "idle"
    await geti(api, "DELETE", f"/api/sources/{source['id']}", 409)  # the pipeline uses it
    await geti(api, "DELETE", f"/api/sources/{imported['id']}", 204)


async def test_an_export_job_runs_to_done_over_sse_and_import_jobs_say_what_to_use(
    api: aiohttp.ClientSession, project: Project
) -> None:
    job = await geti(api, "POST", "/api/jobs", 201, json={"job_type": "export_dataset", "project_id": project.id})
    statuses = await collected(api, f"/api/jobs/{job['id']}/status")
    last = statuses[-1][1]
    assert last["status"] == "done" and last["metadata"]["download_url"], last
    logs = [data["message"] for event, data in await collected(api, f"/api/jobs/{job['id']}/logs") if event == "log"]
    assert logs[-1] == "export succeeded"
    refused = await geti(
        api, "POST", "/api/jobs", 501, json={"job_type": "import_dataset_to_existing_project", "project_id": project.id}
    )
    assert "label-imports" in refused["message"] and refused["path"] == "$.job_type"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/sources", {"name": "x", "source_type": "folder", "path": "/etc"}, "$.path"),
        ("POST", "/api/sources", {"name": "x"}, "$.source_type"),
        ("POST", "/api/sources", {"source_type": "http"}, "$.name"),
        ("POST", "/api/sources", {"name": "x", "source_type": "camera"}, "$.source_type"),
        ("POST", "/api/sinks", {"name": "x", "sink_type": "nats", "subject": "loupe.evt.x"}, "$.subject"),
        ("POST", "/api/sinks", {"name": "x", "sink_type": "webhook", "url": "http://10.0.0.1/"}, "$.url"),
        ("POST", "/api/jobs", {"job_type": "bake", "project_id": str(uuid.uuid4())}, "$.job_type"),
        ("POST", "/api/jobs", {"job_type": "train"}, "$.project_id"),
        (
            "POST",
            "/api/jobs",
            {"job_type": "train", "project_id": "{project}", "parameters": {"config": {"epochs": 0}}},
            "$.parameters.config.epochs",
        ),
        ("PATCH", "/api/projects/{project}/pipeline", {"source_id": "nope"}, "$.source_id"),
        ("PATCH", "/api/projects/{project}/pipeline", {"model_id": str(uuid.uuid4())}, "$.model_id"),
    ],
)
async def test_bad_input_is_a_4xx_naming_the_field(
    api: aiohttp.ClientSession, project: Project, method: str, path: str, body: dict, field: str
) -> None:
    sent = json.loads(json.dumps(body).replace("{project}", project.id))
    async with api.request(method, path.replace("{project}", project.id), json=sent) as response:
        assert 400 <= response.status < 500, await response.text()
        error = await response.json()
    assert error["path"] == field, error


async def test_bad_yaml_is_refused(api: aiohttp.ClientSession) -> None:
    refused = await geti(api, "POST", "/api/sources:import", 400, data=b"name: [unclosed")
    assert refused["path"] == "$" and "YAML" in refused["message"]
    refused = await geti(api, "POST", "/api/sinks:import", 400, data=b"name: x\nsink_type: mqtt\n")
    assert refused["path"] == "$.topic", refused


async def test_a_train_job_cancelled_ends_its_status_stream_cancelled(
    api: aiohttp.ClientSession, project: Project, trained: dict
) -> None:
    long = {"job_type": "train", "project_id": project.id, "parameters": {"model": "long", "config": {"epochs": 200}}}
    job = await geti(api, "POST", "/api/jobs", 201, json=long)
    await geti(api, "POST", f"/api/jobs/{job['id']}:cancel", 204)
    statuses = [data for event, data in await collected(api, f"/api/jobs/{job['id']}/status") if event == "status"]
    assert statuses[-1]["status"] == "cancelled", statuses[-1]


async def test_a_project_without_a_pipeline_is_idle_and_its_first_pipeline_needs_a_source_and_a_sink(
    api: aiohttp.ClientSession,
) -> None:
    task = {"task_type": "detection", "labels": [{"name": "car"}]}
    made = await geti(
        api, "POST", "/api/projects", 201, json={"name": f"geti idle {uuid.uuid4().hex[:6]}", "task": task}
    )
    path = f"/api/projects/{made['id']}/pipeline"
    assert await geti(api, "GET", path) == {
        "project_id": made["id"],
        "status": "idle",
        "source_id": None,
        "sink_id": None,
        "model_id": None,
    }
    refused = await geti(api, "POST", f"{path}:enable", 409)
    assert "PATCH" in refused["message"]
    source = await geti(api, "POST", "/api/sources", 201, json={"name": "push", "source_type": "http"})
    refused = await geti(api, "PATCH", path, 400, json={"source_id": source["id"]})
    assert refused["path"] == "$.sink_id"
    await geti(api, "DELETE", f"/api/sources/{source['id']}", 204)
    await geti(api, "DELETE", f"/api/projects/{made['id']}", 204)


async def test_only_organisation_admins_change_sources_and_sinks(
    api: aiohttp.ClientSession, user_client: Callable[..., Awaitable[tuple[str, aiohttp.ClientSession]]]
) -> None:
    source = await geti(api, "POST", "/api/sources", 201, json={"name": "shared", "source_type": "http"})
    _, member = await user_client()
    assert (await geti(member, "GET", f"/api/sources/{source['id']}"))["name"] == "shared"
    refused = await geti(member, "PATCH", f"/api/sources/{source['id']}", 403, json={"name": "mine"})
    assert "admin" in refused["message"]
    await geti(member, "POST", "/api/sinks", 403, json={"name": "x", "sink_type": "nats", "subject": "a.b"})
    await geti(api, "DELETE", f"/api/sources/{source['id']}", 204)
