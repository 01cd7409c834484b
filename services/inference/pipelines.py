"""Pipeline commands: create, read, change, delete, enable and disable, frames pushed in, capture, metrics,
and source and sink configs as YAML. What a pipeline is lives in Postgres; what it is doing lives in the one
inference process that runs it (`Pipelines`).

Each enabled pipeline runs in exactly one process: the holder of the pipeline's Postgres advisory lock, a
session lock on a connection of the process's own. Every process tries to take the enabled pipelines nobody
runs every `CLAIM_S` seconds, so when a runner dies (its connection, and with it its locks, goes) or gives a
pipeline up, another takes over within about that. Only the runner listens on the pipeline's runner subjects
(`proto.pipelines.runner_subject`); a command that needs the running pipeline (frames, capture, metrics,
state) is answered by asking it there, and one that changes the pipeline's row asks it to restart or stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats.errors
import yaml
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from proto import subjects
from proto.catalog import ProjectDeleted
from proto.common import Empty, ErrorReply
from proto.inference import ModelChoice, Thresholds
from proto.pipelines import (
    Capture,
    CaptureRequest,
    CreatePipelineRequest,
    FolderSink,
    FolderSource,
    Frame,
    FrameAccepted,
    HttpSource,
    ImportConfigRequest,
    MqttSink,
    NewPipeline,
    Pipeline,
    PipelineConfig,
    PipelineList,
    PipelineMetrics,
    PipelineRef,
    ProjectPipelines,
    PushFrameRequest,
    RunnerOp,
    RunnerStatus,
    S3Source,
    Sink,
    Source,
    SourceAndSinks,
    UpdatePipelineRequest,
    VideoSource,
    WebhookSink,
    runner_subject,
)
from proto.samples import DatasetRef
from services.inference.live import Running, Spec, inside_roots
from services.inference.versions import resolve
from shared import credentials, fetch
from shared.bus import RequestContext, decode, decoder, encoder
from shared.callers import actor
from shared.consumers import Delivery
from shared.errors import LoupeError, conflict, invalid, not_found
from shared.ids import parse_uuid
from shared.rows import from_row
from shared.service import Answers, Runtime, StateKey

ANSWERS = Answers()
log = logging.getLogger(__name__)

COLUMNS = (
    "id, project_id, org_id, name, model, source, sinks, thresholds, queue_size, enabled, capture_dataset_id, "
    "credentials, created_by, created_at, updated_at"
)
# How often a process tries to take the enabled pipelines nobody runs: a dead runner's are taken over within it.
CLAIM_S = 1.0
# The advisory locks' first key; the second is the pipeline's id, both through hashtext. Two pipelines whose ids
# hash alike share a lock, and so a runner: still one runner each.
LOCK_SPACE = "loupe.inference.pipeline"
NOTHING = Empty()
# What each runner subject takes.
BODIES: dict[str, type] = {"status": Empty, "sync": Empty, "metrics": Empty, "frame": Frame, "capture": Capture}


@dataclass
class Held:
    """A pipeline this process runs: its lock is held on `Pipelines.conn`."""

    running: Running
    updated_at: datetime  # of the row it runs: a row changed since restarts it
    subscription: Subscription  # its runner subjects


class Pipelines:
    """The pipelines this process runs, by id, and the way to the process that runs any other."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.held: dict[str, Held] = {}
        self.conn: asyncpg.Connection | None = None  # holds the locks; used only under `lock`
        self.lock = asyncio.Lock()  # one change of what runs here at a time
        self.answering: set[asyncio.Task[None]] = set()

    # -- what any process does for a command ---------------------------------------------------------

    async def ask(
        self, pipeline_id: str, op: RunnerOp, body: msgspec.Struct = NOTHING, reply: Any = RunnerStatus
    ) -> Any:
        """The runner's answer (this process's own when it runs the pipeline), or None while none runs it."""
        if pipeline_id in self.held:
            return await self.answer(pipeline_id, op, body)
        try:
            msg = await self.rt.nats.nc.request(
                runner_subject(pipeline_id, op), encoder.encode(body), timeout=self.rt.settings.request_timeout_s
            )
        except nats.errors.NoRespondersError:
            return None
        except nats.errors.TimeoutError:
            raise LoupeError(
                "unavailable", "the inference process that runs the pipeline did not answer in time; retry"
            ) from None
        if msg.headers and subjects.HEADER_ERROR in msg.headers:
            raise LoupeError.from_reply(decoder(ErrorReply).decode(msg.data))
        return decoder(reply | None).decode(msg.data)

    async def resync(self, pipeline_id: str) -> RunnerStatus | None:
        """After a command changed the pipeline's row: its runner restarts or stops it as the row now says; with
        no runner, this process takes it when it should run."""
        return await self.ask(pipeline_id, "sync") or await self.sync(pipeline_id)

    # -- what the runner answers -----------------------------------------------------------------------

    async def answer(self, pipeline_id: str, op: str, body: Any) -> Any:
        if op == "sync":
            return await self.sync(pipeline_id)
        held = self.held.get(pipeline_id)
        if held is None:  # given up meanwhile
            raise LoupeError("unavailable", "the pipeline is changing hands between inference processes; retry")
        running = held.running
        if op == "frame":  # nothing awaited before the offer: frames keep the order they came in
            if running.state == "failed":
                raise conflict(f"the pipeline failed to start ({running.error}): fix it and enable it again", path="$")
            return FrameAccepted(accepted=running.offer(body.image, body.name))
        if op == "capture":
            running.capture = str(body.dataset_id)
        elif op == "metrics":
            return metrics_of(running)
        return self.status(running)

    def status(self, running: Running) -> RunnerStatus:
        return RunnerStatus(state=running.state, error=running.error, serving=running.serving, runner=self.name)

    async def _respond(self, pipeline_id: str, msg: Msg) -> None:
        try:
            op = msg.subject.rsplit(".", 1)[1]
            if op not in BODIES:
                raise invalid(f"no runner operation {op!r}", path="$")
            result = await self.answer(pipeline_id, op, decode(BODIES[op], msg.data))
            await msg.respond(encoder.encode(result))
        except LoupeError as error:
            await self.rt.nats.nc.publish(
                msg.reply, encoder.encode(error.to_reply()), headers={subjects.HEADER_ERROR: error.code}
            )

    async def _listen(self, pipeline_id: str) -> Subscription:
        async def receive(msg: Msg) -> None:
            # A task each, started in the order messages came: `sync` may end this very subscription.
            task = asyncio.create_task(self._respond(pipeline_id, msg))
            self.answering.add(task)
            task.add_done_callback(self.answering.discard)

        subscription = await self.rt.nats.nc.subscribe(runner_subject(pipeline_id, "*"), cb=receive)
        await self.rt.nats.nc.flush()  # live at the server before the row is read: no change slips between
        return subscription

    # -- what runs here ----------------------------------------------------------------------------------

    async def sync(self, pipeline_id: str) -> RunnerStatus | None:
        """Run the pipeline here as its row says now, restarted, if it runs here or nowhere; stop it if it should
        not run. Its status here, or None when it does not run here."""
        async with self.lock:
            row = await self.rt.db.fetchrow(f"SELECT {COLUMNS} FROM pipelines WHERE id = $1", uuid.UUID(pipeline_id))
            held = self.held.get(pipeline_id)
            if row is None or not row["enabled"]:
                if held is not None:
                    await self._release(pipeline_id)
            elif held is not None:
                await self._restart(held, row)
            else:
                await self._take(pipeline_id)
        held = self.held.get(pipeline_id)
        return self.status(held.running) if held is not None else None

    async def claim(self) -> None:
        """Take the enabled pipelines nobody runs, restart those changed behind this process's back (a command
        whose `sync` did not arrive), and give up those no longer enabled."""
        async with self.lock:
            await self._locks()  # first: pipelines whose locks were lost stop before any is taken again
            rows = {
                str(row["id"]): row for row in await self.rt.db.fetch(f"SELECT {COLUMNS} FROM pipelines WHERE enabled")
            }
            for pipeline_id in [pipeline_id for pipeline_id in self.held if pipeline_id not in rows]:
                await self._release(pipeline_id)
            for pipeline_id, row in rows.items():
                held = self.held.get(pipeline_id)
                if held is None:
                    await self._take(pipeline_id)
                elif held.updated_at != row["updated_at"]:
                    await self._restart(held, row)

    async def _take(self, pipeline_id: str) -> None:
        """Lock, listen, then read the row: a change committed before the read is in it, and one after sends a
        `sync` this process hears."""
        conn = await self._locks()
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))", LOCK_SPACE, pipeline_id):
            return
        subscription = await self._listen(pipeline_id)
        row = await self.rt.db.fetchrow(f"SELECT {COLUMNS} FROM pipelines WHERE id = $1", uuid.UUID(pipeline_id))
        if row is None or not row["enabled"]:
            await subscription.unsubscribe()
            await self._unlock(pipeline_id)
            return
        self.held[pipeline_id] = Held(self._started(row), row["updated_at"], subscription)

    async def _restart(self, held: Held, row: asyncpg.Record) -> None:
        await held.running.stop()
        held.running, held.updated_at = self._started(row), row["updated_at"]

    def _started(self, row: asyncpg.Record) -> Running:
        running = Running(self.rt, spec_of(row), self.captured)
        running.start()
        return running

    async def _release(self, pipeline_id: str) -> None:
        held = self.held.pop(pipeline_id)
        try:
            await held.running.stop()
        finally:
            with contextlib.suppress(Exception):
                await held.subscription.unsubscribe()
            await self._unlock(pipeline_id)

    async def _unlock(self, pipeline_id: str) -> None:
        if self.conn is not None and not self.conn.is_closed():  # else the lock went with the connection
            await self.conn.execute("SELECT pg_advisory_unlock(hashtext($1), hashtext($2))", LOCK_SPACE, pipeline_id)

    async def _locks(self) -> asyncpg.Connection:
        """The connection that holds the locks; a new one when it was lost (Postgres restarted), and then
        nothing runs here any more: its locks went with it, and another process may hold them now."""
        if self.conn is None or self.conn.is_closed():
            await self.drop_all()
            self.conn = await asyncpg.connect(self.rt.settings.database_url)
        return self.conn

    async def drop_all(self) -> None:
        """Stop everything that runs here and close the lock connection: its locks go with it."""
        for held in self.held.values():
            with contextlib.suppress(Exception):
                await held.subscription.unsubscribe()
            await held.running.stop()
        self.held.clear()
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)

    async def keep_claiming(self) -> None:
        while True:
            try:
                await self.claim()
            except Exception as error:  # Postgres or NATS away: tried again at the next round
                log.warning("taking pipelines failed", extra={"error": str(error)})
            await asyncio.sleep(CLAIM_S)

    async def captured(self, pipeline_id: str) -> None:
        await self.rt.db.execute("UPDATE pipelines SET capture_dataset_id = NULL WHERE id = $1", uuid.UUID(pipeline_id))


