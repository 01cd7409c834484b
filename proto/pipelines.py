"""Live pipelines: frames from a source, through a project's model version, to one or more sinks.

A pipeline belongs to a project and names its `model` as jobs do (the family's active version, a model's,
or an exact version), resolved when the pipeline starts. Sources: `http` (frames pushed to
`…/pipelines/{id}/frames`), `nats` (image bytes published on a subject), `folder` (a watched folder under
one of the server's pipeline folders), `video` (a video file there, every `stride`-th frame). Sinks: `nats` (each
frame's result as JSON on a subject), `folder` (one JSON per frame, and an overlay PNG when asked),
`webhook` (POST the JSON, under the rules of URL imports), `mqtt` (publish the JSON to the server's broker).
An `s3` source reads the objects appearing under a prefix of a bucket on the user's S3, with keys kept sealed.

Each enabled pipeline runs in exactly one inference process (its runner, which holds the pipeline's Postgres
advisory lock); the others answer commands by asking the runner on `runner_subject(pipeline_id, op)`.

A frame that does not fit the pipeline's queue (`queue_size`) is dropped and counted: push sources
(`http`, `nats`) cannot be slowed; a folder or a video waits for room instead, so it loses nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from proto.common import Uuid
from proto.inference import ModelChoice, Predictions, Thresholds
from proto.ingest import BucketName, Endpoint

PipelineName = Annotated[str, Meta(min_length=1, max_length=200)]
# A plain subject (no wildcards) outside Loupe's own (`loupe.…`: commands, events, jobs) and NATS's replies.
Subject = Annotated[str, Meta(pattern=r"^(?!loupe\.|_INBOX\.)[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$", max_length=200)]
FolderPath = Annotated[str, Meta(min_length=1, max_length=1000)]
Window = Literal["1m", "5m", "15m"]
PipelineState = Literal["disabled", "starting", "running", "failed"]


class HttpSource(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="http", tag_field="kind"):
    """Frames pushed one at a time: `POST …/pipelines/{id}/frames`."""


class NatsSource(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="nats", tag_field="kind"):
    """Each message published on `subject` is one frame: the image's bytes as they are."""

    subject: Subject


class FolderSource(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="folder", tag_field="kind"
):
    """Image files appearing in `path` (under one of the server's pipeline folders), in name order, polled
    every `poll_s`; files already there when the pipeline starts are frames too."""

    path: FolderPath
    poll_s: Annotated[float, Meta(ge=0.1, le=3600)] = 1.0


class VideoSource(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="video", tag_field="kind"):
    """A video file (under one of the server's pipeline folders), played once from its start each time the
    pipeline starts: every `stride`-th frame (1: all)."""

    path: FolderPath
    stride: Annotated[int, Meta(ge=1, le=10_000)] = 1


class S3Source(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="s3", tag_field="kind"):
    """Objects appearing under `prefix` of `bucket` on the user's S3 at `endpoint` (never Loupe's own storage, nor
    a private address: the rules of bucket imports), in key order, polled every `poll_s`. `secret_key` is
    stored sealed and reads back empty; left empty in a change, the stored one is kept while the endpoint and
    access key stay the same."""

    endpoint: Endpoint
    bucket: BucketName
    prefix: Annotated[str, Meta(max_length=1024)] = ""
    secure: bool = True
    region: Annotated[str, Meta(max_length=100)] = ""
    access_key: Annotated[str, Meta(min_length=1, max_length=1000)]
    secret_key: Annotated[str, Meta(max_length=1000)] = ""
    poll_s: Annotated[float, Meta(ge=0.1, le=3600)] = 1.0


Source = HttpSource | NatsSource | FolderSource | VideoSource | S3Source


class NatsSink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="nats", tag_field="kind"):
    """Each frame's `FrameResult`, as JSON, published on `subject`."""

    subject: Subject


class FolderSink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="folder", tag_field="kind"):
    """`<frame>.json` per frame in `path` (under one of the server's pipeline folders); with `overlay`, also
    `<frame>.png`: the frame with its boxes drawn."""

    path: FolderPath
    overlay: bool = False


class WebhookSink(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="webhook", tag_field="kind"
):
    """POST each frame's JSON to `url`: never to private addresses or Loupe's own storage (the rules of URL
    imports)."""

    url: Annotated[str, Meta(min_length=1, max_length=2048)]


