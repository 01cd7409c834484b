"""Pipelines at work in this process: each running pipeline has a bounded queue its source fills, one worker
that sends what is queued through Triton in batches, in order, and its sinks. Metrics are kept per pipeline
over the last 15 minutes and exported to Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import numpy as np
import urllib3
from minio import Minio
from minio.error import MinioException
from PIL import Image, ImageDraw
from prometheus_client import Counter, Gauge, Histogram

from proto import subjects
from proto.annotation import BoxShape
from proto.inference import ModelChoice, Thresholds
from proto.ingest import CompleteUpload, CompleteUploadRequest, CreateUpload, CreateUploadRequest, UploadFile
from proto.pipelines import (
    FolderSink,
    FolderSource,
    FrameResult,
    MqttSink,
    NatsSink,
    NatsSource,
    PipelineState,
    S3Source,
    Sink,
    Source,
    VideoSource,
    WebhookSink,
    Window,
    WindowMetrics,
)
from proto.schema import GetSchema
from services.inference import shapes
from services.inference.state import DECODER, TRITON
from services.inference.versions import ServedVersion, resolve
from shared import credentials, fetch, object_keys
from shared.callers import service_caller
from shared.predictions import decode
from shared.service import Runtime
from shared.storage import read_object

if TYPE_CHECKING:
    # Imported where a video source or an MQTT sink first needs them: PyAV with its FFmpeg libraries is
    # ~15 MB resident, which an inference service running no video pipeline should not hold.
    import aiomqtt
    import av

log = logging.getLogger(__name__)

FRAMES = Counter("loupe_pipeline_frames_total", "Pipeline frames, by outcome", ["pipeline", "outcome"])
LATENCY = Histogram(
    "loupe_pipeline_latency_seconds",
    "From a frame entering its pipeline's queue to its result",
    ["pipeline"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUED = Gauge("loupe_pipeline_queued_frames", "Frames waiting in a pipeline's queue", ["pipeline"])
SINK_FAILURES = Counter("loupe_pipeline_sink_failures_total", "Deliveries a sink could not make", ["pipeline", "sink"])

WINDOWS: tuple[tuple[Window, float], ...] = (("1m", 60.0), ("5m", 300.0), ("15m", 900.0))
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
# A sink is awaited before the next frame: a broker that does not answer must not hold the pipeline long.
MQTT_TIMEOUT_S = 10.0
# Events kept for the 15-minute windows; beyond this many the oldest go (≈ 550 frames a second).
MAX_EVENTS = 500_000
# Keys an s3 source lists at most per poll; the rest come at the next.
S3_PAGE = 1000


@dataclass
class Spec:
    """What a pipeline is, as stored."""

    pipeline_id: str
    project_id: str
    org_id: str
    model: ModelChoice
    source: Source
    sinks: list[Sink]
    thresholds: Thresholds
    queue_size: int
    capture_dataset_id: str | None
    credentials: str | None  # an s3 source's keys, sealed


@dataclass(frozen=True)
class Incoming:
    data: bytes
    name: str | None
    queued_at: float  # monotonic
    received_at: datetime


def incoming(data: bytes, name: str | None) -> Incoming:
    return Incoming(data, name, time.monotonic(), datetime.now(UTC))


@dataclass
class Stats:
    """Counts since start, and (time, outcome, latency) events for the windows."""

    frames: int = 0
    dropped: int = 0
    failed: int = 0
    sink_failures: int = 0
    events: deque[tuple[float, str, float]] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))

    def record(self, outcome: str, latency_s: float = 0.0) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.events.append((time.monotonic(), outcome, latency_s))

    def windows(self) -> list[WindowMetrics]:
        now = time.monotonic()
        while self.events and self.events[0][0] < now - WINDOWS[-1][1]:
            self.events.popleft()
        return [self._window(name, seconds, now) for name, seconds in WINDOWS]

    def _window(self, name: Window, seconds: float, now: float) -> WindowMetrics:
        inside = [(outcome, latency) for at, outcome, latency in self.events if at >= now - seconds]
        latencies = np.array([latency for outcome, latency in inside if outcome == "frames"]) * 1000.0
        counts = {outcome: sum(1 for o, _ in inside if o == outcome) for outcome in ("frames", "dropped", "failed")}
        # Throughput over the part of the window the pipeline has been seeing frames, not the whole window.
        span = min(seconds, now - self.events[0][0]) if self.events else seconds
        return WindowMetrics(
            window=name,
            frames=counts["frames"],
            dropped=counts["dropped"],
            failed=counts["failed"],
            frames_per_s=round(counts["frames"] / max(span, 1.0), 3),
            latency_p50_ms=round(float(np.percentile(latencies, 50)), 2) if len(latencies) else None,
            latency_p95_ms=round(float(np.percentile(latencies, 95)), 2) if len(latencies) else None,
        )


def folder_roots(rt: Runtime) -> list[Path]:
    return [Path(root).resolve() for root in rt.settings.pipeline_folders.split(",") if root.strip()]


def inside_roots(rt: Runtime, path: str) -> Path | None:
    """`path` resolved, if it lies under one of the server's pipeline folders."""
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):  # a NUL byte, a loop of links: no folder of ours either way
        return None
    if any(resolved.is_relative_to(root) for root in folder_roots(rt)):
        return resolved
    return None


