"""The `inference-job` job: one pass over a job's selection through its model version.

The pass goes a slice at a time in the catalog's `created_at` order. A producer reads the next page,
downloads and decodes its images while the current slice is inferred and written, so Triton always has
batches in flight. Each slice is recorded in one transaction (its results, the cursor after it, the
counts) before it is announced; a job delivered again after its process died (JetStream redelivers once
the heartbeats stop) continues after the last recorded slice. Whatever a slice wrote before a crash it
writes again identically (a label is put whole; a vector is upserted), so nothing is duplicated.

Kinds differ only in what a slice does with its predictions (`Work`): auto-label writes labels, embeddings
stores vectors, ranking keeps scores (and, for core-set, embeddings) and ranks at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import msgspec
import numpy as np

from proto import subjects
from proto.annotation import (
    CreateLabelset,
    CreateLabelsetRequest,
    GetLabels,
    GetLabelsRequest,
    Label,
    LabelItem,
    LabelStatus,
    PutLabels,
    PutLabelsRequest,
)
from proto.common import Caller
from proto.embeddings import EmbeddingItem, PutEmbeddings
from proto.inference import (
    FINISHED_STATES,
    PREDICTIONS_LABELSET,
    AutoLabel,
    Embed,
    InferenceJobRun,
    JobProgressed,
    JobSpec,
    Predictions,
    Rank,
    Selection,
    Thresholds,
)
from proto.samples import Sample, SampleUpdate, UpdateSamples, UpdateSamplesRequest
from proto.schema import GetSchema
from proto.search import (
    CreateView,
    CreateViewRequest,
    LabelFilter,
    RunView,
    RunViewRequest,
    SampleFilter,
    SamplePage,
    SearchQuery,
    SearchSamples,
    ViewItems,
    ViewItemsRequest,
)
from services.inference import heuristics, jobs, shapes
from services.inference.state import DECODER, TRITON
from services.inference.versions import ServedVersion
from shared import object_keys, outbox
from shared.callers import service_caller
from shared.consumers import Delivery
from shared.errors import LoupeError
from shared.predictions import Prediction, decode, softmax
from shared.service import Runtime
from shared.storage import ObjectMissing

log = logging.getLogger(__name__)

SLICE = 64  # samples per page, recorded together
DOWNLOADS_AT_ONCE = 16
PAGES_AHEAD = 2
# Core-set compares the pool with this many labelled samples at most (the most recent).
LABELLED_LIMIT = 5000
# What ranking by uncertainty reads of detections: CenterNet's whole low-score tail.
RANKING_THRESHOLDS = Thresholds(confidence=0.05)
LABELLED_STATUSES: tuple[LabelStatus, ...] = ("LABELED", "REVIEWED", "VERIFIED")
VIEW_CHUNK = 1000
PRIORITY_CHUNK = 1000


class Cancelled(Exception):
    pass


@dataclass
class Slice:
    samples: list[Sample]
    decoded: list[tuple[np.ndarray, tuple[int, int]] | None]
    next_cursor: str | None


@dataclass
class Outcome:
    """What a slice did, per sample in its order: the results rows, and counts."""

    results: list[tuple[uuid.UUID, float | None, bytes | None, dict | None]] = field(default_factory=list)
    written: int = 0
    skipped: int = 0


async def run_job(rt: Runtime, message: InferenceJobRun, delivery: Delivery) -> None:
    row = await rt.db.fetchrow("SELECT * FROM jobs WHERE id = $1", uuid.UUID(message.job_id))
    if row is None or row["state"] in FINISHED_STATES:
        return  # a redelivery of a finished job
    if row["cancel_requested"]:
        await finish(rt, message.job_id, "CANCELLED")
        return
    async with rt.db.acquire() as conn, conn.transaction():
        job = await jobs.update(
            conn,
            message.job_id,
            "state = 'RUNNING', started_at = coalesce(started_at, now()), "
            "resumed = resumed + CASE WHEN state = 'RUNNING' THEN 1 ELSE 0 END",
        )
        await outbox.emit(conn, subjects.INFERENCE_JOB_CHANGED, job, job.project_id)
    caller = service_caller("inference", str(row["org_id"]))
    served = jobs.served_of(row)
    try:
        work = await make_work(rt, row, served, caller)
        if row["phase"] == "labelled":
            labelled = labelled_selection(work.spec.selection)
            await go_through(rt, row, served, caller, work, "labelled", labelled)
            await rt.db.execute("UPDATE jobs SET phase = 'pool', cursor = NULL WHERE id = $1", row["id"])
            row = await rt.db.fetchrow("SELECT * FROM jobs WHERE id = $1", row["id"])
        await go_through(rt, row, served, caller, work, "pool", work.spec.selection)
        await work.finish(row["id"])
    except Cancelled:
        await finish(rt, message.job_id, "CANCELLED")
        return
    except LoupeError as error:
        if error.code in ("unavailable", "timeout") and delivery.attempt < rt.settings.job_max_deliveries:
            raise  # Triton or a service is away: retried with backoff from the last slice
        await finish(rt, message.job_id, "FAILED", error.message)
        return
    except Exception as error:
        if delivery.attempt < rt.settings.job_max_deliveries:
            raise
        await finish(
            rt, message.job_id, "FAILED", f"failed {delivery.attempt} times, last: {type(error).__name__}: {error}"
        )
        return
    await finish(rt, message.job_id, "SUCCEEDED")


def labelled_selection(pool: Selection) -> Selection:
    """What core-set measures the pool against: samples with a person's ground truth, of the pool's datasets."""
    within = pool.filter or SampleFilter()
    labelled = SampleFilter(dataset_ids=within.dataset_ids, labels=LabelFilter(status=list(LABELLED_STATUSES)))
    return Selection(filter=labelled, limit=LABELLED_LIMIT)


async def finish(rt: Runtime, job_id: str, state: str, error: str | None = None) -> None:
    async with rt.db.acquire() as conn, conn.transaction():
        job = await jobs.update(conn, job_id, "state = $2, error = $3, finished_at = now()", state, error)
        await outbox.emit(conn, subjects.INFERENCE_JOB_CHANGED, job, job.project_id)


# -- the pass ---------------------------------------------------------------------------------------


async def go_through(
    rt: Runtime,
    row: asyncpg.Record,
    served: ServedVersion,
    caller: Caller,
    work: Work,
    phase: str,
    selection: Selection,
) -> None:
    job_id, project_id = row["id"], str(row["project_id"])
    done = row["done"] if phase == "pool" else 0
    seq = await rt.db.fetchval(
        "SELECT coalesce(max(seq) + 1, 0) FROM job_results WHERE job_id = $1 AND phase = $2", job_id, phase
    )
    left = None if selection.limit is None else selection.limit - (done if phase == "pool" else seq)
    async for part in slices(rt, project_id, selection, row["cursor"], left, served.image_size, caller):
        began = time.monotonic()
        if await rt.db.fetchval("SELECT cancel_requested FROM jobs WHERE id = $1", job_id):
            raise Cancelled
        predictions, embeddings = await infer(rt, served, part, work.thresholds)
        outcome = await work.apply(part.samples, predictions, embeddings)
        failed = sum(decoded is None for decoded in part.decoded)
        async with rt.db.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO job_results (job_id, phase, seq, sample_id, score, embedding, predictions) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                [(job_id, phase, seq + i, *result) for i, result in enumerate(outcome.results)],
            )
            if phase == "pool":
                job = await jobs.update(
                    conn,
                    str(job_id),
                    "cursor = $2, done = done + $3, written = written + $4, skipped = skipped + $5, "
                    "failed = failed + $6, seconds = seconds + $7",
                    part.next_cursor,
                    len(part.samples),
                    outcome.written,
                    outcome.skipped,
                    failed,
                    time.monotonic() - began,
                )
                await outbox.emit(
                    conn,
                    subjects.INFERENCE_JOB_PROGRESSED,
                    JobProgressed(
                        job_id=job.id,
                        project_id=job.project_id,
                        kind=job.kind,
                        done=job.done,
                        total=job.total,
                        written=job.written,
                        images_per_s=job.images_per_s or 0.0,
                        eta_s=job.eta_s,
                    ),
                    job.project_id,
                )
            else:
                await conn.execute("UPDATE jobs SET cursor = $2 WHERE id = $1", job_id, part.next_cursor)
        seq += len(part.samples)


async def slices(
    rt: Runtime,
    project_id: str,
    selection: Selection,
    cursor: str | None,
    left: int | None,
    image_size: int,
    caller: Caller,
) -> AsyncIterator[Slice]:
    """Pages of the selection after `cursor`, their images downloaded and decoded, `PAGES_AHEAD` ahead."""
    ready: asyncio.Queue[Slice | None] = asyncio.Queue(PAGES_AHEAD)

    async def produce() -> None:
        nonlocal cursor, left
        while left is None or left > 0:
            page = await read_page(
                rt, project_id, selection, cursor, SLICE if left is None else min(SLICE, left), caller
            )
            if not page.items:
                break
            images = await download(rt, page.items)
            decoded = await rt.state[DECODER].many(images, image_size)
            await ready.put(Slice(page.items, decoded, page.next_cursor))
            cursor = page.next_cursor
            left = None if left is None else left - len(page.items)
            if cursor is None:
                break
        await ready.put(None)

    producer = asyncio.create_task(produce())
    try:
        while (part := await ready.get()) is not None:
            yield part
        await producer  # raises what the producer raised
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await producer


async def read_page(
    rt: Runtime, project_id: str, selection: Selection, cursor: str | None, limit: int, caller: Caller
) -> SamplePage:
    if selection.view_id is not None:
        page = RunView(limit=limit, cursor=cursor, sort="created_at")
        request = RunViewRequest(project_id=project_id, view_id=selection.view_id, page=page)
        return await rt.nats.request(subjects.RUN_VIEW, request, caller=caller)
    fields = msgspec.structs.asdict(selection.filter or SampleFilter())
    query = SearchQuery(**fields, sort="created_at", limit=limit, cursor=cursor)
    return await rt.nats.request(
        subjects.SEARCH_SAMPLES, SearchSamples(project_id=project_id, query=query), caller=caller
    )


async def download(rt: Runtime, samples: list[Sample]) -> list[bytes | None]:
    """Each sample's original; None where it is kept outside Loupe or gone from storage."""
    gate = asyncio.Semaphore(DOWNLOADS_AT_ONCE)

    async def one(sample: Sample) -> bytes | None:
        if sample.content_hash is None:
            return None
        async with gate:
            try:
                return await rt.storage.get_bytes("media", object_keys.original(sample.content_hash))
            except ObjectMissing:
                return None

    return list(await asyncio.gather(*(one(sample) for sample in samples)))


