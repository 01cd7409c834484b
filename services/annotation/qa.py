"""Label QA runs: a predictions labelset compared with ground truth (qa_compare) as a job, and the
findings it stores, which reviewers resolve.

The job goes through the samples that have a predictions label (one whose status is UNLABELED, as a
deleted label is, counts as none), in slices ordered by sample id. Each slice's findings, the run's
progress and its cursor (the last sample compared) commit together, so a killed process's job
resumes after the last stored slice and never stores a finding twice; a slice another delivery
stored first is thrown away. Comparing runs in a thread so the service keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime

import asyncpg
import msgspec

from proto import subjects
from proto.annotation import LabelObject
from proto.releases import ReleaseLabel
from proto.review import (
    CreateQaRunRequest,
    Finding,
    FindingPage,
    ListFindingsRequest,
    ListQaRunsRequest,
    QaJob,
    QaOptions,
    QaRun,
    QaRunList,
    QaRunRef,
    ResolveFindingRequest,
)
from proto.samples import DatasetRef
from proto.schema import LabelSchema
from services.annotation import labelsets
from services.annotation.labels import decode_attributes, decode_object
from services.annotation.qa_compare import FindingDraft, compare
from services.annotation.refs import label_schema
from shared import outbox
from shared.bus import RequestContext, encoder
from shared.callers import actor, service_caller
from shared.consumers import Delivery
from shared.errors import LoupeError, invalid, not_found
from shared.ids import parse_uuid
from shared.rows import from_row, one_of_project
from shared.service import Answers, Runtime

ANSWERS = Answers()

SLICE = 500  # samples compared per transaction
FINISHED = ("SUCCEEDED", "FAILED")
TRANSIENT = ("unavailable", "internal")  # error codes worth another delivery

decode_options = msgspec.json.Decoder(QaOptions).decode
decode_counts = msgspec.json.Decoder(dict[str, int]).decode

RUN_SELECT = (
    "SELECT r.id, r.project_id, g.name AS ground_truth, p.name AS predictions, r.dataset_id, "
    "r.options::text AS options, r.state, r.samples, r.findings, r.counts::text AS counts, r.error, "
    "r.created_at, r.finished_at FROM qa_runs r JOIN labelsets g ON g.id = r.ground_truth "
    "JOIN labelsets p ON p.id = r.predictions"
)
FINDING_COLUMNS = (
    "id, run_id, sample_id, kind, ground_truth_object_id, prediction_object_id, class_id, "
    "predicted_class_id, tag_class_id, attribute_id, iou, confidence, resolution, resolved_by, "
    "resolved_at"
)
DRAFT_FIELDS = (
    "ground_truth_object_id",
    "prediction_object_id",
    "class_id",
    "predicted_class_id",
    "tag_class_id",
    "attribute_id",
)  # ids, stored as uuid


def to_run(row: asyncpg.Record) -> QaRun:
    return from_row(QaRun, row, options=decode_options(row["options"]), counts=decode_counts(row["counts"]))


def to_finding(row: asyncpg.Record) -> Finding:
    return from_row(Finding, row)


async def fetch_run(conn: asyncpg.Connection | asyncpg.Pool, project_id: str, run_id: str) -> QaRun:
    query = f"{RUN_SELECT} WHERE r.id = $1 AND r.project_id = $2"
    return to_run(await one_of_project(conn, query, "QA run", run_id, project_id))


# -- commands ---------------------------------------------------------------------------------------


async def resolve_labelset(conn: asyncpg.Connection, project_id: uuid.UUID, name: str, path: str) -> uuid.UUID:
    try:
        return (await labelsets.resolve(conn, project_id, name))["id"]
    except LoupeError as error:
        error.details["path"] = path
        raise


@ANSWERS(subjects.CREATE_QA_RUN)
async def create(rt: Runtime, request: CreateQaRunRequest, ctx: RequestContext) -> QaRun:
    caller = ctx.require_caller()
    project = parse_uuid(request.project_id, "project")
    body = request.run
    if body.predictions == body.ground_truth:
        raise invalid(
            f"`predictions` and `ground_truth` are both {body.ground_truth!r}; compare two different "
            "labelsets, e.g. a model's predictions with ground-truth",
            path="$.predictions",
        )
    dataset = None
    if body.dataset_id is not None:
        dataset = parse_uuid(body.dataset_id, "dataset", "$.dataset_id")
        await rt.nats.request(
            subjects.GET_DATASET, DatasetRef(project_id=request.project_id, dataset_id=body.dataset_id), caller=caller
        )
    async with rt.db.acquire() as conn, conn.transaction():
        truth = await resolve_labelset(conn, project, body.ground_truth, "$.ground_truth")
        predictions = await resolve_labelset(conn, project, body.predictions, "$.predictions")
        run_id = await conn.fetchval(
            "INSERT INTO qa_runs (project_id, org_id, ground_truth, predictions, dataset_id, options, created_by) "
            "VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7) RETURNING id",
            project,
            caller.org_id,
            truth,
            predictions,
            dataset,
            encoder.encode(body.options).decode(),
            actor(caller),
        )
        await outbox.submit_job(conn, subjects.QA_JOB, QaJob(run_id=str(run_id)), str(run_id))
        return await fetch_run(conn, request.project_id, str(run_id))


@ANSWERS(subjects.LIST_QA_RUNS)
async def list_runs(rt: Runtime, request: ListQaRunsRequest, ctx: RequestContext) -> QaRunList:
    rows = await rt.db.fetch(
        f"{RUN_SELECT} WHERE r.project_id = $1 ORDER BY r.created_at DESC, r.id",
        parse_uuid(request.project_id, "project"),
    )
    return QaRunList(items=[to_run(row) for row in rows])


@ANSWERS(subjects.GET_QA_RUN)
async def get_run(rt: Runtime, request: QaRunRef, ctx: RequestContext) -> QaRun:
    return await fetch_run(rt.db, request.project_id, request.run_id)


@ANSWERS(subjects.LIST_FINDINGS)
async def list_findings(rt: Runtime, request: ListFindingsRequest, ctx: RequestContext) -> FindingPage:
    run = await fetch_run(rt.db, request.project_id, request.run_id)
    query = request.query
    where = (
        "run_id = $1 AND ($2::text IS NULL OR kind = $2) AND ($3::bool IS NULL OR (resolution IS NOT NULL) = $3) "
        "AND ($4::uuid IS NULL OR sample_id = $4)"
    )
    args = (
        uuid.UUID(run.id),
        query.kind,
        query.resolved,
        query.sample_id and parse_uuid(query.sample_id, "sample", "sample_id"),
    )
    rows = await rt.db.fetch(
        f"SELECT {FINDING_COLUMNS} FROM qa_findings WHERE {where} ORDER BY sample_id, seq OFFSET $5 LIMIT $6",
        *args,
        query.offset,
        query.limit,
    )
    total = await rt.db.fetchval(f"SELECT count(*) FROM qa_findings WHERE {where}", *args)
    return FindingPage(items=[to_finding(row) for row in rows], total=total)


@ANSWERS(subjects.RESOLVE_FINDING)
async def resolve_finding(rt: Runtime, request: ResolveFindingRequest, ctx: RequestContext) -> Finding:
    resolution = request.body.resolution
    resolved = (actor(ctx.caller), datetime.now(UTC)) if resolution else (None, None)
    row = await rt.db.fetchrow(
        f"UPDATE qa_findings SET resolution = $3, resolved_by = $4, resolved_at = $5 "
        f"WHERE id = $1 AND run_id IN (SELECT id FROM qa_runs WHERE project_id = $2) RETURNING {FINDING_COLUMNS}",
        parse_uuid(request.finding_id, "finding"),
        parse_uuid(request.project_id, "project"),
        resolution,
        *resolved,
    )
    if row is None:
        raise not_found("finding", request.finding_id)
    return to_finding(row)


# -- the job ----------------------------------------------------------------------------------------


async def run_job(rt: Runtime, job: QaJob, delivery: Delivery) -> None:
    run_id = uuid.UUID(job.run_id)
    run = await rt.db.fetchrow(
        "SELECT project_id, org_id, ground_truth, predictions, dataset_id, "
        "options::text AS options, state FROM qa_runs WHERE id = $1",
        run_id,
    )
    if run is None or run["state"] in FINISHED:  # deleted with a labelset, or delivered again after it ended
        return
    try:
        schema = await label_schema(rt, str(run["project_id"]), service_caller("annotation", run["org_id"]))
        await rt.db.execute("UPDATE qa_runs SET state = 'RUNNING' WHERE id = $1 AND state = 'PENDING'", run_id)
        while await compare_slice(rt, run_id, run, schema):
            pass
    except LoupeError as exc:
        if exc.code in TRANSIENT and delivery.attempt < rt.settings.job_max_deliveries:
            raise
        await finish(rt, run_id, "FAILED", exc.message)
        return
    except Exception as exc:  # a database or bus hiccup may pass: the consumer delivers it again
        if delivery.attempt < rt.settings.job_max_deliveries:
            raise
        await finish(rt, run_id, "FAILED", f"{type(exc).__name__}: {exc}")
        return
    await finish(rt, run_id, "SUCCEEDED")


async def compare_slice(rt: Runtime, run_id: uuid.UUID, run: asyncpg.Record, schema: LabelSchema) -> bool:
    """Compare the samples after the run's cursor and store what was found; False when none are left
    or the run ended meanwhile."""
    progress = await rt.db.fetchrow("SELECT cursor FROM qa_runs WHERE id = $1 AND state = 'RUNNING'", run_id)
    if progress is None:
        return False
    samples = await rt.db.fetch(
        "SELECT s.id, s.width, s.height FROM labels l JOIN samples s ON s.id = l.sample_id "
        "WHERE l.labelset_id = $1 AND l.version > 0 AND l.status <> 'UNLABELED' "
        "AND ($2::uuid IS NULL OR l.sample_id > $2) AND ($3::uuid IS NULL OR s.dataset_id = $3) "
        "ORDER BY l.sample_id LIMIT $4",
        run["predictions"],
        progress["cursor"],
        run["dataset_id"],
        SLICE,
    )
    if not samples:
        return False
    ids = [sample["id"] for sample in samples]
    truth = await read_labels(rt.db, run["ground_truth"], ids)
    predicted = await read_labels(rt.db, run["predictions"], ids)
    found = await asyncio.to_thread(compare_samples, samples, truth, predicted, decode_options(run["options"]), schema)
    async with rt.db.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(
            "SELECT cursor, counts::text AS counts FROM qa_runs WHERE id = $1 AND state = 'RUNNING' FOR UPDATE", run_id
        )
        if current is None:
            return False
        if current["cursor"] != progress["cursor"]:  # another delivery stored this slice first
            return True
        await conn.copy_records_to_table(
            "qa_findings",
            columns=("run_id", "sample_id", "kind", *DRAFT_FIELDS, "iou", "confidence"),
            records=[finding_record(run_id, sample, draft) for sample, draft in found],
        )
        counts = Counter(decode_counts(current["counts"])) + Counter(draft.kind for _, draft in found)
        await conn.execute(
            "UPDATE qa_runs SET cursor = $2, samples = samples + $3, findings = findings + $4, "
            "counts = $5::text::jsonb WHERE id = $1",
            run_id,
            ids[-1],
            len(ids),
            len(found),
            encoder.encode(dict(counts)).decode(),
        )
    return True


def finding_record(run_id: uuid.UUID, sample_id: uuid.UUID, draft: FindingDraft) -> tuple[object, ...]:
    ids = (getattr(draft, field) for field in DRAFT_FIELDS)
    return (run_id, sample_id, draft.kind, *(uuid.UUID(i) if i else None for i in ids), draft.iou, draft.confidence)


async def read_labels(
    conn: asyncpg.Pool, labelset_id: uuid.UUID, sample_ids: list[uuid.UUID]
) -> dict[uuid.UUID, ReleaseLabel]:
    """The labels these samples have in the labelset, with their objects in label order."""
    objects: dict[uuid.UUID, list[LabelObject]] = defaultdict(list)
    for row in await conn.fetch(
        "SELECT sample_id, body::text AS body FROM objects WHERE labelset_id = $1 "
        "AND sample_id = ANY($2::uuid[]) ORDER BY sample_id, seq",
        labelset_id,
        sample_ids,
    ):
        objects[row["sample_id"]].append(decode_object(row["body"]))
    rows = await conn.fetch(
        "SELECT sample_id, status, score, tag_class_ids, attributes::text AS attributes "
        "FROM labels WHERE labelset_id = $1 AND sample_id = ANY($2::uuid[]) AND version > 0",
        labelset_id,
        sample_ids,
    )
    return {
        row["sample_id"]: ReleaseLabel(
            status=row["status"],
            score=row["score"],
            objects=objects[row["sample_id"]],
            tag_class_ids=[str(t) for t in row["tag_class_ids"]],
            attributes=decode_attributes(row["attributes"]),
        )
        for row in rows
    }


def compare_samples(
    samples: list[asyncpg.Record],
    truth: dict[uuid.UUID, ReleaseLabel],
    predicted: dict[uuid.UUID, ReleaseLabel],
    options: QaOptions,
    schema: LabelSchema,
) -> list[tuple[uuid.UUID, FindingDraft]]:
    return [
        (sample["id"], draft)
        for sample in samples
        for draft in compare(
            truth.get(sample["id"]),
            predicted.get(sample["id"]),
            width=sample["width"],
            height=sample["height"],
            options=options,
            schema=schema,
        )
    ]


async def finish(rt: Runtime, run_id: uuid.UUID, state: str, error: str | None = None) -> None:
    """End the run and announce it, unless it already ended."""
    async with rt.db.acquire() as conn, conn.transaction():
        ended = await conn.fetchval(
            "UPDATE qa_runs SET state = $2, error = $3, finished_at = now() "
            "WHERE id = $1 AND NOT state = ANY($4::text[]) RETURNING true",
            run_id,
            state,
            error,
            list(FINISHED),
        )
        if ended:
            run = to_run(await conn.fetchrow(f"{RUN_SELECT} WHERE r.id = $1", run_id))
            await outbox.emit(conn, subjects.QA_RUN_FINISHED, run, run.project_id)
