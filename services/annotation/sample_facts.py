"""Annotation's read model of the catalog's samples: kept from the catalog's sample events, and
filled on demand (asked for on the bus) when a sample is labelled before its event arrived.

Every handler is an upsert or a delete keyed by sample id, so a redelivered event changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

import asyncpg
import msgspec

from proto import subjects
from proto.catalog import ProjectDeleted
from proto.common import Caller
from proto.samples import (
    DatasetDeleted,
    SampleFacts,
    SamplesCreated,
    SamplesDeleted,
    SamplesMoved,
    SamplesUpdated,
)
from proto.search import SearchQuery, SearchSamples
from shared import object_keys
from shared.consumers import Delivery
from shared.errors import not_found
from shared.rows import from_row
from shared.service import Runtime

COLUMNS = (
    "id, project_id, dataset_id, name, content_hash, media_url, width, height, external_id, metadata, "
    "priority, labeler_id, reviewer_id"
)

# What a label write checks against (`load`); reading no more keeps a bulk write from decoding metadata.
CHECKED = "id, width, height"

INSERT = f"""
INSERT INTO samples ({COLUMNS}, status)
SELECT s.id, $1, s.dataset_id, s.name, s.content_hash, s.media_url, s.width, s.height, s.external_id,
       coalesce(s.metadata, '{{}}'), coalesce(s.priority, 0), s.labeler_id, s.reviewer_id, s.status
FROM json_to_recordset($2::text::json) AS s (id uuid, dataset_id uuid, name text, content_hash text, media_url text,
     width int, height int, external_id text, metadata jsonb, priority float8, labeler_id uuid, reviewer_id uuid,
     status text)
"""
UPSERT = f"""{INSERT}
ON CONFLICT (id) DO UPDATE SET dataset_id = EXCLUDED.dataset_id, name = EXCLUDED.name,
    content_hash = EXCLUDED.content_hash, media_url = EXCLUDED.media_url, width = EXCLUDED.width,
    height = EXCLUDED.height, external_id = EXCLUDED.external_id, metadata = EXCLUDED.metadata,
    priority = EXCLUDED.priority, labeler_id = EXCLUDED.labeler_id, reviewer_id = EXCLUDED.reviewer_id,
    status = EXCLUDED.status
