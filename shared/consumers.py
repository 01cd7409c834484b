"""Durable JetStream pull consumers for jobs and events: explicit ack, backoff between deliveries,
a bounded number of deliveries, then the dead-letter store, from which a message can be replayed.

JetStream itself is told to redeliver forever (`max_deliver=-1`): the bound is enforced here, so a
message whose last delivery died with its process (no nak, no ack) is still caught on the next
delivery and dead-lettered instead of silently stopping in the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import asyncpg
import msgspec
import nats.errors
import nats.js.api
import nats.js.errors
from nats.aio.msg import Msg

from proto import subjects
from proto.common import DeadLetter, DeadLetterList, ListDeadLetters, ReplayDeadLetter
from shared import metrics
from shared.bus import Bus, decode
from shared.errors import LoupeError, not_found
from shared.logs import job_id_var
from shared.settings import Settings

log = logging.getLogger(__name__)

# Replays publish under a fresh Nats-Msg-Id (JetStream would drop a repeat) and carry the original
# id here, so idempotency keys stay the same across a replay.
HEADER_ORIGINAL_MSG_ID = "Loupe-Msg-Id"


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """What a handler learns about the message besides its payload."""

    msg_id: str
    subject: str
    attempt: int
    consumer: str


MessageHandler = Callable[[Any, Delivery], Awaitable[None]]
# What `handler` is: a MessageHandler for a Consumer, or a service's handler that takes its Runtime first
# until the process binds it (shared/service.py).
H = TypeVar("H")


class ConsumerSpec(msgspec.Struct, Generic[H], frozen=True, kw_only=True):
    durable: str  # `<service>-<kind>`; the name autoscalers watch for lag
    stream: str
    filter_subjects: tuple[str, ...]
    payload_type: Any
    handler: H
    # Messages of one fetch handled at once. Above 1 they may finish out of order: only for handlers
    # whose effect does not depend on the order (insert-if-absent, keep-the-newest-revision).
    concurrency: int = 1


def msg_id_of(msg: Msg) -> str:
    headers = msg.headers or {}
    return (
        headers.get(HEADER_ORIGINAL_MSG_ID)
        or headers.get(subjects.HEADER_MSG_ID)
        or f"{msg.metadata.stream}:{msg.metadata.sequence.stream}"
    )


@contextlib.asynccontextmanager
async def once(pool: asyncpg.Pool, consumer: str, msg_id: str) -> AsyncIterator[asyncpg.Connection | None]:
    """A transaction that runs a message's effect at most once per consumer.

    Yields a connection inside a transaction when `msg_id` is new for `consumer`, or None when it was
    already processed (a redelivery); the inbox row commits with the effect, or neither does.
    """
    async with pool.acquire() as conn, conn.transaction():
        fresh = await conn.fetchval(
            "INSERT INTO inbox (consumer, msg_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
            consumer,
            msg_id,
        )
        yield conn if fresh else None


class Consumer:
    def __init__(self, spec: ConsumerSpec[MessageHandler], bus: Bus, pool: asyncpg.Pool, settings: Settings) -> None:
        self.spec = spec
        self.bus = bus
        self.pool = pool
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        config = nats.js.api.ConsumerConfig(
            durable_name=self.spec.durable,
            filter_subjects=list(self.spec.filter_subjects),
            ack_policy=nats.js.api.AckPolicy.EXPLICIT,
            deliver_policy=nats.js.api.DeliverPolicy.ALL,
            max_deliver=-1,
            ack_wait=self.settings.job_ack_wait_s,
            max_ack_pending=1000,
        )
        await self.bus.js.add_consumer(self.spec.stream, config)
        self._subscription = await self.bus.js.pull_subscribe_bind(durable=self.spec.durable, stream=self.spec.stream)
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.spec.durable}")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = await self._subscription.fetch(batch=max(10, self.spec.concurrency), timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("fetch for consumer %s failed; retrying", self.spec.durable)
                await asyncio.sleep(1.0)
                continue
            for start in range(0, len(messages), self.spec.concurrency):
                # Shielded: a message we started is finished (acked or nakked) even while stopping.
                await asyncio.shield(
                    asyncio.gather(*(self._process(msg) for msg in messages[start : start + self.spec.concurrency]))
                )

    async def _process(self, msg: Msg) -> None:
        attempt = msg.metadata.num_delivered
        delivery = Delivery(msg_id=msg_id_of(msg), subject=msg.subject, attempt=attempt, consumer=self.spec.durable)
        limit = self.settings.job_max_deliveries
        token = job_id_var.set(delivery.msg_id)
        started = time.perf_counter()
        try:
            if attempt > limit:
                await self._dead_letter(
                    msg,
                    delivery,
                    f"delivered {attempt - 1} times without an answer "
                    "(the handling process died or exceeded the ack wait)",
                )
                return
            try:
                async with self._working(msg):
                    await self.spec.handler(decode(self.spec.payload_type, msg.data), delivery)
            except Exception as exc:
                error = exc.message if isinstance(exc, LoupeError) else f"{type(exc).__name__}: {exc}"
                if attempt >= limit:
                    await self._dead_letter(msg, delivery, error)
                    return
                delay = self.settings.job_backoff_s[min(attempt - 1, len(self.settings.job_backoff_s) - 1)]
                log.warning(
                    "consumer %s: delivery %d of %s failed (%s); retrying in %ss",
                    self.spec.durable,
                    attempt,
                    delivery.msg_id,
                    error,
                    delay,
                )
                metrics.CONSUMED.labels(self.spec.durable, "retry").inc()
                await msg.nak(delay=delay)
                return
            await msg.ack()
            metrics.CONSUMED.labels(self.spec.durable, "ok").inc()
        finally:
            metrics.CONSUME_SECONDS.labels(self.spec.durable).observe(time.perf_counter() - started)
            job_id_var.reset(token)

    @contextlib.asynccontextmanager
    async def _working(self, msg: Msg) -> AsyncIterator[None]:
        """Tell JetStream the message is still being worked on, so a long job is not redelivered to
        another replica while this one is alive; a dead process stops telling, and it is redelivered."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.settings.job_ack_wait_s / 3)
                with contextlib.suppress(Exception):
                    await msg.in_progress()

        heartbeat = asyncio.create_task(beat())
        try:
            yield
        finally:
            heartbeat.cancel()

    async def _dead_letter(self, msg: Msg, delivery: Delivery, error: str) -> None:
        await self.pool.execute(
            "INSERT INTO dead_letters (consumer, subject, msg_id, payload, error, deliveries) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            self.spec.durable,
            msg.subject,
            delivery.msg_id,
            msg.data,
            error,
            delivery.attempt,
        )
        # Ack, not term: on a work queue an ack removes it, and the copy now lives in dead_letters.
        await msg.ack()
        metrics.DEAD_LETTERS.labels(self.spec.durable).inc()
        metrics.CONSUMED.labels(self.spec.durable, "dead_letter").inc()
        log.error(
            "consumer %s gave up on %s after %d deliveries: %s",
            self.spec.durable,
            delivery.msg_id,
            delivery.attempt,
            error,
        )

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._subscription.unsubscribe()


