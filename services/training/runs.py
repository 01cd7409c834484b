"""Training runs: created by a command, trained by a job (services/training/runner.py) once their release
is built.

A run names its release from the start. Given one, the release must exist and have succeeded or be on its
way; without one, the run cuts a release of its labelset as the project is now, through annotation's
command, so the version it makes has exact lineage. The job is submitted once the release is built: at
once if it already is, else by annotation's `release.finished` event, or by the look the command takes
right after recording the run (the release may finish before the run's row exists). One conditional
update (`job_submitted`) makes whichever comes first the only one.
"""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from proto import subjects
from proto.common import Caller
from proto.releases import CreateRelease, CreateReleaseRequest, Release, ReleaseRef
from proto.schema import GetSchema
from proto.training import (
    FINISHED_STATES,
    CreateTrainingRunRequest,
    ListTrainingRunsRequest,
    LogLevel,
    PretrainedVersion,
    RunLog,
    RunLogLine,
    RunLogRequest,
    TrainingConfig,
    TrainingRun,
    TrainingRunJob,
    TrainingRunList,
    TrainingRunRef,
    VersionRef,
)
from services.training import configs, registry
from shared import object_keys, outbox
from shared.bus import RequestContext
from shared.callers import actor
from shared.consumers import Delivery
from shared.errors import LoupeError, conflict, invalid
from shared.ids import parse_uuid
from shared.paging import encode_cursor, keyset_page
from shared.rows import from_row, one_of_project
from shared.service import Answers, Runtime

ANSWERS = Answers()

COLUMNS = (
    "id, project_id, model, family, state, release_id, labelset, tag_group, config, pretrained, epoch, loss, metrics, eta_s, "
    "resumed, cancel_requested, error, version_id, created_by, created_at, started_at, finished_at"
)


def to_run(row: asyncpg.Record) -> TrainingRun:
    config = msgspec.convert(row["config"], TrainingConfig)
    pretrained = msgspec.convert(row["pretrained"], PretrainedVersion | None)
    return from_row(TrainingRun, row, config=config, epochs=config.epochs, pretrained=pretrained)


async def fetch(
    conn: asyncpg.Connection | asyncpg.Pool, project_id: str, run_id: str, lock: bool = False
) -> TrainingRun:
    query = f"SELECT {COLUMNS} FROM runs WHERE id = $1 AND project_id = $2{' FOR UPDATE' if lock else ''}"
    return to_run(await one_of_project(conn, query, "training run", run_id, project_id))


async def update(conn: asyncpg.Connection, run_id: str | uuid.UUID, assignments: str, *values: object) -> TrainingRun:
    """Change the run (`assignments` refer to `$2`… for `values`) and announce its new state."""
    row = await conn.fetchrow(f"UPDATE runs SET {assignments} WHERE id = $1 RETURNING {COLUMNS}", run_id, *values)
    run = to_run(row)
    await outbox.emit(conn, subjects.TRAINING_RUN_CHANGED, run, run.project_id)
    return run


async def log(conn: asyncpg.Connection | asyncpg.Pool, run_id: str | uuid.UUID, level: LogLevel, message: str) -> None:
    """Add a line to the run's log. Numbering it takes the run's row lock, so lines commit in `seq` order;
    a line written with a state change belongs in its transaction, so a finished run's log is complete."""
    await conn.execute(
        "WITH counted AS (UPDATE runs SET log_lines = log_lines + 1 WHERE id = $1 RETURNING log_lines) "
        "INSERT INTO run_logs (run_id, seq, level, message) SELECT $1, log_lines, $2, $3 FROM counted",
        uuid.UUID(str(run_id)),
        level,
        message,
    )