"""
# A sample's facts at its creation: a row already there is as new or newer (this event delivered before,
# or the catalog asked by a label write that outran it), so it is kept rather than written again.
INSERT_NEW = f"{INSERT} ON CONFLICT (id) DO NOTHING"

_encode = msgspec.json.Encoder().encode
SEARCH_AT_ONCE = 500  # samples asked of the catalog in one search page (its most)


async def upsert(
    conn: asyncpg.Connection | asyncpg.Pool, project_id: str, facts: list[SampleFacts], statement: str = UPSERT
) -> None:
    if facts:
        await conn.execute(statement, uuid.UUID(project_id), _encode(facts).decode())


async def forget(conn: asyncpg.Connection | asyncpg.Pool, where: str, *args: object) -> None:
    """Delete samples and their labels (objects go with the labels)."""
    await conn.execute(f"DELETE FROM labels WHERE sample_id IN (SELECT id FROM samples WHERE {where})", *args)
    await conn.execute(f"DELETE FROM samples WHERE {where}", *args)


async def on_created(rt: Runtime, project_id: str | None, event: SamplesCreated, delivery: Delivery) -> None:
    await upsert(rt.db, event.project_id, event.samples, INSERT_NEW)


async def on_updated(rt: Runtime, project_id: str | None, event: SamplesUpdated, delivery: Delivery) -> None:
    await upsert(rt.db, event.project_id, event.samples)


async def on_moved(rt: Runtime, project_id: str | None, event: SamplesMoved, delivery: Delivery) -> None:
    await rt.db.execute(
        "UPDATE samples SET dataset_id = $1 WHERE id = ANY($2::uuid[]) AND project_id = $3",
        uuid.UUID(event.dataset_id),
        event.ids,
        uuid.UUID(event.project_id),
    )


async def on_deleted(rt: Runtime, project_id: str | None, event: SamplesDeleted, delivery: Delivery) -> None:
    async with rt.db.acquire() as conn, conn.transaction():
        await forget(conn, "id = ANY($1::uuid[]) AND project_id = $2", event.ids, uuid.UUID(event.project_id))


async def on_dataset_deleted(rt: Runtime, project_id: str | None, event: DatasetDeleted, delivery: Delivery) -> None:
    async with rt.db.acquire() as conn, conn.transaction():
        await forget(conn, "dataset_id = $1", uuid.UUID(event.id))


async def on_project_deleted(rt: Runtime, project_id: str | None, event: ProjectDeleted, delivery: Delivery) -> None:
    project = uuid.UUID(event.id)
    async with rt.db.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM labelsets WHERE project_id = $1", project)
        await conn.execute("DELETE FROM samples WHERE project_id = $1", project)
        await conn.execute("DELETE FROM audit WHERE project_id = $1", project)
        await conn.execute("DELETE FROM releases WHERE project_id = $1", project)
        await conn.execute("DELETE FROM imports WHERE project_id = $1", project)
        await conn.execute("DELETE FROM label_schemas WHERE project_id = $1", project)
    # Release files, exports and uploaded imports are all keyed under the project's id.
    await rt.storage.delete_prefix("releases", object_keys.project_files(project))


async def ask_catalog(
    rt: Runtime, project_id: uuid.UUID, idents: list[uuid.UUID], caller: Caller | None
) -> list[SampleFacts]:
    """The facts of those of these samples the catalog has in the project, a search page per
    SEARCH_AT_ONCE of them: a bulk write that outran the catalog's events costs a few requests, not one per
    sample."""
    parts = [idents[start : start + SEARCH_AT_ONCE] for start in range(0, len(idents), SEARCH_AT_ONCE)]
    pages = await asyncio.gather(
        *(
            rt.nats.request(
                subjects.SEARCH_SAMPLES,
                SearchSamples(
                    project_id=str(project_id), query=SearchQuery(sample_ids=[str(i) for i in part], limit=len(part))
                ),
                caller=caller,
            )
            for part in parts
        )
    )
    return [from_row(SampleFacts, msgspec.structs.asdict(sample)) for page in pages for sample in page.items]


async def load_existing(
    rt: Runtime, conn: asyncpg.Connection, project_id: uuid.UUID, sample_ids: Iterable[uuid.UUID], caller: Caller | None
) -> dict[uuid.UUID, asyncpg.Record]:
    """The facts (`CHECKED`) of those of these samples the project has; those the read model lacks are asked
    of the catalog (their creation event may not have arrived yet), and those neither has are left out."""
    wanted = set(sample_ids)
    rows = await conn.fetch(
        f"SELECT {CHECKED} FROM samples WHERE id = ANY($1::uuid[]) AND project_id = $2", list(wanted), project_id
    )
    found = {row["id"]: row for row in rows}
    missing = sorted(wanted - found.keys())
    fetched = await ask_catalog(rt, project_id, missing, caller) if missing else []
    if fetched:
        await upsert(conn, str(project_id), fetched)
        rows = await conn.fetch(
            f"SELECT {CHECKED} FROM samples WHERE id = ANY($1::uuid[])", [uuid.UUID(f.id) for f in fetched]
        )
        found.update({row["id"]: row for row in rows})
    return found


async def load(
    rt: Runtime,
    conn: asyncpg.Connection,
    project_id: uuid.UUID,
    sample_ids: Iterable[uuid.UUID],
    caller: Caller | None,
    paths: dict[uuid.UUID, str] | None = None,
) -> dict[uuid.UUID, asyncpg.Record]:
    """The facts of these samples of the project (see `load_existing`). A sample that does not exist is 404,
    naming the request field in `paths`."""
    wanted = list(sample_ids)
    found = await load_existing(rt, conn, project_id, wanted, caller)
    absent = sorted(set(wanted) - found.keys())
    if absent:
        error = not_found("sample", str(absent[0]))
        if paths and absent[0] in paths:
            error.details["path"] = paths[absent[0]]
        raise error
    return found