class MqttSink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="mqtt", tag_field="kind"):
    """Publish each frame's JSON to `topic` on the server's MQTT broker (`LOUPE_PIPELINE_MQTT_URL`): the
    operator chooses the broker, so a pipeline cannot make the server connect anywhere else."""

    topic: Annotated[str, Meta(min_length=1, max_length=500)]
    qos: Annotated[int, Meta(ge=0, le=1)] = 0


Sink = NatsSink | FolderSink | WebhookSink | MqttSink
Sinks = Annotated[list[Sink], Meta(min_length=1, max_length=8)]
QueueSize = Annotated[int, Meta(ge=1, le=10_000)]


class NewPipeline(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: PipelineName
    model: ModelChoice
    source: Source
    sinks: Sinks
    thresholds: Thresholds = Thresholds()
    queue_size: QueueSize = 64  # frames waiting for the model; push sources drop what does not fit
    enabled: bool = False


class PipelineChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields left out keep their value; a running pipeline restarts with the changes."""

    name: PipelineName | None = None
    model: ModelChoice | None = None
    source: Source | None = None
    sinks: Sinks | None = None
    thresholds: Thresholds | None = None
    queue_size: QueueSize | None = None


class Pipeline(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    name: str
    model: ModelChoice
    source: Source
    sinks: list[Sink]
    thresholds: Thresholds
    queue_size: int
    enabled: bool
    state: PipelineState  # in the inference process that runs it
    error: str | None  # why it failed, when it did
    serving: str | None  # the version it runs, `<model>:<version>`, once started
    runner: str | None  # the inference process that runs it, `<host>:<pid>`
    capture_dataset_id: str | None  # the next frame goes into this dataset
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class PipelineList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Pipeline]


class ProjectPipelines(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str


class CreatePipelineRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    pipeline: NewPipeline


class PipelineRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    pipeline_id: str


class UpdatePipelineRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    pipeline_id: str
    changes: PipelineChanges


class Frame(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One frame: the image's bytes (base64 in JSON)."""

    image: Annotated[bytes, Meta(min_length=1, max_length=50 * 1024 * 1024)]
    name: Annotated[str, Meta(max_length=500)] | None = None


class PushFrameRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    pipeline_id: str
    frame: Frame


class FrameAccepted(msgspec.Struct, frozen=True, kw_only=True):
    accepted: bool  # false: the queue was full and the frame was dropped (counted)


class Capture(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Put the next frame into the project's dataset `dataset_id`, as a sample."""

    dataset_id: Uuid


class CaptureRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    pipeline_id: str
    capture: Capture


class FrameResult(msgspec.Struct, frozen=True, kw_only=True):
    """What sinks receive for each frame, in the order frames came in."""

    pipeline_id: str
    frame: int  # 1, 2, … since the pipeline (re)started
    name: str | None  # the file or pushed name, or `<video file>#<frame index>`
    received_at: datetime
    latency_ms: float  # from entering the queue to the result
    predictions: Predictions


class WindowMetrics(msgspec.Struct, frozen=True, kw_only=True):
    window: Window
    frames: int  # gone through the model
    dropped: int  # did not fit the queue
    failed: int  # could not be decoded or predicted
    frames_per_s: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class PipelineMetrics(msgspec.Struct, frozen=True, kw_only=True):
    pipeline_id: str
    state: PipelineState
    queued: int  # frames waiting now
    frames: int  # since the pipeline (re)started in this process
    dropped: int
    failed: int
    sink_failures: int  # deliveries a sink could not make (each logged)
    windows: list[WindowMetrics]  # 1, 5 and 15 minutes


class PipelineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A pipeline's source and sinks as YAML, for export and import."""

    yaml: Annotated[str, Meta(min_length=1, max_length=100_000)]


class SourceAndSinks(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a YAML config holds."""

    source: Source
    sinks: Sinks


class ImportConfigRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    pipeline_id: str
    config: PipelineConfig


# -- between inference processes: the one that runs a pipeline answers for it ---------------------------

RunnerOp = Literal["status", "sync", "frame", "capture", "metrics"]


def runner_subject(pipeline_id: str, op: RunnerOp | Literal["*"]) -> str:
    """Only the process that runs the pipeline listens here: `sync` (its row changed: restart or stop as it
    says now; body empty), `status`, `metrics` (body empty), `frame` (a `Frame`), `capture` (a `Capture`)."""
    return f"loupe.inference.pipeline.runner.{pipeline_id}.{op}"


class RunnerStatus(msgspec.Struct, frozen=True, kw_only=True):
    state: PipelineState
    error: str | None
    serving: str | None
    runner: str  # `<host>:<pid>`