# -- commands ---------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_TRAINING_RUN)
async def create(rt: Runtime, request: CreateTrainingRunRequest, ctx: RequestContext) -> TrainingRun:
    caller = ctx.require_caller()
    project = parse_uuid(request.project_id, "project")
    body = request.run
    model = body.model or body.family
    clash = await rt.db.fetchval("SELECT family FROM models WHERE project_id = $1 AND name = $2", project, model)
    if clash is not None and clash != body.family:
        raise invalid(
            f"model {model!r} of this project is a {clash} model; name another model for {body.family}", path="$.model"
        )
    if body.tag_group is not None and body.family != "classification":
        raise invalid("tag_group chooses the classes of classification only; leave it out", path="$.tag_group")
    # The label space is checked now, so a mistake is a 422 rather than a failed run later.
    schema = await rt.nats.request(
        subjects.GET_LABEL_SCHEMA, GetSchema(project_id=request.project_id, include_archived=True), caller=caller
    )
    # Imported here, as in runner.py: release_data brings numpy, Pillow and pycocotools, which an idle
    # training service need not hold.
    from services.training.release_data import task_spec

    task_spec(schema, body.family, body.tag_group)
    config = configs.with_changes((await configs.project_config(rt.db, request.project_id)).config, body.config)
    if body.pretrained is not None:
        await check_pretrained(rt, request.project_id, body.pretrained, config)
    run_id = uuid.uuid4()
    release = await (
        existing_release(rt, request.project_id, body.release_id, body.labelset, caller)
        if body.release_id
        else cut_release(rt, request.project_id, run_id, body.labelset, caller)
    )
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO runs (id, project_id, org_id, model, family, release_id, labelset, tag_group, config, "
            f"pretrained, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}",
            run_id,
            project,
            uuid.UUID(caller.org_id),
            model,
            body.family,
            uuid.UUID(release.id),
            body.labelset,
            body.tag_group,
            msgspec.to_builtins(config),
            msgspec.to_builtins(body.pretrained),
            actor(caller),
        )
        await outbox.emit(conn, subjects.TRAINING_RUN_CHANGED, to_run(row), request.project_id)
    if release.state not in ("SUCCEEDED", "FAILED"):
        # It may have been built while the run was recorded, its event handled before the row existed.
        ref = ReleaseRef(project_id=release.project_id, release_id=release.id)
        release = await rt.nats.request(subjects.GET_RELEASE, ref, caller=caller)
    await release_finished(rt, release)
    return await fetch(rt.db, request.project_id, str(run_id))


async def check_pretrained(rt: Runtime, project_id: str, pretrained: PretrainedVersion, config: TrainingConfig) -> None:
    """The version must be of this project, still have its weights, and be of the run's model size."""
    ref = VersionRef(project_id=project_id, model=pretrained.model, version=str(pretrained.version))
    named = f"version {pretrained.version} of model {pretrained.model!r}"
    try:
        version = registry.to_version(await registry.fetch_version(rt.db, ref))
    except LoupeError as exc:
        if exc.code != "not_found":
            raise
        if exc.details.get("resource") == "model":
            raise invalid(f"the project has no model {pretrained.model!r}", path="$.pretrained.model") from None
        raise invalid(f"the project has no {named}", path="$.pretrained.version") from None
    weights = object_keys.model_weights(version.triton_model, version.version)
    if version.weights_deleted or not await rt.storage.exists("models", weights):
        raise invalid(f"{named} has no weights any more; start from another version", path="$.pretrained")
    if version.config.model_size != config.model_size:
        raise invalid(
            f"{named} is a {version.config.model_size} model and this run trains a {config.model_size} one: "
            f"set config.model_size to {version.config.model_size!r} or start from a {config.model_size} version",
            path="$.pretrained",
        )


async def existing_release(rt: Runtime, project_id: str, release_id: str, labelset: str, caller: Caller) -> Release:
    try:
        release: Release = await rt.nats.request(
            subjects.GET_RELEASE, ReleaseRef(project_id=project_id, release_id=release_id), caller=caller
        )
    except LoupeError as exc:
        if exc.code == "not_found":
            raise invalid(f"the project has no release {release_id!r}", path="$.release_id") from None
        raise
    if release.state == "FAILED":
        raise conflict(
            f"release {release.name!r} failed ({release.error}); train from another one", path="$.release_id"
        )
    if labelset not in release.labelsets:
        raise invalid(
            f"release {release.name!r} has no labelset {labelset!r}; it has {', '.join(release.labelsets)}",
            path="$.labelset",
        )
    return release


async def cut_release(rt: Runtime, project_id: str, run_id: uuid.UUID, labelset: str, caller: Caller) -> Release:
    """A release of the labelset as it is now, named after the run."""
    try:
        return await rt.nats.request(
            subjects.CREATE_RELEASE,
            CreateReleaseRequest(
                project_id=project_id,
                release=CreateRelease(
                    name=f"training run {run_id}",
                    description="Cut by a training run of everything labelled at the time",
                    labelsets=[labelset],
                ),
            ),
            caller=caller,
        )
    except LoupeError as exc:
        if exc.code == "invalid" and str(exc.details.get("path", "")).startswith("$.labelsets"):
            raise invalid(exc.message, path="$.labelset") from None
        raise


