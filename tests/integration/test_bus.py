"""The bus machinery of `shared/` against the real NATS and Postgres of the test stack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest

from proto import subjects
from proto.catalog import Project
from proto.common import EventEnvelope, ListDeadLetters, ReplayDeadLetter
from proto.subjects import Command, Job
from shared import db, outbox
from shared.bus import Bus, RequestContext, encoder
from shared.consumers import Consumer, ConsumerSpec, Delivery, list_dead_letters, once, replay_dead_letter
from shared.errors import LoupeError
from shared.settings import Settings
from tests.helpers import eventually


class Crash(Exception):
    """Stands for the relay process dying at the point where it is raised."""


class Ping(msgspec.Struct, frozen=True):
    text: str


@pytest.fixture
async def pool(settings: Settings, unique: str) -> AsyncIterator[asyncpg.Pool]:
    schema = f"test_{unique}"
    opened = await db.open_pool(settings.database_url, schema, None, 4)
    await opened.execute("CREATE TABLE effects (msg_id text NOT NULL)")
    yield opened
    await opened.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await opened.close()


def fast_retries(settings: Settings, deliveries: int) -> Settings:
    return msgspec.structs.replace(settings, job_max_deliveries=deliveries, job_backoff_s=(0.05,), job_ack_wait_s=5.0)


def project(name: str) -> Project:
    now = datetime.now(UTC)
    return Project(id=name, org_id="org", name=name, description="", task_type="bboxes", content_type="image",
                   public=False, metadata={}, version=1, created_at=now, updated_at=now)


async def test_command_errors_come_back_typed(bus: Bus, unique: str) -> None:
    command = Command(f"loupe.tests{unique}.ping.send", Ping, Ping, "echo")

    async def echo(request: Ping, ctx: RequestContext) -> Ping:
        if request.text == "refuse":
            raise LoupeError("conflict", "refused on purpose", path="$.text")
        return request

    with pytest.raises(LoupeError) as no_service:
        await bus.request(command, Ping("hello"))
    assert no_service.value.code == "unavailable"

    server = await Bus.connect(bus.settings, f"tests{unique}")
    try:
        await server.serve(command, echo)
        assert await bus.request(command, Ping("hello")) == Ping("hello")
        with pytest.raises(LoupeError) as refused:
            await bus.request(command, Ping("refuse"))
        assert (refused.value.code, refused.value.details) == ("conflict", {"path": "$.text"})
        wrong = Command(command.subject, Project, Ping, "sends the wrong type")
        with pytest.raises(LoupeError) as invalid:
            await bus.request(wrong, project("x"))
        assert invalid.value.code == "invalid" and "text" in invalid.value.message
    finally:
        await server.stop_serving(1.0)
        await server.close()


async def test_relay_crash_after_publish_before_mark_gives_no_duplicate(
        bus: Bus, pool: asyncpg.Pool, settings: Settings, unique: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        envelope = await outbox.emit(conn, subjects.PROJECT_CREATED, project(unique), unique)

    with pytest.raises(Crash):
        async with pool.acquire() as conn, conn.transaction():
            assert len(await outbox.publish_pending(conn, bus.js)) == 1
            raise Crash  # published, never marked: the row is still pending after the "restart"
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
    assert await outbox.relay_once(pool, bus.js) == 1
    assert await outbox.relay_once(pool, bus.js) == 0

    seen: list[str] = []

    async def apply(payload: EventEnvelope, delivery: Delivery) -> None:
        if payload.id != envelope.id:
            return  # other tests' events share the subject
        seen.append(delivery.msg_id)
        async with once(pool, delivery.consumer, delivery.msg_id) as conn:
            if conn is not None:
                await conn.execute("INSERT INTO effects (msg_id) VALUES ($1)", delivery.msg_id)

    spec = ConsumerSpec(durable=f"tests-{unique}", stream=subjects.EVENTS_STREAM,
                        filter_subjects=(subjects.PROJECT_CREATED.subject,), payload_type=EventEnvelope, handler=apply)
    consumer = Consumer(spec, bus, pool, fast_retries(settings, 3))
    await consumer.start()
    try:
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM effects"))
        # Past JetStream's duplicate window the same event can arrive again; the consumer must not apply it twice.
        await bus.js.publish(subjects.PROJECT_CREATED.subject, encoder.encode(envelope),
                             headers={subjects.HEADER_MSG_ID: f"{envelope.id}-late-copy",
                                      "Loupe-Msg-Id": envelope.id})

        async def seen_twice() -> bool:
            assert len(seen) == 2, seen
            return True
        await eventually(seen_twice)
    finally:
        await consumer.stop()
        await bus.js.delete_consumer(subjects.EVENTS_STREAM, spec.durable)
    assert seen == [envelope.id, envelope.id]
    assert await pool.fetchval("SELECT count(*) FROM effects") == 1


async def test_message_failing_every_delivery_is_dead_lettered_and_replay_processes_it(
        bus: Bus, pool: asyncpg.Pool, settings: Settings, unique: str) -> None:
    job = Job(f"loupe.job.tests.flaky{unique}", Ping, "fails while told to")
    failing = True
    attempts: list[int] = []

    async def handle(payload: Ping, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if failing:
            raise RuntimeError("the backend is down")
        async with once(pool, delivery.consumer, delivery.msg_id) as conn:
            if conn is not None:
                await conn.execute("INSERT INTO effects (msg_id) VALUES ($1)", delivery.msg_id)

    async with pool.acquire() as conn, conn.transaction():
        await outbox.submit_job(conn, job, Ping("work"), f"job-{unique}")
    await outbox.relay_once(pool, bus.js)

    spec = ConsumerSpec(durable=f"tests-flaky{unique}", stream=subjects.JOBS_STREAM, filter_subjects=(job.subject,),
                        payload_type=Ping, handler=handle)
    consumer = Consumer(spec, bus, pool, fast_retries(settings, 3))
    await consumer.start()
    try:
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM dead_letters"))
        assert attempts == [1, 2, 3]
        letters = (await list_dead_letters(pool, ListDeadLetters())).items
        assert len(letters) == 1
        letter = letters[0]
        assert (letter.msg_id, letter.deliveries, letter.consumer) == (f"job-{unique}", 3, spec.durable)
        assert "the backend is down" in letter.error and msgspec.json.decode(letter.payload) == {"text": "work"}

        failing = False
        replayed = await replay_dead_letter(pool, bus, ReplayDeadLetter(id=letter.id))
        assert replayed.replayed_at is not None
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM effects"))
        assert await pool.fetchval("SELECT msg_id FROM effects") == f"job-{unique}"
        assert (await list_dead_letters(pool, ListDeadLetters())).items == []
        with pytest.raises(LoupeError) as twice:
            await replay_dead_letter(pool, bus, ReplayDeadLetter(id=letter.id))
        assert twice.value.code == "conflict"
    finally:
        await consumer.stop()
        await bus.js.delete_consumer(subjects.JOBS_STREAM, spec.durable)


async def test_delivery_beyond_the_limit_after_a_crash_is_dead_lettered_without_running(
        bus: Bus, pool: asyncpg.Pool, settings: Settings, unique: str) -> None:
    """A process that died on the last allowed delivery acked nothing; the next delivery must not be lost."""
    job = Job(f"loupe.job.tests.crashy{unique}", Ping, "its handler never finishes")
    spec_name = f"tests-crashy{unique}"
    calls: list[int] = []

    async def handle(payload: Ping, delivery: Delivery) -> None:
        calls.append(delivery.attempt)

    async with pool.acquire() as conn, conn.transaction():
        await outbox.submit_job(conn, job, Ping("work"), f"job-{unique}")
    await outbox.relay_once(pool, bus.js)
    limits = msgspec.structs.replace(fast_retries(settings, 1), job_ack_wait_s=0.5)
    spec = ConsumerSpec(durable=spec_name, stream=subjects.JOBS_STREAM, filter_subjects=(job.subject,),
                        payload_type=Ping, handler=handle)
    consumer = Consumer(spec, bus, pool, limits)
    await consumer.start()
    try:
        # Take the only allowed delivery away from the consumer and "die" holding it.
        await consumer.stop()
        grabber = await bus.js.pull_subscribe_bind(durable=spec_name, stream=subjects.JOBS_STREAM)
        taken = await grabber.fetch(1, timeout=5)
        assert taken[0].metadata.num_delivered == 1
        await grabber.unsubscribe()
        consumer = Consumer(spec, bus, pool, limits)
        await consumer.start()
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM dead_letters"))
    finally:
        await consumer.stop()
        await bus.js.delete_consumer(subjects.JOBS_STREAM, spec_name)
    assert calls == []
    letter = (await list_dead_letters(pool, ListDeadLetters())).items[0]
    assert letter.deliveries == 2 and "without an answer" in letter.error


async def test_prune_forgets_only_old_published_rows_and_inbox_entries(
        bus: Bus, pool: asyncpg.Pool, unique: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for n in range(3):
            await outbox.emit(conn, subjects.PROJECT_CREATED, project(f"{unique}{n}"), unique)
    await outbox.relay_once(pool, bus.js)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.emit(conn, subjects.PROJECT_CREATED, project(f"{unique}-pending"), unique)
    await pool.execute("UPDATE outbox SET published_at = now() - interval '2 days' WHERE seq < 3")
    await pool.execute("INSERT INTO inbox (consumer, msg_id, processed_at) VALUES "
                       "('c', 'old', now() - interval '30 days'), ('c', 'new', now())")

    assert await outbox.prune(pool, published_keep_s=3600, inbox_keep_s=7 * 24 * 3600) == (2, 1)
    remaining = await pool.fetch("SELECT seq, published_at IS NULL AS pending FROM outbox ORDER BY seq")
    assert [(r["seq"], r["pending"]) for r in remaining] == [(3, False), (4, True)]
    assert await pool.fetchval("SELECT array_agg(msg_id) FROM inbox") == ["new"]


async def test_stopping_finishes_commands_already_taken_and_refuses_new_ones(bus: Bus, unique: str) -> None:
    command = Command(f"loupe.tests{unique}.slow.send", Ping, Ping, "answers after a while")
    started = asyncio.Event()

    async def slow(request: Ping, ctx: RequestContext) -> Ping:
        started.set()
        await asyncio.sleep(0.5)
        return request

    server = await Bus.connect(bus.settings, f"tests{unique}")
    try:
        await server.serve(command, slow)
        in_flight = asyncio.create_task(bus.request(command, Ping("taken before the stop")))
        # Should the request fail before the handler starts, its error ends the wait, not the timeout.
        await asyncio.wait([asyncio.create_task(started.wait()), in_flight], return_when=asyncio.FIRST_COMPLETED)
        assert started.is_set(), in_flight.exception()
        await server.stop_serving(grace_s=5.0)
        assert await in_flight == Ping("taken before the stop")
        with pytest.raises(LoupeError) as refused:
            await bus.request(command, Ping("after the stop"))
        assert refused.value.code == "unavailable"
    finally:
        await server.close()
