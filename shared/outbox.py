"""Transactional outbox: events and jobs are written in the same transaction as the change they
describe, then relayed to JetStream with `Nats-Msg-Id` set, so a crash can at worst publish a row
twice, and JetStream's duplicate window plus idempotent consumers make that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import typing
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import UnionType

import asyncpg
import msgspec
from nats.js import JetStreamContext

from proto import subjects
from proto.common import EventEnvelope
from proto.subjects import Event, Job
from shared import metrics
from shared.bus import encoder

log = logging.getLogger(__name__)

BATCH = 500
PUBLISH_TIMEOUT_S = 10.0  # for a batch's acknowledgements; then the batch is retried
PRUNE_EVERY_S = 3600.0
# Published rows are kept a day for inspection; JetStream's duplicate window is only two minutes.
PUBLISHED_KEEP_S = 24 * 3600.0


def _notify_channel(schema: str) -> str:
    return f"loupe_outbox_{schema}"


def _refuse_other_types(subject: str, message: msgspec.Struct, carried: type | UnionType) -> None:
    """A message of another type than its subject carries is a bug in the caller: fail before writing it."""
    if not isinstance(message, carried):
        kinds = typing.get_args(carried) if isinstance(carried, UnionType) else (carried,)
        raise TypeError(f"{subject} carries {' | '.join(k.__name__ for k in kinds)}, not {type(message).__name__}")


async def emit_many(conn: asyncpg.Connection, event: Event, items: list[msgspec.Struct], project: str | None) -> None:
    """Record one `event` per item in a single statement (a bulk write changes many labels at once)."""
    if not items:
        return
    now = datetime.now(UTC)
    type_ = event.subject.removeprefix(subjects.EVENT_PREFIX)
    envelopes = [
        EventEnvelope(id=str(uuid.uuid4()), type=type_, time=now, project=project, data=data) for data in items
    ]
    await conn.execute(
        "INSERT INTO outbox (msg_id, subject, payload) "
        "SELECT id, $1, payload FROM unnest($2::text[], $3::bytea[]) AS t (id, payload)",
        event.subject,
        [e.id for e in envelopes],
        [encoder.encode(e) for e in envelopes],
    )
    await conn.execute("SELECT pg_notify('loupe_outbox_' || current_schema(), '')")


async def enqueue(conn: asyncpg.Connection, subject: str, payload: bytes, msg_id: str) -> None:
    """Queue a message for publication when the surrounding transaction commits."""
    await conn.execute("INSERT INTO outbox (msg_id, subject, payload) VALUES ($1, $2, $3)", msg_id, subject, payload)
    # Delivered only on commit, so the relay wakes exactly when there is something to publish.
    await conn.execute("SELECT pg_notify('loupe_outbox_' || current_schema(), '')")


async def emit(conn: asyncpg.Connection, event: Event, data: msgspec.Struct, project: str | None) -> EventEnvelope:
    """Record `event` with `data`; it reaches `loupe.evt.>` once the transaction commits."""
    _refuse_other_types(event.subject, data, event.data)
    envelope = EventEnvelope(
        id=str(uuid.uuid4()),
        type=event.subject.removeprefix(subjects.EVENT_PREFIX),
        time=datetime.now(UTC),
        project=project,
        data=data,
    )
    await enqueue(conn, event.subject, encoder.encode(envelope), envelope.id)
    return envelope


async def submit_job(conn: asyncpg.Connection, job: Job, payload: msgspec.Struct, job_id: str) -> None:
    """Queue a job; `job_id` doubles as its message id, so submitting the same job twice runs it once."""
    _refuse_other_types(job.subject, payload, job.payload)
    await enqueue(conn, job.subject, encoder.encode(payload), job_id)


async def publish_pending(conn: asyncpg.Connection, js: JetStreamContext) -> list[int]:
    """Publish unpublished rows in order and return their sequence numbers, without marking them.

    Must run inside a transaction: `FOR UPDATE` makes a second relay of the same schema wait, then
    skip what this one marked, so order holds with several replicas.
    """
    rows = await conn.fetch(
        "SELECT seq, msg_id, subject, payload FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE",
        BATCH,
    )
    # Sent in order, acknowledged together: one round trip per batch instead of one per row.
    acks = [
        await js.publish_async(row["subject"], bytes(row["payload"]), headers={subjects.HEADER_MSG_ID: row["msg_id"]})
        for row in rows
    ]
    await asyncio.wait_for(asyncio.gather(*acks), PUBLISH_TIMEOUT_S)
    return [row["seq"] for row in rows]


async def mark_published(conn: asyncpg.Connection, seqs: list[int]) -> None:
    await conn.execute("UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", seqs)


async def relay_once(pool: asyncpg.Pool, js: JetStreamContext) -> int:
    """One batch: publish, then mark. Returns how many rows were published."""
    async with pool.acquire() as conn, conn.transaction():
        seqs = await publish_pending(conn, js)
        await mark_published(conn, seqs)
    metrics.OUTBOX_PUBLISHED.inc(len(seqs))
    return len(seqs)


async def prune(pool: asyncpg.Pool, published_keep_s: float, inbox_keep_s: float) -> tuple[int, int]:
    """Forget published outbox rows and inbox entries older than needed; returns how many of each.

    An inbox entry matters only while its message can still be redelivered, so `inbox_keep_s` should
    be the events stream's retention.
    """
    published = await pool.execute(
        "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)", published_keep_s
    )
    processed = await pool.execute(
        "DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)", inbox_keep_s
    )
    return int(published.split()[-1]), int(processed.split()[-1])


@dataclass(eq=False)
class Relay:
    """Publishes the outbox of one schema: woken by NOTIFY on commit, and by a poll as a safety net."""

    pool: asyncpg.Pool
    js: JetStreamContext
    schema: str
    poll_s: float
    inbox_keep_s: float
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _listener: asyncpg.Connection | None = field(default=None, init=False)

    async def start(self) -> None:
        self._listener = await self.pool.acquire()
        await self._listener.add_listener(_notify_channel(self.schema), self._on_notify)
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.schema}")

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        next_prune = 0.0
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                while await relay_once(self.pool, self.js) == BATCH:
                    pass
                await self._report_pending()
                if loop.time() >= next_prune:
                    await prune(self.pool, PUBLISHED_KEEP_S, self.inbox_keep_s)
                    next_prune = loop.time() + PRUNE_EVERY_S
            except Exception:  # NATS or Postgres away: rows stay unpublished and we retry.
                log.exception("outbox relay for %s failed; retrying in %ss", self.schema, self.poll_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def _report_pending(self) -> None:
        pending = await self.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        metrics.OUTBOX_PENDING.set(pending)

    async def stop(self) -> None:
        """Stop after a last flush, so what was committed before shutdown still goes out now."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await relay_once(self.pool, self.js)
        if self._listener is not None:
            await self._listener.remove_listener(_notify_channel(self.schema), self._on_notify)
            await self.pool.release(self._listener)
            self._listener = None
