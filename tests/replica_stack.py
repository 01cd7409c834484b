"""A stack of its own with several replicas of each worker service, for tests/integration/test_replicas.py and
tests/chaos/, and what they read from its Postgres to prove nothing was done twice or left behind.

The session stack (tests/conftest.py) runs one process of each service; these tests need another, on free ports
and a data folder of their own, so that killing its processes disturbs no other test.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from loupe.stack import Stack, StackPorts
from proto.subjects import WORKER_SERVICES
from tests.media_server import MediaServer, jpeg

# The schemas that hold the bus tables (outbox, inbox, dead_letters): every worker service's.
BUS_SCHEMAS = WORKER_SERVICES


@contextlib.contextmanager
def replica_stack(data_dir: Path, media_server: MediaServer, replicas: int, triton: bool) -> Iterator[Stack]:
    """A running stack with ``replicas`` processes of each worker service, whose URL imports may reach
    ``media_server``."""
    overrides = {
        "fetch_allow": f"127.0.0.1:{media_server.port}",
        "fetch_hosts": f"{MediaServer.PUBLIC_NAME}=127.0.0.1",
        # A job whose process was killed goes to another replica after this; live ones keep extending it.
        "job_ack_wait_s": 6.0,
    }
    with Stack(data_dir, StackPorts.free(), triton=triton, overrides=overrides, replicas=replicas) as stack:
        yield stack


def image_hash(seed: int) -> str:
    """The content hash of the media server's image ``/img/<seed>.jpg``."""
    return hashlib.sha256(jpeg(seed)).hexdigest()


async def samples_by_hash(db: asyncpg.Connection, dataset_id: str) -> dict[str, int]:
    """How many samples of the dataset each image is."""
    rows = await db.fetch(
        "SELECT content_hash, count(*) AS n FROM catalog.samples WHERE dataset_id = $1 GROUP BY content_hash",
        dataset_id,
    )
    return {row["content_hash"]: row["n"] for row in rows}


async def unpublished_events(db: asyncpg.Connection) -> dict[str, int]:
    """Outbox rows not yet published, by schema: all zero once the outboxes are drained."""
    return {
        schema: await db.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")
        for schema in BUS_SCHEMAS
    }


async def inbox_repeats(db: asyncpg.Connection) -> dict[str, int]:
    """Messages a consumer recorded as processed more than once, by schema: all zero when no event was applied
    twice (the inbox row commits with the effect, so one row is one application)."""
    return {
        schema: await db.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM {schema}.inbox GROUP BY consumer, "
            "msg_id HAVING count(*) > 1) AS repeated"
        )
        for schema in BUS_SCHEMAS
    }


async def inbox_sizes(db: asyncpg.Connection) -> dict[str, int]:
    return {schema: await db.fetchval(f"SELECT count(*) FROM {schema}.inbox") for schema in BUS_SCHEMAS}


async def dead_letters(db: asyncpg.Connection) -> list[dict]:
    """Every message a consumer gave up on, with why, in every schema."""
    found: list[dict] = []
    for schema in BUS_SCHEMAS:
        rows = await db.fetch(
            f"SELECT consumer, subject, msg_id, error, deliveries FROM {schema}.dead_letters "
            "WHERE replayed_at IS NULL ORDER BY id"
        )
        found += [{"schema": schema, **row} for row in rows]
    return found
