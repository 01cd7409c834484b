"""Work queues: the next sample to label or to review, handed to one caller at a time under a lock
that expires after `label_lock_s`, so a sample someone walked away from comes back by itself.

A lock counts while it has not expired and its label is still in the queue's in-progress status:
writing the label (LABELED, or a review to REVIEWED / REJECTED) ends it with no further step.
Picking takes the sample's row FOR UPDATE SKIP LOCKED, so callers asking at once get different
samples.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg
import msgspec

from proto import subjects
from proto.annotation import LabelStatus
from proto.catalog import Role, role_at_least
from proto.common import Caller, Empty
from proto.review import Assignment, LockRef, NextSampleReply, NextSampleRequest, QueueKind
from services.annotation import labels
from shared.bus import RequestContext
from shared.errors import LoupeError
from shared.ids import parse_uuid
from shared.service import Answers, Runtime

ANSWERS = Answers()


class Queue(msgspec.Struct, frozen=True):
    role: Role  # the least project role that may take work from it
    eligible: tuple[LabelStatus, ...]  # label statuses waiting for this queue
    in_progress: LabelStatus  # what a handed-out label is moved to
    assignee: str  # the samples column naming who the sample is meant for


QUEUES: dict[QueueKind, Queue] = {
    "label": Queue("labeler", ("UNLABELED", "PRELABELED", "REJECTED"), "LABELING_IN_PROGRESS", "labeler_id"),
    "review": Queue("reviewer", ("LABELED",), "REVIEWING_IN_PROGRESS", "reviewer_id"),
}

# The caller's own live lock in this queue: asking again resumes it.
HELD = """
SELECT k.sample_id AS id, s.dataset_id, s.name, l.version, k.expires_at
FROM queue_locks k JOIN labels l USING (labelset_id, sample_id) JOIN samples s ON s.id = k.sample_id
WHERE k.labelset_id = $1 AND k.queue = $2 AND k.locked_by = $3 AND k.expires_at > $4 AND l.status = $5
  AND ($6::uuid IS NULL OR s.dataset_id = $6)
ORDER BY k.expires_at LIMIT 1
"""

# The first sample waiting in the queue: meant for the caller first, then by priority and age. A
# label in progress is waiting again once its lock has expired (or it never had one).
PICK = """
SELECT s.id, s.dataset_id, s.name, coalesce(l.status, 'UNLABELED') AS status, k.previous_status
FROM samples s
LEFT JOIN labels l ON l.labelset_id = $2 AND l.sample_id = s.id
LEFT JOIN queue_locks k ON k.labelset_id = $2 AND k.sample_id = s.id AND k.queue = $3
WHERE s.project_id = $1 AND ($4::uuid IS NULL OR s.dataset_id = $4) AND ($5::uuid IS NULL OR s.id = $5)
  AND (s.{assignee} IS NULL OR s.{assignee} = $6)
  AND (coalesce(l.status, 'UNLABELED') = ANY($7::text[])
       OR (l.status = $8 AND (k.expires_at IS NULL OR k.expires_at <= $9)))