# -- sinks ------------------------------------------------------------------------------------------


class Deliver(Protocol):
    async def __call__(self, result: FrameResult, payload: bytes, image: bytes) -> None: ...


def overlay(image: bytes, result: FrameResult) -> bytes:
    """The frame with its predicted boxes drawn, as PNG."""
    with Image.open(io.BytesIO(image)) as opened:
        picture = opened.convert("RGB")
    draw = ImageDraw.Draw(picture)
    for obj in result.predictions.objects:
        if isinstance(obj.shape, BoxShape):
            draw.rectangle(obj.shape.box, outline=(255, 0, 0), width=2)
            draw.text((obj.shape.box[0] + 2, obj.shape.box[1] + 1), obj.class_name, fill=(255, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def write_folder(sink: FolderSink, folder: Path, result: FrameResult, payload: bytes, image: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{result.frame:08d}"
    # Written aside and renamed, so a reader of the folder never sees half a file.
    partial = folder / f".{stem}.json"
    partial.write_bytes(payload)
    partial.rename(folder / f"{stem}.json")
    if sink.overlay:
        drawn = folder / f".{stem}.png"
        drawn.write_bytes(overlay(image, result))
        drawn.rename(folder / f"{stem}.png")


class Mqtt:
    """One connection to the server's broker, made on first use and again after it fails."""

    def __init__(self, sink: MqttSink, broker: str) -> None:
        self.sink = sink
        self.broker = broker
        self.client: aiomqtt.Client | None = None

    async def __call__(self, result: FrameResult, payload: bytes, image: bytes) -> None:
        if self.client is None:
            import aiomqtt

            host, _, port = self.broker.removeprefix("mqtt://").partition(":")
            client = aiomqtt.Client(host, int(port or 1883), timeout=MQTT_TIMEOUT_S)
            await client.__aenter__()
            self.client = client
        try:
            await self.client.publish(self.sink.topic, payload, qos=self.sink.qos)
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)


def deliverer(rt: Runtime, sink: Sink) -> Deliver:
    if isinstance(sink, NatsSink):

        async def to_nats(result: FrameResult, payload: bytes, image: bytes) -> None:
            await rt.nats.nc.publish(sink.subject, payload)

        return to_nats
    if isinstance(sink, FolderSink):
        folder = Path(sink.path).resolve()

        async def to_folder(result: FrameResult, payload: bytes, image: bytes) -> None:
            await asyncio.to_thread(write_folder, sink, folder, result, payload, image)

        return to_folder
    if isinstance(sink, WebhookSink):

        async def to_webhook(result: FrameResult, payload: bytes, image: bytes) -> None:
            await fetch.post(rt, sink.url, payload)

        return to_webhook
    return Mqtt(sink, rt.settings.pipeline_mqtt_url)


# -- a running pipeline -----------------------------------------------------------------------------


class Running:
    def __init__(self, rt: Runtime, spec: Spec, on_captured: Callable[[str], Any]) -> None:
        self.rt = rt
        self.spec = spec
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue(spec.queue_size)
        self.stats = Stats()
        self.state: PipelineState = "starting"
        self.error: str | None = None
        self.serving: str | None = None
        self.capture = spec.capture_dataset_id
        self.on_captured = on_captured
        self.frame = 0
        self.sinks = [(type(sink).__struct_config__.tag, deliverer(rt, sink)) for sink in spec.sinks]
        self.tasks: list[asyncio.Task[None]] = []
        self.subscription: Any = None
        self.caller = service_caller("inference", spec.org_id)

    def start(self) -> None:
        self.tasks.append(asyncio.create_task(self._run()))

    async def stop(self) -> None:
        if self.subscription is not None:
            with contextlib.suppress(Exception):
                await self.subscription.unsubscribe()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _, deliver in self.sinks:
            if isinstance(deliver, Mqtt):
                await deliver.close()
        with contextlib.suppress(KeyError):
            QUEUED.remove(self.spec.pipeline_id)

    def offer(self, data: bytes, name: str | None) -> bool:
        """A pushed frame, queued if there is room; else dropped and counted."""
        try:
            self.queue.put_nowait(incoming(data, name))
        except asyncio.QueueFull:
            self.stats.record("dropped")
            FRAMES.labels(self.spec.pipeline_id, "dropped").inc()
            return False
        QUEUED.labels(self.spec.pipeline_id).set(self.queue.qsize())
        return True

    async def _run(self) -> None:
        try:
            bucket = self._bucket_client()
            served = await resolve(self.rt, self.spec.project_id, self.spec.model, self.caller)
            await self.rt.state[TRITON].ensure(served.triton_model, served.version, served.image_size)
            schema = await self.rt.nats.request(
                subjects.GET_LABEL_SCHEMA, GetSchema(project_id=self.spec.project_id), caller=self.caller
            )
        except Exception as error:  # shown as the pipeline's error; enabling it again retries
            self.state, self.error = "failed", str(error)
            log.warning("pipeline failed to start", extra={"pipeline": self.spec.pipeline_id, "error": str(error)})
            return
        self.serving = served.space
        source = self.spec.source
        if isinstance(source, NatsSource):

            async def received(msg: Any) -> None:
                self.offer(msg.data, msg.subject)

            self.subscription = await self.rt.nats.nc.subscribe(source.subject, cb=received)
        elif isinstance(source, FolderSource):
            self.tasks.append(asyncio.create_task(self._watch(source)))
        elif isinstance(source, VideoSource):
            self.tasks.append(asyncio.create_task(self._play(source)))
        elif isinstance(source, S3Source) and bucket is not None:
            self.tasks.append(asyncio.create_task(self._poll_bucket(source, bucket)))
        self.state = "running"
        await self._work(served, shapes.Vocabulary.of(schema))

    async def _watch(self, source: FolderSource) -> None:
        """Files in name order, each once; a file is taken when its size stopped changing between two polls
        (a writer may still be writing it)."""
        folder = Path(source.path)  # resolved and checked when the pipeline was made
        seen: set[str] = set()
        sizes: dict[str, int] = {}
        while True:
            for path in await asyncio.to_thread(listing, folder):
                name = path.name
                if name in seen:
                    continue
                size = (await asyncio.to_thread(path.stat)).st_size
                if sizes.get(name) != size:
                    sizes[name] = size
                    continue
                seen.add(name)
                sizes.pop(name, None)
                data = await asyncio.to_thread(path.read_bytes)
                await self.queue.put(incoming(data, name))
                QUEUED.labels(self.spec.pipeline_id).set(self.queue.qsize())
            await asyncio.sleep(source.poll_s)

    def _bucket_client(self) -> Minio | None:
        """An s3 source's client, through the address guard of bucket imports; None for other sources."""
        source = self.spec.source
        if not isinstance(source, S3Source):
            return None
        if self.spec.credentials is None:
            raise ValueError("the s3 source has no stored keys: give its `secret_key` again")
        access_key, secret_key = credentials.unseal(self.rt.settings, self.spec.credentials)
        return Minio(
            source.endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=source.secure,
            region=source.region or None,
            http_client=fetch.guarded_http(self.rt.state[fetch.POLICY]),
        )

    async def _poll_bucket(self, source: S3Source, client: Minio) -> None:
        """Objects under the prefix in key order, each once: each poll lists the keys after the last one listed.
        A failing S3 is the pipeline's `error` until a poll succeeds again."""
        after = ""
        while True:
            try:
                for key in await asyncio.to_thread(keys_after, client, source, after):
                    if Path(key).suffix.lower() in IMAGE_SUFFIXES:
                        data = await asyncio.to_thread(read_object, client, source.bucket, key)
                        await self.queue.put(incoming(data, key))
                        QUEUED.labels(self.spec.pipeline_id).set(self.queue.qsize())
                    after = key
                self.error = None
            except (MinioException, fetch.FetchError, urllib3.exceptions.HTTPError, OSError) as error:
                self.error = f"reading s3://{source.endpoint}/{source.bucket}/{source.prefix} failed: {error}"
                log.warning("pipeline source failed", extra={"pipeline": self.spec.pipeline_id, "error": self.error})
            await asyncio.sleep(source.poll_s)

    async def _play(self, source: VideoSource) -> None:
        """The video once, from its start; each kept frame as PNG, as if it were a file in a folder."""
        import av

        path = Path(source.path)
        container = await asyncio.to_thread(av.open, str(path))
        try:
            frames = enumerate(container.decode(video=0))
            while (kept := await asyncio.to_thread(next_frame, frames, source.stride)) is not None:
                index, data = kept
                await self.queue.put(incoming(data, f"{path.name}#{index}"))
                QUEUED.labels(self.spec.pipeline_id).set(self.queue.qsize())
        except av.error.FFmpegError as error:
            self.state, self.error = "failed", f"could not decode {path.name}: {error}"
        finally:
            await asyncio.to_thread(container.close)

    async def _work(self, served: ServedVersion, vocabulary: shapes.Vocabulary) -> None:
        """Frames in the order they came, a batch of what is queued at a time."""
        batch_size = self.rt.settings.inference_batch
        while True:
            batch = [await self.queue.get()]
            while len(batch) < batch_size and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            QUEUED.labels(self.spec.pipeline_id).set(self.queue.qsize())
            if self.capture is not None:
                dataset_id, self.capture = self.capture, None
                self.tasks.append(asyncio.create_task(self._capture(dataset_id, batch[0])))
            await self._predict(batch, served, vocabulary)

    async def _predict(self, batch: list[Incoming], served: ServedVersion, vocabulary: shapes.Vocabulary) -> None:
        thresholds = self.spec.thresholds
        decoded = await self.rt.state[DECODER].many([frame.data for frame in batch], served.image_size)
        readable = [(frame, pixels) for frame, pixels in zip(batch, decoded, strict=True) if pixels is not None]
        for _ in range(len(batch) - len(readable)):
            self._failed()
        if not readable:
            return
        try:
            outputs = await self.rt.state[TRITON].infer(
                served.triton_model, served.version, served.image_size, np.stack([p[0] for _, p in readable])
            )
        except Exception as error:
            log.warning("pipeline inference failed", extra={"pipeline": self.spec.pipeline_id, "error": str(error)})
            for _ in readable:
                self._failed()
            return
        predictions = decode(
            served.spec,
            outputs,
            served.image_size,
            [p[1] for _, p in readable],
            min_score=thresholds.confidence,
            max_detections=thresholds.max_detections,
            min_size=thresholds.min_size,
            mask_threshold=thresholds.mask_threshold,
        )
        for (frame, (_, original)), prediction in zip(readable, predictions, strict=True):
            self.frame += 1
            latency = time.monotonic() - frame.queued_at
            result = FrameResult(
                pipeline_id=self.spec.pipeline_id,
                frame=self.frame,
                name=frame.name,
                received_at=frame.received_at,
                latency_ms=round(latency * 1000.0, 3),
                predictions=shapes.predictions(served, prediction, original, vocabulary, thresholds),
            )
            self.stats.record("frames", latency)
            FRAMES.labels(self.spec.pipeline_id, "frames").inc()
            LATENCY.labels(self.spec.pipeline_id).observe(latency)
            await self._deliver(result, frame.data)

    async def _deliver(self, result: FrameResult, image: bytes) -> None:
        payload = msgspec.json.encode(result)
        for kind, deliver in self.sinks:
            try:
                await deliver(result, payload, image)
            except Exception as error:  # a sink's failure loses that delivery only
                self.stats.sink_failures += 1
                SINK_FAILURES.labels(self.spec.pipeline_id, kind).inc()
                log.warning(
                    "pipeline sink failed", extra={"pipeline": self.spec.pipeline_id, "sink": kind, "error": str(error)}
                )

    def _failed(self) -> None:
        self.stats.record("failed")
        FRAMES.labels(self.spec.pipeline_id, "failed").inc()

    async def _capture(self, dataset_id: str, frame: Incoming) -> None:
        """Into the dataset as ingest takes any upload: stored, validated, registered as a sample."""
        try:
            name = frame.name.rsplit("/", 1)[-1] if frame.name else None
            upload = await self.rt.nats.request(
                subjects.CREATE_UPLOAD,
                CreateUploadRequest(
                    project_id=self.spec.project_id,
                    dataset_id=dataset_id,
                    upload=CreateUpload(files=[UploadFile(name=name or f"pipeline-{self.spec.pipeline_id}-frame")]),
                ),
                caller=self.caller,
            )
            await self.rt.storage.put_bytes(
                "staging", object_keys.upload_slot(upload.run_id, 0), frame.data, "application/octet-stream"
            )
            await self.rt.nats.request(
                subjects.COMPLETE_UPLOAD,
                CompleteUploadRequest(project_id=self.spec.project_id, run_id=upload.run_id, complete=CompleteUpload()),
                caller=self.caller,
            )
        except Exception as error:
            log.warning("pipeline capture failed", extra={"pipeline": self.spec.pipeline_id, "error": str(error)})
        finally:
            await self.on_captured(self.spec.pipeline_id)


def next_frame(frames: Iterator[tuple[int, av.VideoFrame]], stride: int) -> tuple[int, bytes] | None:
    """The next frame whose index is a multiple of `stride`, as PNG (fast to write; the model decodes it
    like any image), or None after the last."""
    for index, frame in frames:
        if index % stride == 0:
            buffer = io.BytesIO()
            frame.to_image().save(buffer, format="PNG", compress_level=1)
            return index, buffer.getvalue()
    return None


def keys_after(client: Minio, source: S3Source, after: str) -> list[str]:
    """The keys under the source's prefix after `after`, in key order, up to a page."""
    objects = client.list_objects(source.bucket, prefix=source.prefix, recursive=True, start_after=after or None)
    return list(itertools.islice((o.object_name for o in objects if o.object_name and not o.is_dir), S3_PAGE))


def listing(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )
