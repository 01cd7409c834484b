"""Ingest's claim of a batch of a run's items, on the real Postgres with ingest's own schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.ingest import pipeline
from shared import db
from shared.settings import Settings

MIGRATIONS = Path(pipeline.__file__).parent / "migrations"


@pytest.fixture
async def pool(settings: Settings, unique: str) -> AsyncIterator[asyncpg.Pool]:
    schema = f"test_{unique}"
    opened = await db.open_pool(settings.database_url, schema, MIGRATIONS, 2)
    yield opened
    await opened.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await opened.close()


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


async def test_a_claim_picks_its_batch_once_whatever_plan_the_statistics_lead_to(pool: asyncpg.Pool) -> None:
    """bench.peers at 10,000 samples: a run's items inserted after the table's last ANALYZE are estimated at one
    row, and the planner nested the batch's selection inside a loop over the run's items, rerunning it for each
    (0.56 s a claim), each rerun locking the next free items, so that one claim took the whole run. Here nested
    loops are the only join the planner may choose."""
    run_id = await pool.fetchval(
        "INSERT INTO runs (project_id, dataset_id, kind, state) VALUES ($1, $1, 'upload', 'RUNNING') RETURNING id",
        uuid.uuid4(),
    )
    await pool.execute(
        "INSERT INTO items (run_id, idx, source, state) SELECT $1, i, 'staging/' || i, 'PENDING' "
        "FROM generate_series(0, 999) AS i",
        run_id,
    )
    async with pool.acquire() as conn:
        claiming = conn.transaction()
        await claiming.start()
        try:
            await conn.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
            explained = await conn.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {pipeline.CLAIM}", run_id, 50, None, uuid.uuid4(), 60
            )
        finally:
            await claiming.rollback()
    plan = explained[0]["Plan"]
    assert plan["Actual Rows"] == 50
    locks = [node for node in nodes(plan) if node["Node Type"] == "LockRows"]
    assert [node["Actual Loops"] for node in locks] == [1]