ORDER BY s.{assignee} IS NULL, s.priority DESC, s.created_at, s.id
LIMIT 1 FOR UPDATE OF s SKIP LOCKED
"""


def user_of(caller: Caller | None) -> uuid.UUID | None:
    """The user samples may be assigned to; organisation keys have none."""
    return uuid.UUID(caller.user_id) if caller and caller.user_id else None


async def pick(
    conn: asyncpg.Connection, scope: labels.Scope, kind: QueueKind, dataset: uuid.UUID | None, user: uuid.UUID | None
) -> asyncpg.Record | None:
    """Lock the first waiting sample. The candidate is checked again once its row is ours: the
    statement that found it may have looked before a rival holding that row committed its lock."""
    queue = QUEUES[kind]
    sql = PICK.format(assignee=queue.assignee)
    while True:
        found = await conn.fetchrow(
            sql,
            scope.project_id,
            scope.labelset_id,
            kind,
            dataset,
            None,
            user,
            queue.eligible,
            queue.in_progress,
            scope.now,
        )
        if found is None:
            return None
        confirmed = await conn.fetchrow(
            sql,
            scope.project_id,
            scope.labelset_id,
            kind,
            dataset,
            found["id"],
            user,
            queue.eligible,
            queue.in_progress,
            scope.now,
        )
        if confirmed is not None:
            return confirmed


def to_reply(
    request: NextSampleRequest,
    scope: labels.Scope,
    holder: str,
    sample: asyncpg.Record,
    version: int,
    expires_at: datetime,
) -> NextSampleReply:
    return NextSampleReply(
        assignment=Assignment(
            project_id=request.project_id,
            sample_id=str(sample["id"]),
            dataset_id=str(sample["dataset_id"]),
            name=sample["name"],
            labelset=scope.labelset,
            queue=request.queue,
            status=QUEUES[request.queue].in_progress,
            label_version=version,
            locked_by=holder,
            expires_at=expires_at,
        )
    )


@ANSWERS(subjects.NEXT_SAMPLE)
async def next_sample(rt: Runtime, request: NextSampleRequest, ctx: RequestContext) -> NextSampleReply:
    queue = QUEUES[request.queue]
    body = request.body
    role = ctx.caller.role if ctx.caller else None
    if role is not None and not role_at_least(role, queue.role):
        raise LoupeError(
            "forbidden",
            f"the {request.queue} queue needs the {queue.role} role; you are {role}",
            path="queue",
            role=role,
            needed=queue.role,
        )
    dataset = parse_uuid(body.dataset_id, "dataset", "$.dataset_id") if body.dataset_id is not None else None
    async with rt.db.acquire() as conn, conn.transaction():
        scope = await labels.scope_of(conn, request.project_id, body.labelset, ctx.caller)
        holder = scope.actor
        if holder is None:
            raise LoupeError("forbidden", "work queues hand samples to a user or an API key; send a caller")
        held = await conn.fetchrow(
            HELD, scope.labelset_id, request.queue, holder, scope.now, queue.in_progress, dataset
        )
        if held is not None:
            return to_reply(request, scope, holder, held, held["version"], held["expires_at"])
        found = await pick(conn, scope, request.queue, dataset, user_of(ctx.caller))
        if found is None:
            return NextSampleReply(assignment=None)
        previous = found["status"]
        if previous == queue.in_progress and found["previous_status"]:
            previous = found["previous_status"]  # taken over from an expired lock: keep where the label came from
        version = await labels.change_status(conn, scope, found["id"], queue.in_progress, "queue")
        expires_at = scope.now + timedelta(seconds=rt.settings.label_lock_s)
        await conn.execute(
            "INSERT INTO queue_locks (labelset_id, sample_id, queue, locked_by, expires_at, previous_status) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (labelset_id, sample_id) DO UPDATE SET queue = $3, "
            "locked_by = $4, expires_at = $5, previous_status = $6",
            scope.labelset_id,
            found["id"],
            request.queue,
            holder,
            expires_at,
            previous,
        )
        return to_reply(request, scope, holder, found, version, expires_at)


@ANSWERS(subjects.RELEASE_LOCK)
async def release(rt: Runtime, request: LockRef, ctx: RequestContext) -> Empty:
    """Give a handed-out sample back: its label returns to the status it had, if it is still in
    progress. Releasing a sample nobody holds does nothing."""
    sample = parse_uuid(request.sample_id, "sample")
    async with rt.db.acquire() as conn, conn.transaction():
        scope = await labels.scope_of(conn, request.project_id, request.labelset, ctx.caller)
        lock = await conn.fetchrow(
            "SELECT queue, locked_by, previous_status FROM queue_locks "
            "WHERE labelset_id = $1 AND sample_id = $2 FOR UPDATE",
            scope.labelset_id,
            sample,
        )
        if lock is None:
            return Empty()
        if lock["locked_by"] != scope.actor and scope.role is not None and not role_at_least(scope.role, "manager"):
            raise LoupeError(
                "forbidden",
                f"sample {sample} is locked by {lock['locked_by']}; only they or a manager may release it",
                path="sample_id",
                locked_by=lock["locked_by"],
            )
        await conn.execute(
            "DELETE FROM queue_locks WHERE labelset_id = $1 AND sample_id = $2", scope.labelset_id, sample
        )
        label = (await labels.lock_labels(conn, scope, [sample]))[sample]
        in_progress = label["status"] == QUEUES[lock["queue"]].in_progress
        if in_progress and label["status"] != lock["previous_status"]:
            # Not a workflow step: it undoes the queue's own move (REJECTED → LABELING_IN_PROGRESS has
            # no way back in the workflow), so it is written directly.
            await labels.set_label_fields(conn, scope, sample, label, {"status": lock["previous_status"]})
            await labels.finish(conn, scope, [sample])
    return Empty()