def _to_dead_letter(row: asyncpg.Record) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        consumer=row["consumer"],
        subject=row["subject"],
        msg_id=row["msg_id"],
        payload=bytes(row["payload"]).decode("utf-8", "replace"),
        error=row["error"],
        deliveries=row["deliveries"],
        failed_at=row["failed_at"],
        replayed_at=row["replayed_at"],
    )


async def list_dead_letters(pool: asyncpg.Pool, query: ListDeadLetters) -> DeadLetterList:
    rows = await pool.fetch(
        "SELECT * FROM dead_letters WHERE $1 OR replayed_at IS NULL ORDER BY id LIMIT $2",
        query.include_replayed,
        query.limit,
    )
    return DeadLetterList(items=[_to_dead_letter(row) for row in rows])


async def replay_dead_letter(pool: asyncpg.Pool, bus: Bus, query: ReplayDeadLetter) -> DeadLetter:
    """Publish the message again under its original id; a replayed letter cannot be replayed twice."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1 FOR UPDATE", query.id)
        if row is None:
            raise not_found("dead letter", str(query.id))
        if row["replayed_at"] is not None:
            raise LoupeError(
                "conflict", f"dead letter {query.id} was already replayed at {row['replayed_at']}", id=query.id
            )
        await bus.js.publish(
            row["subject"],
            bytes(row["payload"]),
            headers={
                subjects.HEADER_MSG_ID: f"{row['msg_id']}:replay:{row['id']}",
                HEADER_ORIGINAL_MSG_ID: row["msg_id"],
            },
        )
        row = await conn.fetchrow("UPDATE dead_letters SET replayed_at = now() WHERE id = $1 RETURNING *", query.id)
    return _to_dead_letter(row)
