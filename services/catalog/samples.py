"""Samples: bulk create, registration of what ingest stored, get, update (one or many, with the
status workflow), delete (one or many), move between datasets — each call with one event.

Bulk paths make a constant number of round trips: rows travel as one JSON array that Postgres
expands with `json_to_recordset`, and `ON CONFLICT DO NOTHING` on both the id and (dataset,
content hash) makes creating the same image twice harmless.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import asyncpg
import msgspec

from proto import subjects
from proto.common import Empty
from proto.ingest import MediaStored, OwnedMediaRequest
from proto.samples import (
    EVENT_SAMPLES,
    CreatedSample,
    CreatedSamples,
    CreateSamplesRequest,
    DeletedSamples,
    DeleteSamplesRequest,
    FindSamplesByHash,
    MovedSamples,
    MoveSamplesRequest,
    NewSample,
    Sample,
    SampleChanges,
    SampleFacts,
    SampleRef,
    SamplesByHash,
    SamplesCreated,
    SamplesDeleted,
    SamplesMoved,
    SampleStatus,
    SamplesUpdated,
    UpdatedSample,
    UpdatedSamples,
    UpdateSampleRequest,
    UpdateSamplesRequest,
    sample_id_for,
)
from services.catalog import datasets
from services.catalog.sample_status import check_transition
from shared import outbox
from shared.bus import RequestContext, encoder
from shared.consumers import Delivery, once
from shared.errors import LoupeError, check_version, conflict, invalid, not_found, not_of_project, require_all
from shared.ids import parse_uuid
from shared.rows import from_row, one_of_project
from shared.service import Answers, Runtime

ANSWERS = Answers()

log = logging.getLogger(__name__)

COLUMNS = (
    "id, project_id, dataset_id, name, external_id, content_hash, media_url, format, width, height, "
    "size_bytes, metadata, tags, priority, status, labeler_id, reviewer_id, version, created_at, updated_at"
)


def to_sample(row: asyncpg.Record) -> Sample:
    return from_row(Sample, row)


def facts(sample: Sample | NewRow, dataset_id: str, status: SampleStatus) -> SampleFacts:
    return from_row(SampleFacts, msgspec.structs.asdict(sample), dataset_id=dataset_id, status=status)


def chunks(items: list[Any]) -> list[list[Any]]:
    """Events of at most EVENT_SAMPLES samples: one per call, unless the call is large enough to
    exceed what one NATS message may carry."""
    return [items[i : i + EVENT_SAMPLES] for i in range(0, len(items), EVENT_SAMPLES)]


# -- creating ---------------------------------------------------------------------------------------


class NewRow(msgspec.Struct, frozen=True, kw_only=True):
    """A sample to insert, as `json_to_recordset` reads it."""

    id: str
    name: str
    external_id: str | None
    content_hash: str | None
    media_url: str | None
    format: str | None
    width: int
    height: int
    size_bytes: int | None
    metadata: dict[str, Any]
    priority: float
    labeler_id: None = None  # new samples are unassigned
    reviewer_id: None = None


INSERT = """
    INSERT INTO samples (id, project_id, dataset_id, name, external_id, content_hash, media_url, format, width, height,
                         size_bytes, metadata, priority)
    SELECT r.id, $1, $2, r.name, r.external_id, r.content_hash, r.media_url, r.format, r.width, r.height,
           r.size_bytes, r.metadata, r.priority
    FROM json_to_recordset($3::text::json) AS r(id uuid, name text, external_id text, content_hash text,
         media_url text, format text, width integer, height integer, size_bytes bigint, metadata jsonb,
         priority double precision)
    ON CONFLICT DO NOTHING
    RETURNING id"""


async def _insert(
    conn: asyncpg.Connection, project_id: uuid.UUID, dataset_id: uuid.UUID, rows: list[NewRow]
) -> set[str]:
    """Insert what is new; returns the ids created."""
    created = await conn.fetch(INSERT, project_id, dataset_id, encoder.encode(rows).decode())
    return {str(row["id"]) for row in created}


Outcome = Literal["created", "existing"]


async def insert_samples(
    conn: asyncpg.Connection, project_id: uuid.UUID, dataset_id: uuid.UUID, rows: list[NewRow], chosen: Sequence[bool]
) -> tuple[list[tuple[str, Outcome]], list[NewRow]]:
    """Create the rows that are new, in one statement. Returns per row its sample id and whether it
    was created or already there, and the rows created. `chosen[i]`: row i's id was given by the
    caller (else derived, and replaceable)."""
    created = await _insert(conn, project_id, dataset_id, rows)
    results: list[tuple[str, Outcome]] = [(row.id, "created") for row in rows]
    left = [i for i, row in enumerate(rows) if row.id not in created]
    if not left:
        return results, rows
    clashes = await conn.fetch(
        "SELECT id, dataset_id, content_hash, media_url FROM samples "
        "WHERE id = ANY($1::uuid[]) OR (dataset_id = $2 AND content_hash = ANY($3::text[]))",
        [rows[i].id for i in left],
        dataset_id,
        [rows[i].content_hash for i in left if rows[i].content_hash],
    )
    in_dataset = {
        row["content_hash"]: str(row["id"])
        for row in clashes
        if row["dataset_id"] == dataset_id and row["content_hash"]
    }
    by_id = {str(row["id"]): row for row in clashes}
    fresh: dict[int, NewRow] = {}
    for i in left:
        row, same_id = rows[i], by_id.get(rows[i].id)
        if row.content_hash in in_dataset:
            results[i] = (in_dataset[row.content_hash], "existing")
        elif same_id is not None and (same_id["dataset_id"], same_id["content_hash"], same_id["media_url"]) == (
            dataset_id,
            row.content_hash,
            row.media_url,
        ):
            results[i] = (row.id, "existing")
        elif chosen[i]:
            raise conflict(
                f"sample id {row.id} is already taken by a sample with other media or in another "
                "dataset; choose another id or leave `id` out",
                path=f"$.items[{i}].id",
                id=row.id,
            )
        else:
            # Its derived id went with the same image when it was moved to another dataset.
            fresh[i] = msgspec.structs.replace(row, id=str(uuid.uuid4()))
    created_again = await _insert(conn, project_id, dataset_id, list(fresh.values())) if fresh else set()
    for i, row in fresh.items():
        if row.id not in created_again:
            raise conflict("this image was added to the dataset by a concurrent call; retry", path=f"$.items[{i}]")
        results[i] = (row.id, "created")
    return results, [row for row in rows if row.id in created] + list(fresh.values())


def new_rows(dataset_id: str, items: list[NewSample]) -> list[NewRow]:
    """The rows of a bulk create, with their ids; refuses items that are malformed together."""
    rows: list[NewRow] = []
    ids: dict[str, int] = {}
    hashes: dict[str, int] = {}
    for i, item in enumerate(items):
        if (item.content_hash is None) == (item.media_url is None):
            raise invalid(
                "give exactly one of content_hash (an image in the media bucket) and media_url "
                "(an image kept outside Loupe)",
                path=f"$.items[{i}]",
            )
        if item.id is not None:
            ident = str(item.id)
        elif item.content_hash is not None:
            ident = sample_id_for(dataset_id, item.content_hash)
        else:
            ident = str(uuid.uuid4())
        if item.content_hash is not None:
            if item.content_hash in hashes:
                raise invalid(
                    f"items {hashes[item.content_hash]} and {i} are the same image; a dataset holds an image once",
                    path=f"$.items[{i}].content_hash",
                )
            hashes[item.content_hash] = i
        if ident in ids:
            raise invalid(f"items {ids[ident]} and {i} have the same id {ident}", path=f"$.items[{i}].id")
        ids[ident] = i
        rows.append(
            NewRow(
                id=ident,
                name=item.name.strip(),
                external_id=item.external_id,
                content_hash=item.content_hash,
                media_url=item.media_url,
                format=item.format,
                width=item.width,
                height=item.height,
                size_bytes=item.size,
                metadata=item.metadata,
                priority=item.priority,
            )
        )
    return rows


async def emit_created(
    conn: asyncpg.Connection, project_id: str, dataset_id: str, rows: list[NewRow], run_id: str | None = None
) -> None:
    for part in chunks([facts(row, dataset_id, "NEW") for row in rows]):
        await outbox.emit(
            conn,
            subjects.SAMPLES_CREATED,
            SamplesCreated(project_id=project_id, dataset_id=dataset_id, samples=part, run_id=run_id),
            project_id,
        )


NOT_STORED = "no image with this SHA-256 was stored by your organisation; upload it first"


async def check_media_owned(rt: Runtime, project_id: str, dataset_id: str, items: list[NewSample]) -> None:
    """Samples name by SHA-256 only images the project's organisation stored, so that no organisation reaches
    another's (a sample's /media hands out its original). Ingest knows who stored what and is asked once per
    call; an image nobody stored is refused alike, so that the answer never tells whether it exists."""
    hashes = {item.content_hash: i for i, item in enumerate(items) if item.content_hash is not None}
    if not hashes:
        return
    org_id = await rt.db.fetchval(
        "SELECT p.org_id FROM datasets d JOIN projects p ON p.id = d.project_id WHERE d.id = $1 AND p.id = $2",
        parse_uuid(dataset_id, "dataset"),
        parse_uuid(project_id, "project"),
    )
    if org_id is None:
        raise not_found("dataset", dataset_id)
    owned = set(
        (await rt.nats.request(subjects.OWNED_MEDIA, OwnedMediaRequest(org_id=str(org_id), hashes=list(hashes)))).owned
    )
    for content_hash, i in hashes.items():
        if content_hash not in owned:
            raise invalid(NOT_STORED, path=f"$.items[{i}].content_hash")


@ANSWERS(subjects.CREATE_SAMPLES)
async def create_many(rt: Runtime, request: CreateSamplesRequest, ctx: RequestContext) -> CreatedSamples:
    """Bulk create from a caller. Ingest's images become samples through `register`, which trusts them."""
    items = request.body.items
    rows = new_rows(str(parse_uuid(request.dataset_id, "dataset")), items)
    await check_media_owned(rt, request.project_id, request.dataset_id, items)
    async with rt.db.acquire() as conn, conn.transaction():
        dataset = await datasets.fetch(conn, request.project_id, request.dataset_id, "FOR KEY SHARE")
        dataset_id = str(dataset["id"])
        results, created = await insert_samples(
            conn, dataset["project_id"], dataset["id"], rows, [item.id is not None for item in items]
        )
        await emit_created(conn, str(dataset["project_id"]), dataset_id, created)
    return CreatedSamples(
        created=len(created),
        existing=len(rows) - len(created),
        items=[CreatedSample(id=ident, outcome=outcome) for ident, outcome in results],
    )


