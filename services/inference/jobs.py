"""Inference jobs: created (the version resolved and loaded, the selection checked and counted), listed,
read, cancelled, and their per-sample results read a page at a time."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from proto import subjects
from proto.common import Caller
from proto.inference import (
    FINISHED_STATES,
    CreateJobRequest,
    Embed,
    InferenceJob,
    InferenceJobRun,
    JobList,
    JobRef,
    JobResult,
    JobResults,
    JobSpec,
    ListJobsRequest,
    Predictions,
    Rank,
    ResultsRequest,
    Selection,
)
from proto.search import CountSamples, SampleFilter, ViewRef
from services.inference import heuristics
from services.inference.state import TRITON
from services.inference.versions import ServedVersion, resolve
from shared import outbox
from shared.bus import RequestContext
from shared.callers import actor
from shared.errors import LoupeError, conflict, invalid, not_found
from shared.ids import parse_uuid
from shared.paging import keyset_page
from shared.predictions import TaskSpec
from shared.rows import from_row
from shared.service import Answers, Runtime

ANSWERS = Answers()

COLUMNS = (
    "id, project_id, kind, state, spec, model, version, family, total, done, written, skipped, failed, seconds, "
    "resumed, cancel_requested, error, view_id, created_by, created_at, started_at, finished_at"
)
EMBEDDING_OUTPUT = "embedding"


def to_job(row: asyncpg.Record) -> InferenceJob:
    rate = row["done"] / row["seconds"] if row["seconds"] > 0 and row["done"] else None
    left = None
    if rate and row["total"] is not None and row["state"] == "RUNNING":
        left = round(max(row["total"] - row["done"], 0) / rate, 1)
    return from_row(
        InferenceJob,
        row,
        spec=msgspec.convert(row["spec"], JobSpec),
        images_per_s=round(rate, 2) if rate else None,
        eta_s=left,
    )


def served_of(row: asyncpg.Record) -> ServedVersion:
    """The version a job resolved at its start, as recorded with it."""
    task = row["task"]
    return ServedVersion(
        model=row["model"],
        version=row["version"],
        family=row["family"],
        triton_model=row["triton_model"],
        image_size=row["image_size"],
        spec=TaskSpec(
            family=row["family"],
            classes=tuple(task["classes"]),
            tag_groups=tuple((name, tuple(values)) for name, values in task["tag_groups"]),
        ),
        tag_group=task["tag_group"],
    )


def kind_of(spec: JobSpec) -> str:
    return str(type(spec).__struct_config__.tag)


async def fetch(conn: asyncpg.Connection | asyncpg.Pool, project_id: str, job_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM jobs WHERE id = $1 AND project_id = $2",
        parse_uuid(job_id, "job"),
        parse_uuid(project_id, "project"),
    )
    if row is None:
        raise not_found("inference job", job_id)
    return row


async def update(conn: asyncpg.Connection | asyncpg.Pool, job_id: str, assignments: str, *args: Any) -> InferenceJob:
    row = await conn.fetchrow(
        f"UPDATE jobs SET {assignments} WHERE id = $1 RETURNING {COLUMNS}", uuid.UUID(job_id), *args
    )
    return to_job(row)


# -- commands ---------------------------------------------------------------------------------------


@ANSWERS(subjects.CREATE_INFERENCE_JOB)
async def create(rt: Runtime, request: CreateJobRequest, ctx: RequestContext) -> InferenceJob:
    caller = ctx.require_caller()
    spec = request.job
    served = await resolve(rt, request.project_id, spec.model, caller, path="$.model")
    if isinstance(spec, Rank):
        heuristics.heuristic_for(spec.heuristic, served.family)
    # Loading now warms the model for the job and tells whether the version has the outputs it needs.
    outputs = await rt.state[TRITON].ensure(served.triton_model, served.version, served.image_size)
    needs_embedding = isinstance(spec, Embed) or (isinstance(spec, Rank) and spec.heuristic == "core-set")
    if needs_embedding and EMBEDDING_OUTPUT not in outputs:
        raise conflict(
            f"version {served.version} of {served.model!r} has no embedding output (it was trained before Loupe's "
            "models had one): train a new version",
            path="$.model",
        )
    total = await selection_total(rt, request.project_id, spec.selection, caller)
    job_id = uuid.uuid4()
    async with rt.db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO jobs (id, project_id, org_id, kind, spec, model, version, family, triton_model, image_size, "
            "task, total, phase, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
            f"RETURNING {COLUMNS}",
            job_id,
            parse_uuid(request.project_id, "project"),
            uuid.UUID(caller.org_id),
            kind_of(spec),
            msgspec.to_builtins(spec),
            served.model,
            served.version,
            served.family,
            served.triton_model,
            served.image_size,
            {
                "classes": list(served.spec.classes),
                "tag_groups": [[name, list(values)] for name, values in served.spec.tag_groups],
                "tag_group": served.tag_group,
            },
            total,
            "labelled" if isinstance(spec, Rank) and spec.heuristic == "core-set" else "pool",
            actor(caller),
        )
        job = to_job(row)
        await outbox.emit(conn, subjects.INFERENCE_JOB_CHANGED, job, request.project_id)
        await outbox.submit_job(conn, subjects.INFERENCE_JOB, InferenceJobRun(job_id=job.id), job.id)
    return job


async def selection_total(rt: Runtime, project_id: str, selection: Selection, caller: Caller) -> int | None:
    """How many samples the job will go through; also checks the filter or view now, so that a mistake in it
    is a 4xx rather than a failed job."""
    if selection.filter is not None and selection.view_id is not None:
        raise invalid("select samples with a filter or a view, not both", path="$.selection")
    if selection.view_id is not None:
        try:
            view = await rt.nats.request(
                subjects.GET_VIEW, ViewRef(project_id=project_id, view_id=selection.view_id), caller=caller
            )
        except LoupeError as error:
            if error.code == "not_found":
                raise invalid(f"the project has no view {selection.view_id}", path="$.selection.view_id") from None
            raise
        count = view.item_count
    else:
        try:
            count = (
                await rt.nats.request(
                    subjects.COUNT_SAMPLES,
                    CountSamples(project_id=project_id, filter=selection.filter or SampleFilter()),
                    caller=caller,
                )
            ).count
        except LoupeError as error:
            if error.code == "invalid":
                path = str(error.details.get("path", "$")).replace("$", "$.selection.filter", 1)
                raise invalid(error.message, path=path) from None
            raise
    if count is None:
        return None
    return min(count, selection.limit) if selection.limit is not None else count


@ANSWERS(subjects.LIST_INFERENCE_JOBS)
async def list_jobs(rt: Runtime, request: ListJobsRequest, ctx: RequestContext) -> JobList:
    query = request.query
    rows = await rt.db.fetch(
        f"SELECT {COLUMNS} FROM jobs WHERE project_id = $1 AND ($2::text IS NULL OR kind = $2) "
        "AND ($3::text IS NULL OR state = $3) ORDER BY created_at DESC, id DESC LIMIT $4",
        parse_uuid(request.project_id, "project"),
        query.kind,
        query.state,
        query.limit,
    )
    return JobList(items=[to_job(row) for row in rows])


@ANSWERS(subjects.GET_INFERENCE_JOB)
async def get(rt: Runtime, request: JobRef, ctx: RequestContext) -> InferenceJob:
    return to_job(await fetch(rt.db, request.project_id, request.job_id))


@ANSWERS(subjects.CANCEL_INFERENCE_JOB)
async def cancel(rt: Runtime, request: JobRef, ctx: RequestContext) -> InferenceJob:
    """A queued job at once; a running one stops after its current slice (it records CANCELLED)."""
    async with rt.db.acquire() as conn, conn.transaction():
        row = await fetch(conn, request.project_id, request.job_id)
        if row["state"] in FINISHED_STATES:
            return to_job(row)
        job = await update(
            conn,
            request.job_id,
            "cancel_requested = true, state = CASE WHEN state = 'QUEUED' THEN 'CANCELLED' ELSE state END, "
            "finished_at = CASE WHEN state = 'QUEUED' THEN now() ELSE finished_at END",
        )
        await outbox.emit(conn, subjects.INFERENCE_JOB_CHANGED, job, request.project_id)
    return job


@ANSWERS(subjects.LIST_INFERENCE_RESULTS)
async def results(rt: Runtime, request: ResultsRequest, ctx: RequestContext) -> JobResults:
    """Ranking: its picks, best first; other jobs: every sample gone through, in order."""
    row = await fetch(rt.db, request.project_id, request.job_id)
    order = "rank" if row["kind"] == "ranking" else "seq"
    page, next_cursor = await keyset_page(
        rt.db,
        "SELECT seq, rank, sample_id, score, predictions FROM job_results "
        f"WHERE job_id = $1 AND phase = 'pool' AND {order} IS NOT NULL",
        [row["id"]],
        request.query.cursor,
        request.query.limit,
        key=(order,),
        types=(int,),
    )
    items = [
        JobResult(
            sample_id=str(r["sample_id"]),
            rank=r["rank"],
            score=r["score"],
            predictions=msgspec.convert(r["predictions"], Predictions) if r["predictions"] else None,
        )
        for r in page
    ]
    return JobResults(items=items, next_cursor=next_cursor)