async def infer(
    rt: Runtime, served: ServedVersion, part: Slice, thresholds: Thresholds
) -> tuple[list[Prediction | None], list[np.ndarray | None]]:
    """Per sample its prediction, and (segmentation, for ranking) its pixel probabilities; None where its
    image could not be read."""
    readable = [i for i, decoded in enumerate(part.decoded) if decoded is not None]
    predictions: list[Prediction | None] = [None] * len(part.samples)
    pixels: list[np.ndarray | None] = [None] * len(part.samples)
    if not readable:
        return predictions, pixels
    batch = np.stack([part.decoded[i][0] for i in readable])  # type: ignore[index]
    outputs = await rt.state[TRITON].infer(served.triton_model, served.version, served.image_size, batch)
    originals = [part.decoded[i][1] for i in readable]  # type: ignore[index]
    decoded = await asyncio.to_thread(
        decode,
        served.spec,
        outputs,
        served.image_size,
        originals,
        min_score=thresholds.confidence,
        max_detections=thresholds.max_detections,
        min_size=thresholds.min_size,
        mask_threshold=thresholds.mask_threshold,
    )
    for position, (index, prediction) in enumerate(zip(readable, decoded, strict=True)):
        predictions[index] = prediction
        if served.family == "segmentation":
            # C×H×W class probabilities per pixel, as the heuristics take them.
            pixels[index] = np.moveaxis(softmax(np.moveaxis(outputs["mask_logits"][position], 0, -1)), -1, 0)
    return predictions, pixels


