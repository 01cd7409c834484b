"""Live pipelines on the real stack, through Triton: frames pushed over HTTP, published on NATS, dropped
into a folder or put under an S3 prefix go through a small detector to NATS, folder, webhook and MQTT sinks;
an S3 source's secret is kept sealed and never answered; a full queue drops and
counts; disabling stops a pipeline and an enabled one runs again after its service restarts; metrics in the
API and in Prometheus; source and sinks as YAML; capture puts the next frame into a dataset."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aiomqtt
import asyncpg
import av
import pytest
import yaml
from PIL import Image

from loupe import synth
from loupe.stack import Stack
from shared.bus import Bus
from tests.external_s3 import ExternalS3
from tests.helpers import call, eventually, finished
from tests.media_server import MediaServer

pytestmark = pytest.mark.timeout(600)

# Any detector serves: the tests check frames flow, not how good the boxes are.
DETECTOR = {"epochs": 1, "batch_size": 16, "image_size": 64, "learning_rate": 5e-3, "workers": 0}


@dataclass(frozen=True)
class Trained:
    path: str  # /v1/projects/<id>
    project_id: str
    images: list[bytes]  # PNGs the detector never saw


@pytest.fixture(scope="module")
async def trained(stack: Stack, api: aiohttp.ClientSession) -> Trained:
    return await train_detector(stack, api, "pipeline tests")


async def train_detector(stack: Stack, api: aiohttp.ClientSession, name: str) -> Trained:
    loaded = await synth.load(
        synth.generate(64, size=64, seed=31), stack.gateway_url, stack.admin_key, name=name, progress=False
    )
    path = f"/v1/projects/{loaded.project_id}"
    run = await call(
        api, "POST", f"{path}/training/runs", 202, json={"family": "detection", "model": "detector", "config": DETECTOR}
    )
    run = await finished(api, f"{path}/training/runs/{run['id']}", 400)
    assert run["state"] == "SUCCEEDED", run
    return Trained(path, loaded.project_id, [png(image.image) for image in synth.generate(20, size=64, seed=32)])


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def folders(stack: Stack) -> Path:
    return Path(stack.settings.pipeline_folders)


async def create(
    api: aiohttp.ClientSession, trained: Trained, source: dict, sinks: list[dict], **extra: object
) -> dict:
    body = {"name": f"p-{uuid.uuid4().hex[:6]}", "model": {"family": "detection"}, "source": source, "sinks": sinks}
    return await call(api, "POST", f"{trained.path}/pipelines", 201, json={**body, "enabled": True, **extra})


async def running(api: aiohttp.ClientSession, trained: Trained, pipeline: dict, timeout: float = 120) -> dict:
    async def started() -> dict:
        current = await call(api, "GET", f"{trained.path}/pipelines/{pipeline['id']}")
        assert current["state"] == "running", current
        return current

    return await eventually(started, timeout=timeout, interval=0.2)


async def push(api: aiohttp.ClientSession, trained: Trained, pipeline: dict, image: bytes, name: str) -> bool:
    frame = {"image": base64.b64encode(image).decode(), "name": name}
    answer = await call(api, "POST", f"{trained.path}/pipelines/{pipeline['id']}/frames", 202, json=frame)
    return bool(answer["accepted"])


@contextlib.asynccontextmanager
async def collected(bus: Bus, subject: str) -> AsyncIterator[list[dict]]:
    """Every message published on `subject` meanwhile, decoded."""
    received: list[dict] = []

    async def keep(msg: object) -> None:
        received.append(json.loads(msg.data))  # type: ignore[attr-defined]

    subscription = await bus.nc.subscribe(subject, cb=keep)
    try:
        yield received
    finally:
        await subscription.unsubscribe()


async def count_of(received: list, expected: int, timeout: float = 60) -> None:
    async def enough() -> bool:
        assert len(received) >= expected, f"{len(received)} of {expected}"
        return True

    await eventually(enough, timeout=timeout, interval=0.05)


async def test_frames_pushed_over_http_come_out_on_nats_in_order_with_metrics(
    api: aiohttp.ClientSession, bus: Bus, stack: Stack, trained: Trained
) -> None:
    subject = f"tests.pipelines.{uuid.uuid4().hex[:8]}"
    async with collected(bus, subject) as received:
        pipeline = await create(api, trained, {"kind": "http"}, [{"kind": "nats", "subject": subject}])
        await running(api, trained, pipeline)
        for i, image in enumerate(trained.images[:10]):
            assert await push(api, trained, pipeline, image, f"frame-{i}")
        await count_of(received, 10)
    assert [r["name"] for r in received] == [f"frame-{i}" for i in range(10)]
    assert [r["frame"] for r in received] == list(range(1, 11))
    first = received[0]
    assert first["pipeline_id"] == pipeline["id"] and first["predictions"]["model"] == "detector"
    assert first["predictions"]["width"] == 64 and first["latency_ms"] > 0

    metrics = await call(api, "GET", f"{trained.path}/pipelines/{pipeline['id']}/metrics")
    assert metrics["frames"] == 10 and metrics["dropped"] == 0 and metrics["state"] == "running"
    assert [w["window"] for w in metrics["windows"]] == ["1m", "5m", "15m"]
    minute = metrics["windows"][0]
    assert minute["frames"] == 10 and minute["frames_per_s"] > 0
    assert 0 < minute["latency_p50_ms"] <= minute["latency_p95_ms"]

    async with aiohttp.ClientSession() as plain, plain.get(f"http://127.0.0.1:{stack.ports.inference}/metrics") as r:
        exported = await r.text()
    assert f'loupe_pipeline_frames_total{{outcome="frames",pipeline="{pipeline["id"]}"}} 10.0' in exported
    assert f'loupe_pipeline_latency_seconds_count{{pipeline="{pipeline["id"]}"}} 10.0' in exported
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)


async def test_a_watched_folder_goes_to_a_folder_with_overlays_and_to_a_webhook(
    api: aiohttp.ClientSession, stack: Stack, trained: Trained, media_server: MediaServer
) -> None:
    name = uuid.uuid4().hex[:8]
    incoming, results = folders(stack) / f"in-{name}", folders(stack) / f"out-{name}"
    incoming.mkdir()
    (incoming / "a-first.png").write_bytes(trained.images[0])  # there before the pipeline: a frame too
    pipeline = await create(
        api,
        trained,
        {"kind": "folder", "path": str(incoming), "poll_s": 0.2},
        [
            {"kind": "folder", "path": str(results), "overlay": True},
            {"kind": "webhook", "url": media_server.url(f"/hooks/{name}")},
        ],
    )
    await running(api, trained, pipeline)
    for i, image in enumerate(trained.images[1:5], start=1):
        (incoming / f"b-{i}.png").write_bytes(image)
    (incoming / "notes.txt").write_text("not an image: ignored")

    async def all_written() -> list[str]:
        written = sorted(p.name for p in results.glob("*.json")) if results.exists() else []
        assert len(written) == 5, written
        return written

    written = await eventually(all_written, timeout=60, interval=0.1)
    assert written == [f"{i:08d}.json" for i in range(1, 6)]
    first = json.loads((results / "00000001.json").read_text())
    assert first["name"] == "a-first.png" and first["predictions"]["family"] == "detection"
    with Image.open(results / "00000001.png") as drawn:
        assert drawn.size == (64, 64)
    await count_of(media_server.hooks.setdefault(name, []), 5)
    assert [json.loads(body)["name"] for body in media_server.hooks[name]] == ["a-first.png"] + [
        f"b-{i}.png" for i in range(1, 5)
    ]
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)


async def put_objects(external_s3: ExternalS3, bucket: str, objects: dict[str, bytes]) -> None:
    client = external_s3.client()

    def put() -> None:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        for key, data in objects.items():
            client.put_object(bucket, key, io.BytesIO(data), len(data))

    await asyncio.to_thread(put)


async def test_objects_under_an_s3_prefix_go_through_in_key_order_and_the_secret_stays_sealed(
    api: aiohttp.ClientSession, bus: Bus, stack: Stack, trained: Trained, external_s3: ExternalS3
) -> None:
    bucket, subject = f"pipes-{uuid.uuid4().hex[:8]}", f"tests.pipelines.{uuid.uuid4().hex[:8]}"
    images = trained.images
    await put_objects(
        external_s3,
        bucket,
        {
            "cams/0002.png": images[2],
            "cams/0001.png": images[1],
            "cams/0002-notes.txt": b"not an image",
            "other/0.png": images[0],
        },
    )
    source = {
        "kind": "s3",
        "endpoint": external_s3.endpoint,
        "bucket": bucket,
        "prefix": "cams/",
        "secure": False,
        "access_key": external_s3.access_key,
        "secret_key": external_s3.secret_key,
        "poll_s": 0.2,
    }
    async with collected(bus, subject) as received:
        pipeline = await create(api, trained, source, [{"kind": "nats", "subject": subject}])
        await count_of(received, 2)
        await put_objects(external_s3, bucket, {"cams/0004.png": images[4], "cams/0003.png": images[3]})
        await count_of(received, 4)
        await asyncio.sleep(1)
    assert [r["name"] for r in received] == [f"cams/000{i}.png" for i in range(1, 5)]

    # The secret is never answered, nor stored in the clear.
    path = f"{trained.path}/pipelines/{pipeline['id']}"
    exported = await call(api, "GET", f"{path}/config")
    answers = [pipeline, await call(api, "GET", path), await call(api, "GET", f"{trained.path}/pipelines"), exported]
    assert all(external_s3.secret_key not in json.dumps(answer) for answer in answers)
    assert pipeline["source"] == {**source, "secret_key": "", "region": ""}
    db = await asyncpg.connect(stack.settings.database_url)
    try:
        stored = await db.fetchrow(
            "SELECT source::text, credentials FROM inference.pipelines WHERE id = $1", uuid.UUID(pipeline["id"])
        )
    finally:
        await db.close()
    assert stored["credentials"] and external_s3.secret_key not in stored["credentials"] + stored["source"]

    # An exported config imports back as it is, keeping the sealed keys; a new access key needs its secret.
    await call(api, "PUT", f"{path}/config", json=exported)
    await running(api, trained, pipeline)
    other_key = {"source": {**source, "access_key": "someone-else", "secret_key": ""}}
    refused = await call(api, "PATCH", path, 422, json=other_key)
    assert refused["path"] == "$.source.secret_key", refused
    # Loupe's own storage is never a source, even where LOUPE_FETCH_ALLOW lets imports reach it.
    own = {"source": {**source, "endpoint": stack.settings.s3_endpoint}}
    refused = await call(api, "PATCH", path, 422, json=own)
    assert refused["path"] == "$.source.endpoint", refused
    await call(api, "DELETE", path, 204)


def write_video(path: Path, images: list[Image.Image]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = images[0].size
        stream.pix_fmt = "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())


async def test_every_strideth_frame_of_a_video_goes_through_in_order(
    api: aiohttp.ClientSession, bus: Bus, stack: Stack, trained: Trained
) -> None:
    video = folders(stack) / f"clip-{uuid.uuid4().hex[:8]}.mp4"
    write_video(video, [Image.open(io.BytesIO(trained.images[i % 20])).convert("RGB") for i in range(30)])
    subject = f"tests.pipelines.{uuid.uuid4().hex[:8]}"
    async with collected(bus, subject) as received:
        pipeline = await create(
            api, trained, {"kind": "video", "path": str(video), "stride": 3}, [{"kind": "nats", "subject": subject}]
        )
        await count_of(received, 10)
        await asyncio.sleep(0.5)
    assert [r["name"] for r in received] == [f"{video.name}#{i}" for i in range(0, 30, 3)]
    assert all(r["predictions"]["width"] == 64 for r in received)
    missing = await call(
        api,
        "PATCH",
        f"{trained.path}/pipelines/{pipeline['id']}",
        422,
        json={"source": {"kind": "video", "path": str(video) + ".gone"}},
    )
    assert missing["path"] == "$.source.path", missing
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)


async def test_a_full_queue_drops_frames_and_counts_them(
    api: aiohttp.ClientSession, bus: Bus, trained: Trained
) -> None:
    subject = f"tests.pipelines.{uuid.uuid4().hex[:8]}"
    async with collected(bus, subject) as received:
        pipeline = await create(api, trained, {"kind": "http"}, [{"kind": "nats", "subject": subject}], queue_size=1)
        await running(api, trained, pipeline)
        pushed = 60
        accepted = await asyncio.gather(
            *(push(api, trained, pipeline, trained.images[i % 20], f"f{i}") for i in range(pushed))
        )
        assert not all(accepted), "a queue of one took every one of 60 concurrent frames"
        await count_of(received, sum(accepted))
        await asyncio.sleep(0.5)
    assert len(received) == sum(accepted)
    metrics = await call(api, "GET", f"{trained.path}/pipelines/{pipeline['id']}/metrics")
    assert metrics["dropped"] == pushed - sum(accepted) == metrics["windows"][0]["dropped"]
    assert metrics["frames"] == sum(accepted)
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)


async def test_disabling_stops_a_pipeline_and_a_restart_of_its_service_resumes_it(
    api: aiohttp.ClientSession, bus: Bus, stack: Stack, trained: Trained
) -> None:
    source, sink = (f"tests.pipelines.{uuid.uuid4().hex[:8]}" for _ in range(2))
    async with collected(bus, sink) as received:
        pipeline = await create(api, trained, {"kind": "nats", "subject": source}, [{"kind": "nats", "subject": sink}])
        await running(api, trained, pipeline)
        await bus.nc.publish(source, trained.images[0])
        await count_of(received, 1)

        disabled = await call(api, "POST", f"{trained.path}/pipelines/{pipeline['id']}/disable")
        assert disabled["enabled"] is False and disabled["state"] == "disabled"
        await bus.nc.publish(source, trained.images[1])
        await asyncio.sleep(2)
        assert len(received) == 1

        await call(api, "POST", f"{trained.path}/pipelines/{pipeline['id']}/enable")
        await running(api, trained, pipeline)
        await asyncio.to_thread(stack.stop_service, "inference")
        await asyncio.to_thread(stack.start_service, "inference")
        await running(api, trained, pipeline)
        await bus.nc.publish(source, trained.images[2])
        await count_of(received, 2)
    assert received[-1]["frame"] == 1  # counted from its restart
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)


async def test_source_and_sinks_export_and_import_as_yaml(
    api: aiohttp.ClientSession, stack: Stack, trained: Trained
) -> None:
    incoming = folders(stack) / f"yaml-{uuid.uuid4().hex[:8]}"
    incoming.mkdir()
    pipeline = await create(
        api,
        trained,
        {"kind": "folder", "path": str(incoming)},
        [{"kind": "nats", "subject": "tests.yaml.a"}],
        enabled=False,
    )
    exported = await call(api, "GET", f"{trained.path}/pipelines/{pipeline['id']}/config")
    config = yaml.safe_load(exported["yaml"])
    assert config == {
        "source": {"kind": "folder", "path": str(incoming), "poll_s": 1.0},
        "sinks": [{"kind": "nats", "subject": "tests.yaml.a"}],
    }
    config["sinks"].append({"kind": "nats", "subject": "tests.yaml.b"})
    imported = await call(
        api, "PUT", f"{trained.path}/pipelines/{pipeline['id']}/config", json={"yaml": yaml.safe_dump(config)}
    )
    assert imported["source"] == config["source"] and imported["sinks"] == config["sinks"]
    again = await call(api, "GET", f"{trained.path}/pipelines/{pipeline['id']}/config")
    assert yaml.safe_load(again["yaml"]) == config

    for text, detail in (("source: [", "not YAML"), ("source: {kind: ftp}\nsinks: []", "not a pipeline config")):
        refused = await call(api, "PUT", f"{trained.path}/pipelines/{pipeline['id']}/config", 422, json={"yaml": text})
        assert detail in refused["detail"] and refused["path"] == "$.yaml", refused
    outside = yaml.safe_dump({"source": {"kind": "folder", "path": "/etc"}, "sinks": config["sinks"]})
    refused = await call(api, "PUT", f"{trained.path}/pipelines/{pipeline['id']}/config", 422, json={"yaml": outside})
    assert refused["path"] == "$.yaml.source.path", refused
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)


async def test_capture_puts_the_next_frame_into_a_dataset(api: aiohttp.ClientSession, trained: Trained) -> None:
    dataset = await call(
        api, "POST", f"{trained.path}/datasets", 201, json={"name": f"captured {uuid.uuid4().hex[:6]}"}
    )
    pipeline = await create(api, trained, {"kind": "http"}, [{"kind": "nats", "subject": "tests.capture"}])
    await running(api, trained, pipeline)
    asked = await call(
        api, "POST", f"{trained.path}/pipelines/{pipeline['id']}/capture", json={"dataset_id": dataset["id"]}
    )
    assert asked["capture_dataset_id"] == dataset["id"]
    await push(api, trained, pipeline, trained.images[3], "captured.png")
    await push(api, trained, pipeline, trained.images[4], "not-captured.png")

    async def samples() -> list[dict]:
        found = await call(api, "POST", f"{trained.path}/samples/search", json={"dataset_ids": [dataset["id"]]})
        assert found["items"], found
        return found["items"]

    [sample] = await eventually(samples, timeout=60, interval=0.2)
    assert sample["name"] == "captured.png"
    current = await call(api, "GET", f"{trained.path}/pipelines/{pipeline['id']}")
    assert current["capture_dataset_id"] is None
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)


async def test_deleting_its_project_stops_and_forgets_a_pipeline(
    api: aiohttp.ClientSession, bus: Bus, stack: Stack
) -> None:
    doomed = await train_detector(stack, api, f"doomed {uuid.uuid4().hex[:6]}")
    source, sink = (f"tests.pipelines.{uuid.uuid4().hex[:8]}" for _ in range(2))
    async with collected(bus, sink) as received:
        pipeline = await create(api, doomed, {"kind": "nats", "subject": source}, [{"kind": "nats", "subject": sink}])
        await running(api, doomed, pipeline)
        await call(api, "DELETE", doomed.path, 204)

        async def stopped() -> bool:
            await bus.nc.publish(source, doomed.images[0])
            await asyncio.sleep(0.5)
            count = len(received)
            await bus.nc.publish(source, doomed.images[0])
            await asyncio.sleep(1.5)
            assert len(received) == count, "the pipeline still runs"
            return True

        await eventually(stopped, timeout=60, interval=0.1)


@pytest.fixture
def mosquitto(stack: Stack, tmp_path: Path) -> Iterator[int]:
    """A real MQTT broker (Debian's mosquitto) on the port the stack's LOUPE_PIPELINE_MQTT_URL names."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("mosquitto is not installed: apt-get install -y mosquitto (see README)")
    port = int(stack.settings.pipeline_mqtt_url.rsplit(":", 1)[1])
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or broker.poll() is not None:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        broker.terminate()
        broker.wait(10)


async def test_an_mqtt_sink_publishes_to_the_servers_broker(
    api: aiohttp.ClientSession, trained: Trained, mosquitto: int
) -> None:
    topic = f"loupe/tests/{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client("127.0.0.1", mosquitto) as client:
        await client.subscribe(topic)
        pipeline = await create(api, trained, {"kind": "http"}, [{"kind": "mqtt", "topic": topic}])
        await running(api, trained, pipeline)
        for i in range(3):
            await push(api, trained, pipeline, trained.images[i], f"m{i}")
        names = []
        async with asyncio.timeout(60):
            async for message in client.messages:
                names.append(json.loads(message.payload)["name"])  # type: ignore[arg-type]
                if len(names) == 3:
                    break
    assert names == ["m0", "m1", "m2"]
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)