PIPELINES = StateKey("pipelines", Pipelines)


async def running_pipelines(rt: Runtime) -> AsyncIterator[None]:
    """A service context: this process takes its share of the enabled pipelines while it runs, and gives them up
    when it stops."""
    pipelines = rt.state[PIPELINES] = Pipelines(rt)
    claiming = asyncio.create_task(pipelines.keep_claiming())
    try:
        yield
    finally:
        claiming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await claiming
        for task in list(pipelines.answering):
            task.cancel()
        async with pipelines.lock:
            await pipelines.drop_all()


def metrics_of(running: Running) -> PipelineMetrics:
    stats = running.stats
    return PipelineMetrics(
        pipeline_id=running.spec.pipeline_id,
        state=running.state,
        queued=running.queue.qsize(),
        frames=stats.frames,
        dropped=stats.dropped,
        failed=stats.failed,
        sink_failures=stats.sink_failures,
        windows=stats.windows(),
    )


def spec_of(row: asyncpg.Record) -> Spec:
    return Spec(
        pipeline_id=str(row["id"]),
        project_id=str(row["project_id"]),
        org_id=str(row["org_id"]),
        model=msgspec.convert(row["model"], ModelChoice),
        source=msgspec.convert(row["source"], Source),
        sinks=msgspec.convert(row["sinks"], list[Sink]),
        thresholds=msgspec.convert(row["thresholds"], Thresholds),
        queue_size=row["queue_size"],
        capture_dataset_id=str(row["capture_dataset_id"]) if row["capture_dataset_id"] else None,
        credentials=row["credentials"],
    )