# -- what a slice does, per kind --------------------------------------------------------------------


class Work:
    spec: JobSpec
    thresholds: Thresholds = Thresholds()

    async def apply(
        self, samples: list[Sample], predictions: list[Prediction | None], pixels: list[np.ndarray | None]
    ) -> Outcome:
        raise NotImplementedError

    async def finish(self, job_id: uuid.UUID) -> None:
        """After the last slice."""


async def make_work(rt: Runtime, row: asyncpg.Record, served: ServedVersion, caller: Caller) -> Work:
    spec = msgspec.convert(row["spec"], JobSpec)
    project_id = str(row["project_id"])
    if isinstance(spec, AutoLabel):
        return await AutoLabelWork.start(rt, project_id, spec, served, caller)
    if isinstance(spec, Embed):
        return EmbedWork(rt, project_id, spec, served, caller)
    return RankWork(rt, project_id, spec, served, caller, row)


class AutoLabelWork(Work):
    spec: AutoLabel

    def __init__(
        self,
        rt: Runtime,
        project_id: str,
        spec: AutoLabel,
        served: ServedVersion,
        caller: Caller,
        vocabulary: shapes.Vocabulary,
    ) -> None:
        self.rt, self.project_id, self.spec, self.served, self.caller = rt, project_id, spec, served, caller
        self.thresholds = spec.thresholds
        self.vocabulary = vocabulary
        self.labelset = PREDICTIONS_LABELSET if spec.target == "predictions" else "ground-truth"
        groups = [name for name, _ in served.spec.tag_groups] + ([served.tag_group] if served.tag_group else [])
        self.predicted_tags = vocabulary.tags_of(groups)

    @classmethod
    async def start(
        cls, rt: Runtime, project_id: str, spec: AutoLabel, served: ServedVersion, caller: Caller
    ) -> AutoLabelWork:
        schema = await rt.nats.request(subjects.GET_LABEL_SCHEMA, GetSchema(project_id=project_id), caller=caller)
        if spec.target == "predictions":
            with contextlib.suppress(LoupeError):  # it exists already
                await rt.nats.request(
                    subjects.CREATE_LABELSET,
                    CreateLabelsetRequest(
                        project_id=project_id,
                        labelset=CreateLabelset(
                            name=PREDICTIONS_LABELSET, description="Model predictions written by auto-label jobs"
                        ),
                    ),
                    caller=caller,
                )
        return cls(rt, project_id, spec, served, caller, shapes.Vocabulary.of(schema))

    async def apply(
        self, samples: list[Sample], predictions: list[Prediction | None], pixels: list[np.ndarray | None]
    ) -> Outcome:
        found: list[Predictions | None] = [
            None
            if prediction is None
            else shapes.predictions(self.served, prediction, (s.height, s.width), self.vocabulary, self.thresholds)
            for s, prediction in zip(samples, predictions, strict=True)
        ]
        predicted = {s.id: p for s, p in zip(samples, found, strict=True) if p is not None}
        written = await self.write(list(predicted.items()))
        await self.mark_auto_labelled([s for s in samples if s.id in written and s.status == "NEW"])
        return Outcome(
            results=[
                (uuid.UUID(s.id), None, None, msgspec.to_builtins(p) if p is not None else None)
                for s, p in zip(samples, found, strict=True)
            ],
            written=len(written),
            skipped=len(predicted) - len(written),
        )

    async def write(self, predicted: list[tuple[str, Predictions]]) -> set[str]:
        """Write each sample's label with this model's part replaced, in one read and one write for the slice;
        the samples written. A sample keeps its label when it is a person's ground truth or (without
        `replace`) already has this part. Each write names the version it read, so a person's edit meanwhile
        wins and the sample counts as skipped, as does a sample deleted meanwhile."""
        if not predicted:
            return set()
        ids = [uuid.UUID(sample_id) for sample_id, _ in predicted]
        current = (
            await self.rt.nats.request(
                subjects.GET_LABELS,
                GetLabelsRequest(project_id=self.project_id, labelset=self.labelset, body=GetLabels(sample_ids=ids)),
                caller=self.caller,
            )
        ).items
        items = [
            LabelItem(sample_id=uuid.UUID(sample_id), label=shapes.label_input(found, label, self.predicted_tags))
            for (sample_id, found), label in zip(predicted, current, strict=True)
            if self.writes_over(label)
        ]
        if not items:
            return set()
        reply = await self.rt.nats.request(
            subjects.PUT_LABELS,
            PutLabelsRequest(project_id=self.project_id, labelset=self.labelset, body=PutLabels(items=items)),
            caller=self.caller,
        )
        for failed in reply.items:
            if failed.outcome in ("invalid", "forbidden"):  # a prediction the schema refuses: say which
                log.warning(
                    "prediction not written",
                    extra={"sample_id": failed.sample_id, "error": failed.error, "path": failed.path},
                )
        return {r.sample_id for r in reply.items if r.outcome == "written"}

    def writes_over(self, label: Label) -> bool:
        if self.spec.target == "ground-truth" and label.version and label.status != "PRELABELED":
            return False  # a person's label: never overwritten
        return self.spec.replace or not shapes.has_part(label, self.served.family, self.predicted_tags)

    async def mark_auto_labelled(self, samples: list[Sample]) -> None:
        """NEW samples that got a label become AUTO_LABELLED; one whose status moved on meanwhile stays."""
        if not samples:
            return
        body = UpdateSamples(items=[SampleUpdate(id=uuid.UUID(s.id), status="AUTO_LABELLED") for s in samples])
        try:
            await self.rt.nats.request(
                subjects.UPDATE_SAMPLES, UpdateSamplesRequest(project_id=self.project_id, body=body), caller=self.caller
            )
        except LoupeError:
            for item in body.items:  # all or nothing failed: each on its own
                with contextlib.suppress(LoupeError):
                    await self.rt.nats.request(
                        subjects.UPDATE_SAMPLES,
                        UpdateSamplesRequest(project_id=self.project_id, body=UpdateSamples(items=[item])),
                        caller=self.caller,
                    )