async def register(rt: Runtime, project_id: str | None, data: MediaStored, delivery: Delivery) -> None:
    """Ingest stored images for a dataset: make them samples, once, however often the event comes."""
    async with once(rt.db, delivery.consumer, delivery.msg_id) as conn:
        if conn is None:
            return
        try:
            dataset = await datasets.fetch(conn, data.project_id, data.dataset_id, "FOR KEY SHARE")
        except LoupeError:
            # Deleted while ingest worked on it: nothing left to add the images to, and retrying won't help.
            log.warning(
                "dropping %d stored images of run %s: dataset %s of project %s does not exist",
                len(data.items),
                data.run_id,
                data.dataset_id,
                data.project_id,
            )
            return
        rows = [
            from_row(
                NewRow,
                msgspec.structs.asdict(m),
                id=m.sample_id,
                content_hash=m.sha256,
                media_url=None,
                size_bytes=m.size,
            )
            for m in data.items
        ]
        _, created = await insert_samples(conn, dataset["project_id"], dataset["id"], rows, [False] * len(rows))
        await emit_created(conn, str(dataset["project_id"]), str(dataset["id"]), created, data.run_id)


@ANSWERS(subjects.FIND_SAMPLES)
async def find(rt: Runtime, request: FindSamplesByHash, ctx: RequestContext) -> SamplesByHash:
    rows = await rt.db.fetch(
        "SELECT content_hash, id FROM samples WHERE dataset_id = $1 AND project_id = $2 "
        "AND content_hash = ANY($3::text[])",
        parse_uuid(request.dataset_id, "dataset"),
        parse_uuid(request.project_id, "project"),
        request.content_hashes,
    )
    return SamplesByHash(found={row["content_hash"]: str(row["id"]) for row in rows})