def to_pipeline(row: asyncpg.Record, status: RunnerStatus | None) -> Pipeline:
    """The pipeline as stored, and as its runner reports it (`status`; None while no process runs it)."""
    spec = spec_of(row)
    if not row["enabled"]:
        status = None
    return from_row(
        Pipeline,
        row,
        model=spec.model,
        source=spec.source,
        sinks=spec.sinks,
        thresholds=spec.thresholds,
        state=("starting" if status is None else status.state) if row["enabled"] else "disabled",
        error=status.error if status else None,
        serving=status.serving if status else None,
        runner=status.runner if status else None,
    )


async def shown(rt: Runtime, row: asyncpg.Record) -> Pipeline:
    status = await rt.state[PIPELINES].ask(str(row["id"]), "status") if row["enabled"] else None
    return to_pipeline(row, status)


async def fetch_row(rt: Runtime, ref: PipelineRef | PushFrameRequest | CaptureRequest) -> asyncpg.Record:
    row = await rt.db.fetchrow(
        f"SELECT {COLUMNS} FROM pipelines WHERE id = $1 AND project_id = $2",
        parse_uuid(ref.pipeline_id, "pipeline"),
        parse_uuid(ref.project_id, "project"),
    )
    if row is None:
        raise not_found("pipeline", ref.pipeline_id)
    return row