class EmbedWork(Work):
    spec: Embed

    def __init__(self, rt: Runtime, project_id: str, spec: Embed, served: ServedVersion, caller: Caller) -> None:
        self.rt, self.project_id, self.spec, self.served, self.caller = rt, project_id, spec, served, caller

    async def apply(
        self, samples: list[Sample], predictions: list[Prediction | None], pixels: list[np.ndarray | None]
    ) -> Outcome:
        items = [
            EmbeddingItem(sample_id=s.id, vector=p.embedding.tolist())
            for s, p in zip(samples, predictions, strict=True)
            if p is not None and p.embedding is not None
        ]
        outcome = Outcome(results=[(uuid.UUID(s.id), None, None, None) for s in samples])
        if items:
            stored = await self.rt.nats.request(
                subjects.PUT_EMBEDDINGS,
                PutEmbeddings(project_id=self.project_id, space=self.served.space, items=items),
                caller=self.caller,
            )
            outcome.written = stored.stored
            outcome.skipped = len(stored.missing)
        return outcome


class RankWork(Work):
    spec: Rank

    def __init__(
        self, rt: Runtime, project_id: str, spec: Rank, served: ServedVersion, caller: Caller, row: asyncpg.Record
    ) -> None:
        self.rt, self.project_id, self.spec, self.served, self.caller = rt, project_id, spec, served, caller
        self.thresholds = RANKING_THRESHOLDS
        self.job_id = str(row["id"])
        self.uses = heuristics.heuristic_for(spec.heuristic, served.family).uses

    def score(self, sample: Sample, prediction: Prediction, pixels: np.ndarray | None) -> float | None:
        if self.uses == "predictions":
            family = self.served.family
            distributions = pixels if family == "segmentation" else heuristics.distributions_of(family, prediction)
            if distributions is None:
                return None
            scores = heuristics.uncertainty_scores(
                self.spec.heuristic, family, [distributions], max_detections=self.thresholds.max_detections
            )
            return float(scores[0])
        if self.uses == "nothing":  # random: a hash of the seed and the sample, the same on every resume
            digest = hashlib.blake2b(f"{self.spec.seed}:{sample.id}".encode(), digest_size=8).digest()
            return int.from_bytes(digest) / 2**64
        return None

    async def apply(
        self, samples: list[Sample], predictions: list[Prediction | None], pixels: list[np.ndarray | None]
    ) -> Outcome:
        outcome = Outcome()
        for sample, prediction, probabilities in zip(samples, predictions, pixels, strict=True):
            if prediction is None:
                continue
            embedding = prediction.embedding
            outcome.results.append(
                (
                    uuid.UUID(sample.id),
                    self.score(sample, prediction, probabilities),
                    embedding.astype("<f4").tobytes() if self.uses == "embeddings" and embedding is not None else None,
                    None,
                )
            )
        outcome.written = len(outcome.results)
        return outcome

    async def finish(self, job_id: uuid.UUID) -> None:
        """Rank the pool, then make the view and raise priorities as asked."""
        if self.uses == "embeddings":
            picks = await self.covering(job_id)
        else:
            rows = await self.rt.db.fetch(
                "SELECT seq, score FROM job_results WHERE job_id = $1 AND phase = 'pool' AND score IS NOT NULL "
                "ORDER BY score DESC, seq LIMIT $2",
                job_id,
                self.spec.count,
            )
            picks = [(row["seq"], row["score"]) for row in rows]
        async with self.rt.db.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE job_results SET rank = NULL WHERE job_id = $1", job_id)
            await conn.executemany(
                "UPDATE job_results SET rank = $3, score = $4 WHERE job_id = $1 AND phase = 'pool' AND seq = $2",
                [(job_id, seq, rank, score) for rank, (seq, score) in enumerate(picks, start=1)],
            )
            ids = [
                str(row["sample_id"])
                for row in await conn.fetch(
                    "SELECT sample_id FROM job_results WHERE job_id = $1 AND rank IS NOT NULL ORDER BY rank", job_id
                )
            ]
        if self.spec.set_priority and ids:
            await self.raise_priorities(ids)
        if self.spec.make_view and ids:
            await self.save_view(job_id, ids)

    async def covering(self, job_id: uuid.UUID) -> list[tuple[int, float]]:
        def vectors(rows: list[asyncpg.Record]) -> np.ndarray:
            return np.stack([np.frombuffer(row["embedding"], "<f4") for row in rows]) if rows else np.zeros((0, 1))

        pool = await self.rt.db.fetch(
            "SELECT seq, embedding FROM job_results WHERE job_id = $1 AND phase = 'pool' AND embedding IS NOT NULL "
            "ORDER BY seq",
            job_id,
        )
        labelled = await self.rt.db.fetch(
            "SELECT embedding FROM job_results WHERE job_id = $1 AND phase = 'labelled' AND embedding IS NOT NULL",
            job_id,
        )
        if not pool:
            return []
        picks = await asyncio.to_thread(
            heuristics.covering_picks, vectors(pool), vectors(labelled) if labelled else None, self.spec.count
        )
        return [(pool[index]["seq"], distance) for index, distance in picks]

    async def raise_priorities(self, ids: list[str]) -> None:
        """Best first in the work queue: the top pick gets the highest priority."""
        for start in range(0, len(ids), PRIORITY_CHUNK):
            items = [
                SampleUpdate(id=uuid.UUID(sample_id), priority=float(len(ids) - start - offset))
                for offset, sample_id in enumerate(ids[start : start + PRIORITY_CHUNK])
            ]
            with contextlib.suppress(LoupeError):  # a sample deleted meanwhile fails only its chunk
                await self.rt.nats.request(
                    subjects.UPDATE_SAMPLES,
                    UpdateSamplesRequest(project_id=self.project_id, body=UpdateSamples(items=items)),
                    caller=self.caller,
                )

    async def save_view(self, job_id: uuid.UUID, ids: list[str]) -> None:
        if await self.rt.db.fetchval("SELECT view_id FROM jobs WHERE id = $1", job_id):
            return  # made before a crash
        view = await self.rt.nats.request(
            subjects.CREATE_VIEW,
            CreateViewRequest(
                project_id=self.project_id,
                view=CreateView(
                    name=f"{self.spec.heuristic} ranking {str(job_id)[:8]}",
                    description=f"The {len(ids)} samples ranking job {job_id} picked with "
                    f"{self.served.model} version {self.served.version}",
                    sample_ids=ids[:VIEW_CHUNK],
                ),
            ),
            caller=self.caller,
        )
        for start in range(VIEW_CHUNK, len(ids), VIEW_CHUNK):
            await self.rt.nats.request(
                subjects.ADD_VIEW_ITEMS,
                ViewItemsRequest(
                    project_id=self.project_id,
                    view_id=view.id,
                    items=ViewItems(sample_ids=ids[start : start + VIEW_CHUNK]),
                ),
                caller=self.caller,
            )
        await self.rt.db.execute("UPDATE jobs SET view_id = $2 WHERE id = $1", job_id, uuid.UUID(view.id))