async def release_finished(rt: Runtime, release: Release) -> None:
    """Submit the jobs of the runs that waited for the release, or fail them if it failed; once each."""
    if release.state not in ("SUCCEEDED", "FAILED"):
        return
    async with rt.db.acquire() as conn, conn.transaction():
        waiting = await conn.fetch(
            "UPDATE runs SET job_submitted = true WHERE release_id = $1 AND NOT job_submitted RETURNING id, state",
            uuid.UUID(release.id),
        )
        for row in waiting:
            if row["state"] != "QUEUED":
                continue  # cancelled while it waited
            if release.state == "FAILED":
                error = f"its release could not be built: {release.error}"
                await update(conn, row["id"], "state = 'FAILED', error = $2, finished_at = now()", error)
                await log(conn, row["id"], "error", f"failed: {error}")
            else:
                await outbox.submit_job(
                    conn, subjects.TRAINING_RUN_JOB, TrainingRunJob(run_id=str(row["id"])), str(row["id"])
                )


async def on_release_finished(rt: Runtime, project: str | None, release: Release, delivery: Delivery) -> None:
    await release_finished(rt, release)


@ANSWERS(subjects.GET_TRAINING_RUN)
async def get(rt: Runtime, request: TrainingRunRef, ctx: RequestContext) -> TrainingRun:
    return await fetch(rt.db, request.project_id, request.run_id)


@ANSWERS(subjects.LIST_TRAINING_RUNS)
async def list_runs(rt: Runtime, request: ListTrainingRunsRequest, ctx: RequestContext) -> TrainingRunList:
    rows = await rt.db.fetch(
        f"SELECT {COLUMNS} FROM runs WHERE project_id = $1 AND ($2::text IS NULL OR state = $2) "
        "ORDER BY created_at DESC, id DESC LIMIT $3",
        parse_uuid(request.project_id, "project"),
        request.query.state,
        request.query.limit,
    )
    return TrainingRunList(items=[to_run(row) for row in rows])


@ANSWERS(subjects.CANCEL_TRAINING_RUN)
async def cancel(rt: Runtime, request: TrainingRunRef, ctx: RequestContext) -> TrainingRun:
    """A queued run is cancelled at once; a running one is asked to stop, and its job stops the trainer
    and records CANCELLED within seconds."""
    by = actor(ctx.require_caller())
    async with rt.db.acquire() as conn, conn.transaction():
        run = await fetch(conn, request.project_id, request.run_id, lock=True)
        if run.state in FINISHED_STATES:
            raise conflict(
                f"training run {run.id} is {run.state} already; only a queued or running run can be cancelled"
            )
        if run.state == "QUEUED":
            await log(conn, run.id, "info", f"cancelled by {by} before it started")
            return await update(conn, run.id, "state = 'CANCELLED', cancel_requested = true, finished_at = now()")
        if run.cancel_requested:
            return run
        await log(conn, run.id, "info", f"cancel requested by {by}; stopping the trainer")
        return await update(conn, run.id, "cancel_requested = true")


@ANSWERS(subjects.GET_TRAINING_RUN_LOG)
async def get_log(rt: Runtime, request: RunLogRequest, ctx: RequestContext) -> RunLog:
    """The run's state is read before its lines: a run seen finished has all its lines written."""
    run = await one_of_project(
        rt.db,
        "SELECT id, state FROM runs WHERE id = $1 AND project_id = $2",
        "training run",
        request.run_id,
        request.project_id,
    )
    page = request.query
    rows, next_cursor = await keyset_page(
        rt.db,
        "SELECT seq, at, level, message FROM run_logs WHERE run_id = $1",
        [run["id"]],
        page.cursor,
        page.limit,
        key=("seq",),
        types=(int,),
    )
    if next_cursor is None and run["state"] not in FINISHED_STATES:
        # Caught up with a run that goes on: where to look again for its next lines.
        next_cursor = encode_cursor(rows[-1]["seq"]) if rows else page.cursor or encode_cursor(0)
    return RunLog(items=[from_row(RunLogLine, row) for row in rows], next_cursor=next_cursor)