async def update_row(rt: Runtime, row: asyncpg.Record, assignments: str, *args: Any) -> asyncpg.Record:
    return await rt.db.fetchrow(
        f"UPDATE pipelines SET {assignments}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}", row["id"], *args
    )


async def restarted(rt: Runtime, row: asyncpg.Record) -> Pipeline:
    """The pipeline as `row` says, (re)started by its runner (or by this process) if it is enabled, stopped
    if not."""
    return to_pipeline(row, await rt.state[PIPELINES].resync(str(row["id"])))


def check_source(rt: Runtime, source: Source, path: str = "$.source") -> None:
    if isinstance(source, FolderSource):
        folder = checked_folder(rt, source.path, f"{path}.path")
        if not folder.is_dir():
            raise invalid(f"{source.path!r} is not a folder on the server; create it first", path=f"{path}.path")
    elif isinstance(source, VideoSource):
        video = checked_folder(rt, source.path, f"{path}.path")
        if not video.is_file():
            raise invalid(
                f"{source.path!r} is not a file on the server; copy the video there first", path=f"{path}.path"
            )
    elif isinstance(source, S3Source):  # a name is checked when it is resolved, at each connection
        try:
            fetch.check_target(rt, f"{'https' if source.secure else 'http'}://{source.endpoint}/")
        except fetch.FetchError as error:
            raise invalid(error.message, path=f"{path}.endpoint", fetch_error=error.code) from None


def sealed(
    rt: Runtime, source: Source, stored: asyncpg.Record | None, path: str = "$.source"
) -> tuple[Source, str | None]:
    """The source as it is stored (an `s3` source without its secret) and the sealed keys of an `s3` source: the
    ones given, or the stored ones when no secret is given and the endpoint and access key are the same."""
    if not isinstance(source, S3Source):
        return source, None
    kept = msgspec.structs.replace(source, secret_key="")
    if source.secret_key:
        return kept, credentials.seal(rt.settings, source.access_key, source.secret_key, path=f"{path}.secret_key")
    before = msgspec.convert(stored["source"], Source) if stored is not None and stored["credentials"] else None
    if isinstance(before, S3Source) and (before.endpoint, before.access_key) == (source.endpoint, source.access_key):
        return kept, stored["credentials"] if stored is not None else None
    raise invalid(
        "give the `secret_key` of the access key: it is kept sealed and never shown, so a new endpoint or access "
        "key needs it again",
        path=f"{path}.secret_key",
    )


def check_sinks(rt: Runtime, sinks: list[Sink], path: str = "$.sinks") -> None:
    for i, sink in enumerate(sinks):
        if isinstance(sink, FolderSink):
            checked_folder(rt, sink.path, f"{path}[{i}].path")
        elif isinstance(sink, MqttSink) and not rt.settings.pipeline_mqtt_url:
            raise invalid(
                "this server has no MQTT broker for pipelines: ask the operator to set LOUPE_PIPELINE_MQTT_URL",
                path=f"{path}[{i}]",
            )
        elif isinstance(sink, WebhookSink):
            try:
                fetch.check_target(rt, sink.url)
            except fetch.FetchError as error:
                raise invalid(error.message, path=f"{path}[{i}].url", fetch_error=error.code) from None