# -- reading ----------------------------------------------------------------------------------------


@ANSWERS(subjects.GET_SAMPLE)
async def get(rt: Runtime, request: SampleRef, ctx: RequestContext) -> Sample:
    query = f"SELECT {COLUMNS} FROM samples WHERE id = $1 AND project_id = $2"
    return to_sample(await one_of_project(rt.db, query, "sample", request.sample_id, request.project_id))


# -- updating ---------------------------------------------------------------------------------------

UPDATE = f"""
    UPDATE samples s SET name = r.name, external_id = r.external_id, metadata = r.metadata, tags = r.tags,
           priority = r.priority, status = r.status, labeler_id = r.labeler_id, reviewer_id = r.reviewer_id,
           version = s.version + 1, updated_at = now()
    FROM json_to_recordset($2::text::json) AS r(id uuid, name text, external_id text, metadata jsonb, tags text[],
         priority double precision, status text, labeler_id uuid, reviewer_id uuid)
    WHERE s.id = r.id AND s.project_id = $1
    RETURNING {", ".join("s." + c for c in COLUMNS.split(", "))}"""
EDITABLE = ("name", "external_id", "metadata", "tags", "priority", "status", "labeler_id", "reviewer_id")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge key by key, `null` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def next_values(current: Sample, changes: SampleChanges, role: str | None, path: str) -> dict[str, Any]:
    """The fields `changes` really changes, with their new values; refuses a stale version, a forbidden
    status step, and metadata given both whole and as a patch. `path` names the item in errors."""
    if changes.version is not msgspec.UNSET:
        check_version(changes.version, current.version, f"sample {current.id}", f"{path}.version", id=current.id)
    if changes.metadata is not msgspec.UNSET and changes.metadata_patch is not msgspec.UNSET:
        raise invalid(
            "send metadata (replaces it) or metadata_patch (merges into it), not both", path=f"{path}.metadata_patch"
        )
    wanted = {field: getattr(changes, field) for field in EDITABLE if getattr(changes, field) is not msgspec.UNSET}
    if changes.metadata_patch is not msgspec.UNSET:
        wanted["metadata"] = merge_patch(current.metadata, changes.metadata_patch)
    if "name" in wanted:
        wanted["name"] = wanted["name"].strip()
    for field in ("labeler_id", "reviewer_id"):
        if wanted.get(field) is not None:
            wanted[field] = str(wanted[field])
    if "status" in wanted:
        check_transition(current.status, wanted["status"], role, f"{path}.status")
    return {field: value for field, value in wanted.items() if getattr(current, field) != value}


