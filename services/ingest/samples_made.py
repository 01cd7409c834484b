"""Which images ingest made a sample of, per dataset: the one place two batches holding the same image at
once learn which of them makes the sample, before the catalog has heard of either.

The catalog stays the authority on what a dataset holds; a row here only bridges the time until it consumes
MEDIA_STORED. Rows go when the catalog deletes the sample or moves it away, so the image may be added again.
Every handler is a delete, so a redelivered event changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import asyncpg

from proto.catalog import ProjectDeleted
from proto.samples import DatasetDeleted, SamplesDeleted, SamplesMoved, sample_id_for
from shared.consumers import Delivery
from shared.service import Runtime


async def made_before(
    conn: asyncpg.Connection, project_id: str, dataset_id: str, hashes: Iterable[str]
) -> dict[str, str]:
    """Claim the images the catalog did not know as new samples of the dataset, in the caller's transaction;
    returns those another batch claimed first (SHA-256 → its sample), which are duplicates here.

    The rows are inserted in one order, so two transactions that share images wait on each other, never deadlock."""
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    samples = [sample_id_for(dataset_id, sha) for sha in wanted]
    mine = {
        row["sha256"]
        for row in await conn.fetch(
            "INSERT INTO dataset_media (dataset_id, sha256, project_id, sample_id) "
            "SELECT $1, sha, $2, sample FROM unnest($3::text[], $4::uuid[]) AS u(sha, sample) "
            "ON CONFLICT DO NOTHING RETURNING sha256",
            uuid.UUID(dataset_id),
            uuid.UUID(project_id),
            wanted,
            [uuid.UUID(sample) for sample in samples],
        )
    }
    return {sha: sample for sha, sample in zip(wanted, samples, strict=True) if sha not in mine}


async def on_samples_gone(
    rt: Runtime, project_id: str | None, event: SamplesDeleted | SamplesMoved, delivery: Delivery
) -> None:
    """Deleted, or moved: a moved sample keeps its id, the dataset it left no longer holds its image, and the
    one it joined has it in the catalog."""
    await rt.db.execute("DELETE FROM dataset_media WHERE sample_id = ANY($1::uuid[])", event.ids)


async def on_dataset_deleted(rt: Runtime, project_id: str | None, event: DatasetDeleted, delivery: Delivery) -> None:
    await rt.db.execute("DELETE FROM dataset_media WHERE dataset_id = $1", uuid.UUID(event.id))


async def on_project_deleted(rt: Runtime, project_id: str | None, event: ProjectDeleted, delivery: Delivery) -> None:
    await rt.db.execute("DELETE FROM dataset_media WHERE project_id = $1", uuid.UUID(event.id))