def checked_folder(rt: Runtime, folder: str, path: str) -> Path:
    resolved = inside_roots(rt, folder)
    if resolved is None:
        allowed = rt.settings.pipeline_folders or "none: the server sets LOUPE_PIPELINE_FOLDERS"
        raise invalid(f"{folder!r} is not under one of the server's pipeline folders ({allowed})", path=path)
    return resolved


def to_columns(value: Any) -> Any:
    return msgspec.to_builtins(value)


async def on_project_deleted(rt: Runtime, project: str | None, deleted: ProjectDeleted, delivery: Delivery) -> None:
    """A deleted project's pipelines stop and are forgotten."""
    rows = await rt.db.fetch("DELETE FROM pipelines WHERE project_id = $1 RETURNING id", uuid.UUID(deleted.id))
    for row in rows:
        await rt.state[PIPELINES].resync(str(row["id"]))


# -- commands ---------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_PIPELINE)
async def create(rt: Runtime, request: CreatePipelineRequest, ctx: RequestContext) -> Pipeline:
    caller = ctx.require_caller()
    new: NewPipeline = request.pipeline
    await resolve(rt, request.project_id, new.model, caller, path="$.model")
    check_source(rt, new.source)
    check_sinks(rt, new.sinks)
    source, keys = sealed(rt, new.source, None)
    row = await rt.db.fetchrow(
        "INSERT INTO pipelines (id, project_id, org_id, name, model, source, sinks, thresholds, queue_size, enabled, "
        f"created_by, credentials) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}",
        uuid.uuid4(),
        parse_uuid(request.project_id, "project"),
        uuid.UUID(caller.org_id),
        new.name,
        to_columns(new.model),
        to_columns(source),
        to_columns(new.sinks),
        to_columns(new.thresholds),
        new.queue_size,
        new.enabled,
        actor(caller),
        keys,
    )
    return await restarted(rt, row)


@ANSWERS(subjects.LIST_PIPELINES)
async def list_pipelines(rt: Runtime, request: ProjectPipelines, ctx: RequestContext) -> PipelineList:
    rows = await rt.db.fetch(
        f"SELECT {COLUMNS} FROM pipelines WHERE project_id = $1 ORDER BY created_at, id",
        parse_uuid(request.project_id, "project"),
    )
    return PipelineList(items=list(await asyncio.gather(*(shown(rt, row) for row in rows))))


@ANSWERS(subjects.GET_PIPELINE)
async def get(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> Pipeline:
    return await shown(rt, await fetch_row(rt, request))


@ANSWERS(subjects.UPDATE_PIPELINE)
async def update(rt: Runtime, request: UpdatePipelineRequest, ctx: RequestContext) -> Pipeline:
    caller = ctx.require_caller()
    row = await fetch_row(rt, PipelineRef(project_id=request.project_id, pipeline_id=request.pipeline_id))
    changes = request.changes
    if changes.model is not None:
        await resolve(rt, request.project_id, changes.model, caller, path="$.model")
    if changes.source is not None:
        check_source(rt, changes.source)
    if changes.sinks is not None:
        check_sinks(rt, changes.sinks)
    given = {name: value for name, value in msgspec.structs.asdict(changes).items() if value is not None}
    if not given:
        return await shown(rt, row)
    if changes.source is not None:
        given["source"], given["credentials"] = sealed(rt, changes.source, row)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(given, start=2))
    values = [
        value if name in ("name", "queue_size", "credentials") else to_columns(value) for name, value in given.items()
    ]
    return await restarted(rt, await update_row(rt, row, assignments, *values))