async def check_users(conn: asyncpg.Connection, project_id: uuid.UUID, assigned: dict[str, str]) -> None:
    """Labelers and reviewers must be active users of the project's organisation; `assigned` maps
    each error path to a user id."""
    if not assigned:
        return
    known = {
        str(row["id"])
        for row in await conn.fetch(
            "SELECT u.id FROM users u JOIN projects p ON p.org_id = u.org_id "
            "WHERE p.id = $1 AND u.id = ANY($2::uuid[]) AND u.deactivated_at IS NULL",
            project_id,
            list(set(assigned.values())),
        )
    }
    for path, user_id in assigned.items():
        if user_id not in known:
            raise invalid(
                f"{user_id} is not an active user of this organisation; assign one of GET /v1/users", path=path
            )


async def apply_updates(
    conn: asyncpg.Connection,
    project_id: uuid.UUID,
    updates: list[tuple[uuid.UUID, SampleChanges]],
    paths: list[str],
    role: str | None,
) -> list[tuple[Sample, list[str]]]:
    """Apply each (sample id, changes) pair, all or nothing; per pair the sample as it is afterwards and
    the fields that changed. `paths[i]` names pair i in errors ("$" or "$.items[3]")."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM samples WHERE project_id = $1 AND id = ANY($2::uuid[]) ORDER BY id FOR UPDATE",
        project_id,
        [ident for ident, _ in updates],
    )
    current = {row["id"]: to_sample(row) for row in rows}
    changed: dict[uuid.UUID, dict[str, Any]] = {}
    assigned: dict[str, str] = {}
    for (ident, changes), path in zip(updates, paths, strict=True):
        if ident in changed:
            raise invalid(f"sample {ident} appears twice; send one item per sample", path=f"{path}.id")
        sample = current.get(ident)
        if sample is None:
            raise not_of_project("sample", ident, f"{path}.id")
        changed[ident] = next_values(sample, changes, role, path)
        assigned |= {
            f"{path}.{field}": changed[ident][field]
            for field in ("labeler_id", "reviewer_id")
            if changed[ident].get(field) is not None
        }
    await check_users(conn, project_id, assigned)
    writes = [
        {**{field: getattr(current[ident], field) for field in EDITABLE}, **values, "id": str(ident)}
        for ident, values in changed.items()
        if values
    ]
    updated = {
        uuid.UUID(s.id): s
        for s in map(to_sample, await conn.fetch(UPDATE, project_id, encoder.encode(writes).decode()))
    }
    if updated:
        fields = sorted({field for values in changed.values() for field in values})
        for part in chunks([facts(s, s.dataset_id, s.status) for s in updated.values()]):
            await outbox.emit(
                conn,
                subjects.SAMPLES_UPDATED,
                SamplesUpdated(project_id=str(project_id), samples=part, changed=fields),
                str(project_id),
            )
    return [(updated.get(ident, current[ident]), sorted(changed[ident])) for ident, _ in updates]


def caller_role(ctx: RequestContext) -> str | None:
    return ctx.caller.role if ctx.caller is not None else None


@ANSWERS(subjects.UPDATE_SAMPLE)
async def update(rt: Runtime, request: UpdateSampleRequest, ctx: RequestContext) -> Sample:
    ident = parse_uuid(request.sample_id, "sample")
    async with rt.db.acquire() as conn, conn.transaction():
        try:
            [(sample, _)] = await apply_updates(
                conn, parse_uuid(request.project_id, "project"), [(ident, request.changes)], ["$"], caller_role(ctx)
            )
        except LoupeError as exc:
            if exc.code == "not_found":
                raise not_found("sample", request.sample_id) from None
            raise
    return sample


@ANSWERS(subjects.UPDATE_SAMPLES)
async def update_many(rt: Runtime, request: UpdateSamplesRequest, ctx: RequestContext) -> UpdatedSamples:
    items = request.body.items
    async with rt.db.acquire() as conn, conn.transaction():
        results = await apply_updates(
            conn,
            parse_uuid(request.project_id, "project"),
            [(item.id, item) for item in items],
            [f"$.items[{i}]" for i in range(len(items))],
            caller_role(ctx),
        )
    return UpdatedSamples(
        items=[UpdatedSample(id=sample.id, version=sample.version, changed=fields) for sample, fields in results]
    )


# -- deleting and moving ----------------------------------------------------------------------------


async def delete_ids(conn: asyncpg.Connection, project_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    """Delete all of `ids` or none: an id that is not a sample of the project is a 404 naming it."""
    gone = {
        row["id"]
        for row in await conn.fetch(
            "DELETE FROM samples WHERE project_id = $1 AND id = ANY($2::uuid[]) RETURNING id", project_id, ids
        )
    }
    require_all("sample", ids, gone, "$.ids")
    await outbox.emit(
        conn,
        subjects.SAMPLES_DELETED,
        SamplesDeleted(project_id=str(project_id), ids=[str(i) for i in gone]),
        str(project_id),
    )


@ANSWERS(subjects.DELETE_SAMPLE)
async def delete(rt: Runtime, request: SampleRef, ctx: RequestContext) -> Empty:
    ident = parse_uuid(request.sample_id, "sample")
    async with rt.db.acquire() as conn, conn.transaction():
        try:
            await delete_ids(conn, parse_uuid(request.project_id, "project"), [ident])
        except LoupeError:
            raise not_found("sample", request.sample_id) from None
    return Empty()


@ANSWERS(subjects.DELETE_SAMPLES)
async def delete_many(rt: Runtime, request: DeleteSamplesRequest, ctx: RequestContext) -> DeletedSamples:
    ids = list(dict.fromkeys(request.body.ids))  # a repeated id is deleted once
    async with rt.db.acquire() as conn, conn.transaction():
        await delete_ids(conn, parse_uuid(request.project_id, "project"), ids)
    return DeletedSamples(deleted=len(ids))


@ANSWERS(subjects.MOVE_SAMPLES)
async def move(rt: Runtime, request: MoveSamplesRequest, ctx: RequestContext) -> MovedSamples:
    ids = list(dict.fromkeys(request.body.ids))
    project_id = parse_uuid(request.project_id, "project")
    async with rt.db.acquire() as conn, conn.transaction():
        try:
            target = await datasets.fetch(conn, request.project_id, str(request.body.dataset_id), "FOR KEY SHARE")
        except LoupeError as exc:
            raise LoupeError(exc.code, exc.message, path="$.dataset_id", **exc.details) from None
        where = {
            row["id"]: row["dataset_id"]
            for row in await conn.fetch(
                "SELECT id, dataset_id FROM samples WHERE project_id = $1 AND id = ANY($2::uuid[]) ORDER BY id FOR UPDATE",
                project_id,
                ids,
            )
        }
        require_all("sample", ids, where, "$.ids")
        moving = [ident for ident in ids if where[ident] != target["id"]]
        try:
            async with conn.transaction():  # a savepoint, so the clash can still be explained below
                await conn.execute(
                    "UPDATE samples SET dataset_id = $2, version = version + 1, updated_at = now() "
                    "WHERE id = ANY($1::uuid[])",
                    moving,
                    target["id"],
                )
        except asyncpg.UniqueViolationError:
            raise await duplicate_on_move(conn, ids, moving, target) from None
        if moving:
            await outbox.emit(
                conn,
                subjects.SAMPLES_MOVED,
                SamplesMoved(project_id=str(project_id), dataset_id=str(target["id"]), ids=[str(i) for i in moving]),
                str(project_id),
            )
    return MovedSamples(moved=len(moving), unchanged=len(ids) - len(moving))


async def duplicate_on_move(
    conn: asyncpg.Connection, ids: list[uuid.UUID], moving: list[uuid.UUID], target: asyncpg.Record
) -> LoupeError:
    """Name the two samples that would be the same image in the target dataset: a moving one and
    either one already there or another moving one."""
    pair = await conn.fetchrow(
        "SELECT a.id AS moving, b.id AS other, a.content_hash FROM samples a JOIN samples b "
        "ON b.content_hash = a.content_hash AND b.id <> a.id AND b.project_id = a.project_id "
        "WHERE a.id = ANY($1::uuid[]) AND (b.dataset_id = $2 OR b.id = ANY($1::uuid[])) LIMIT 1",
        moving,
        target["id"],
    )
    return conflict(
        f"samples {pair['moving']} and {pair['other']} are the same image ({pair['content_hash']}) and a "
        f"dataset holds an image once; leave one of them out of the move or delete it",
        path=f"$.ids[{ids.index(pair['moving'])}]",
        samples=[str(pair["moving"]), str(pair["other"])],
        dataset_id=str(target["id"]),
    )