async def test_bad_pipelines_are_refused_with_the_field(
    api: aiohttp.ClientSession, trained: Trained, user_client: object
) -> None:
    base = {"name": "bad", "model": {"family": "detection"}, "source": {"kind": "http"}}
    cases = [
        ({**base, "sinks": [{"kind": "folder", "path": "/tmp/elsewhere"}]}, "$.sinks[0].path"),
        ({**base, "sinks": [{"kind": "webhook", "url": "http://127.0.0.1:1/hook"}]}, "$.sinks[0].url"),
        ({**base, "sinks": [{"kind": "webhook", "url": "ftp://example.com/x"}]}, "$.sinks[0].url"),
        (
            {**base, "source": {"kind": "folder", "path": "/etc"}, "sinks": [{"kind": "nats", "subject": "a"}]},
            "$.source.path",
        ),
        ({**base, "model": {"family": "tagging"}, "sinks": [{"kind": "nats", "subject": "a"}]}, "$.model"),
    ]
    for body, path in cases:
        refused = await call(api, "POST", f"{trained.path}/pipelines", 422 if path != "$.model" else 409, json=body)
        assert refused["path"] == path, refused
    missing = await call(api, "POST", f"{trained.path}/pipelines", 422, json={**base, "sinks": []})
    assert missing["path"] == "$.sinks", missing
    for subject in ("loupe.evt.catalog.project.deleted", "_INBOX.x", "cams.>"):  # Loupe's own, replies, wildcards
        body = {**base, "sinks": [{"kind": "nats", "subject": subject}]}
        refused = await call(api, "POST", f"{trained.path}/pipelines", 422, json=body)
        assert refused["path"] == "$.sinks[0].subject", refused

    pipeline = await create(api, trained, {"kind": "http"}, [{"kind": "nats", "subject": "a"}], enabled=False)
    renamed = await call(
        api, "PATCH", f"{trained.path}/pipelines/{pipeline['id']}", json={"name": "renamed", "queue_size": 5}
    )
    assert (renamed["name"], renamed["queue_size"], renamed["sinks"]) == ("renamed", 5, pipeline["sinks"])
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)

    pipeline = await create(api, trained, {"kind": "http"}, [{"kind": "nats", "subject": "a"}], enabled=False)
    not_running = await call(
        api, "POST", f"{trained.path}/pipelines/{pipeline['id']}/frames", 409, json={"image": "aGk="}
    )
    assert "enable it" in not_running["detail"]
    _, viewer = await user_client(trained.project_id, "viewer")  # type: ignore[operator]
    assert (await call(viewer, "GET", f"{trained.path}/pipelines"))["items"]
    await call(viewer, "POST", f"{trained.path}/pipelines/{pipeline['id']}/enable", 403)
    await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)