@ANSWERS(subjects.DELETE_PIPELINE)
async def delete(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> Empty:
    row = await fetch_row(rt, request)
    await rt.db.execute("DELETE FROM pipelines WHERE id = $1", row["id"])
    await rt.state[PIPELINES].resync(str(row["id"]))
    return Empty()


@ANSWERS(subjects.ENABLE_PIPELINE)
async def enable(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> Pipeline:
    """Enabling an enabled pipeline starts it again: the way to retry one that failed to start."""
    return await restarted(rt, await update_row(rt, await fetch_row(rt, request), "enabled = true"))


@ANSWERS(subjects.DISABLE_PIPELINE)
async def disable(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> Pipeline:
    return await restarted(rt, await update_row(rt, await fetch_row(rt, request), "enabled = false"))


@ANSWERS(subjects.PUSH_PIPELINE_FRAME)
async def push_frame(rt: Runtime, request: PushFrameRequest, ctx: RequestContext) -> FrameAccepted:
    row = await fetch_row(rt, request)
    if not isinstance(msgspec.convert(row["source"], Source), HttpSource):
        raise conflict("the pipeline's source is not `http`: it takes no pushed frames", path="$")
    if not row["enabled"]:
        raise conflict("the pipeline is disabled: enable it first (POST …/pipelines/{id}/enable)", path="$")
    accepted = await rt.state[PIPELINES].ask(str(row["id"]), "frame", request.frame, FrameAccepted)
    if accepted is None:
        raise LoupeError("unavailable", "no inference process runs the pipeline yet (it is starting); retry shortly")
    return accepted


@ANSWERS(subjects.CAPTURE_PIPELINE_FRAME)
async def capture(rt: Runtime, request: CaptureRequest, ctx: RequestContext) -> Pipeline:
    caller = ctx.require_caller()
    row = await fetch_row(rt, request)
    dataset_id = str(request.capture.dataset_id)
    await rt.nats.request(
        subjects.GET_DATASET, DatasetRef(project_id=request.project_id, dataset_id=dataset_id), caller=caller
    )
    # Not `updated_at`: asking for a capture changes what the pipeline does, not what it is (no restart).
    row = await rt.db.fetchrow(
        f"UPDATE pipelines SET capture_dataset_id = $2 WHERE id = $1 RETURNING {COLUMNS}",
        row["id"],
        uuid.UUID(dataset_id),
    )
    # The runner takes it now; one that starts later reads it from the row.
    status = await rt.state[PIPELINES].ask(str(row["id"]), "capture", request.capture) if row["enabled"] else None
    return to_pipeline(row, status)


@ANSWERS(subjects.PIPELINE_METRICS)
async def metrics(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> PipelineMetrics:
    row = await fetch_row(rt, request)
    if row["enabled"]:
        measured = await rt.state[PIPELINES].ask(str(row["id"]), "metrics", reply=PipelineMetrics)
        if measured is not None:
            return measured
    return PipelineMetrics(
        pipeline_id=str(row["id"]),
        state="starting" if row["enabled"] else "disabled",
        queued=0,
        frames=0,
        dropped=0,
        failed=0,
        sink_failures=0,
        windows=[],
    )


@ANSWERS(subjects.EXPORT_PIPELINE_CONFIG)
async def export_config(rt: Runtime, request: PipelineRef, ctx: RequestContext) -> PipelineConfig:
    spec = spec_of(await fetch_row(rt, request))
    config = msgspec.to_builtins(SourceAndSinks(source=spec.source, sinks=spec.sinks))
    return PipelineConfig(yaml=yaml.safe_dump(config, sort_keys=False))


@ANSWERS(subjects.IMPORT_PIPELINE_CONFIG)
async def import_config(rt: Runtime, request: ImportConfigRequest, ctx: RequestContext) -> Pipeline:
    row = await fetch_row(rt, PipelineRef(project_id=request.project_id, pipeline_id=request.pipeline_id))
    try:
        loaded = yaml.safe_load(request.config.yaml)
    except yaml.YAMLError as error:
        raise invalid(f"not YAML: {error}", path="$.yaml") from None
    try:
        config = msgspec.convert(loaded, SourceAndSinks)
    except msgspec.ValidationError as error:
        raise invalid(f"not a pipeline config: {error}", path="$.yaml") from None
    check_source(rt, config.source, "$.yaml.source")
    check_sinks(rt, config.sinks, "$.yaml.sinks")
    source, keys = sealed(rt, config.source, row, "$.yaml.source")
    updated = await update_row(
        rt, row, "source = $2, sinks = $3, credentials = $4", to_columns(source), to_columns(config.sinks), keys
    )
    return await restarted(rt, updated)
