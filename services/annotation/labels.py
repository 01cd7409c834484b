"""Labels and their objects: reads, whole-label writes, bulk object writes, the audit trail, and the
LabelChanged event every change emits.

A write is checked completely before anything is stored (schema, as annotation keeps it in
schema_facts; image size; versions; status step), then stored in one transaction: the labels it
touches are locked in sample order, objects are upserted in one statement, one audit row is written
per object and label change, each label's version grows by one and the call's LabelChanged event goes
into the outbox with it. So a failed call changes nothing, and two writers of the same label are
serialised.

A label is never removed: deleting it empties it (UNLABELED, no objects) and bumps its version, so
the catalog's read model, which keeps the newest revision, sees the deletion.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
import msgspec

from proto import subjects
from proto.annotation import (
    EVENT_LABELS,
    AuditEntry,
    AuditPage,
    DeletedObjects,
    DeleteObjectsRequest,
    Label,
    LabelChanged,
    LabelInput,
    LabelObject,
    LabelRef,
    LabelStatus,
    LabelSummary,
    ListAuditRequest,
    ListObjectsRequest,
    ObjectInput,
    ObjectPage,
    PutLabelRequest,
    SampleObject,
    UpdateLabelRequest,
    UpsertObjectsRequest,
    WrittenObject,
    WrittenObjects,
)
from proto.common import Caller, Empty
from proto.schema import LabelClassMerged
from services.annotation import label_status, labelsets, sample_facts, schema_facts
from services.annotation.refs import new_ids
from services.annotation.validation import SchemaIndex, check_image_attributes, check_object, check_tags
from shared import outbox
from shared.bus import RequestContext, encoder
from shared.callers import actor
from shared.consumers import Delivery
from shared.errors import check_version, invalid
from shared.ids import parse_uuid
from shared.paging import decode_cursor, encode_cursor, keyset_page
from shared.rows import from_row
from shared.service import Answers, Runtime

ANSWERS = Answers()

decode_object = msgspec.json.Decoder(LabelObject).decode
decode_attributes = msgspec.json.Decoder(dict[str, Any]).decode

LABEL_COLUMNS = (
    "sample_id, status, score, tag_class_ids, attributes::text AS attributes, version, created_by, "
    "created_at, updated_by, updated_at"
)


class Planned(msgspec.Struct, frozen=True):
    """An object as it will be stored, and what storing it does."""

    sample_id: uuid.UUID
    obj: LabelObject
    outcome: Literal["created", "updated", "unchanged"]


class ObjectRow(msgspec.Struct, frozen=True):
    """An object as `json_to_recordset` reads it into the objects table: one JSON text for a call's objects
    costs asyncpg far less to send than an array per column (it inspects every element of an array)."""

    id: str
    sample_id: uuid.UUID
    class_id: str
    version: int
    body: msgspec.Raw  # the object as the API returns it, already JSON


class Scope(msgspec.Struct, frozen=True):
    """What one write works in: the project, the labelset row, who writes, and when."""

    project_id: uuid.UUID
    labelset_id: uuid.UUID
    labelset: str
    actor: str | None
    role: str | None
    now: datetime


async def scope_of(
    conn: asyncpg.Connection | asyncpg.Pool, project_id: str, labelset: str, caller: Caller | None
) -> Scope:
    project = parse_uuid(project_id, "project")
    row = await labelsets.resolve(conn, project, labelset)
    return Scope(
        project_id=project,
        labelset_id=row["id"],
        labelset=row["name"],
        actor=actor(caller),
        role=caller.role if caller else None,
        now=datetime.now(UTC),
    )


# -- reading ----------------------------------------------------------------------------------------


def to_label(scope: Scope, sample_id: uuid.UUID, row: asyncpg.Record | None, bodies: Iterable[str]) -> Label:
    if row is None or row["version"] == 0:
        return Label(
            project_id=str(scope.project_id), sample_id=str(sample_id), labelset=scope.labelset, status="UNLABELED"
        )
    return Label(
        project_id=str(scope.project_id),
        sample_id=str(sample_id),
        labelset=scope.labelset,
        status=row["status"],
        score=row["score"],
        objects=[decode_object(body) for body in bodies],
        tag_class_ids=[str(t) for t in row["tag_class_ids"]],
        attributes=decode_attributes(row["attributes"]),
        version=row["version"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_by=row["updated_by"],
        updated_at=row["updated_at"],
    )


async def read_label(conn: asyncpg.Connection | asyncpg.Pool, scope: Scope, sample_id: uuid.UUID) -> Label:
    row = await conn.fetchrow(
        f"SELECT {LABEL_COLUMNS} FROM labels WHERE labelset_id = $1 AND sample_id = $2", scope.labelset_id, sample_id
    )
    bodies = await conn.fetch(
        "SELECT body::text FROM objects WHERE labelset_id = $1 AND sample_id = $2 ORDER BY seq",
        scope.labelset_id,
        sample_id,
    )
    return to_label(scope, sample_id, row, (b["body"] for b in bodies))


@ANSWERS(subjects.GET_LABEL)
async def get(rt: Runtime, request: LabelRef, ctx: RequestContext) -> Label:
    scope = await scope_of(rt.db, request.project_id, request.labelset, ctx.caller)
    sample = parse_uuid(request.sample_id, "sample")
    async with rt.db.acquire() as conn:
        await sample_facts.load(rt, conn, scope.project_id, [sample], ctx.caller)
        return await read_label(conn, scope, sample)


# -- the write path shared by every call ------------------------------------------------------------


async def lock_labels(
    conn: asyncpg.Connection, scope: Scope, sample_ids: Iterable[uuid.UUID], made_as: LabelStatus | None = None
) -> dict[uuid.UUID, asyncpg.Record]:
    """Lock the labels of these samples, making those that have none: empty (UNLABELED, version 0) for the
    caller to fill in, or, given `made_as`, as the write leaves them (that status, version 1), which saves
    writing each row twice; such rows say `made`, for `finish`. A label made here is locked already (no one
    else sees it before commit; a concurrent maker of the same one waits on its key), so only the others
    are locked again, in sample order as the labels were made."""
    ordered = sorted(set(sample_ids))
    made = await conn.fetch(
        "INSERT INTO labels (labelset_id, sample_id, project_id, status, version, created_by, created_at, updated_by, "
        "updated_at) SELECT $1, s, $2, $6, $7, $3, $4, $3, $4 FROM unnest($5::uuid[]) AS s ON CONFLICT DO NOTHING "
        f"RETURNING {LABEL_COLUMNS}, true AS made",
        scope.labelset_id,
        scope.project_id,
        scope.actor,
        scope.now,
        ordered,
        made_as or "UNLABELED",
        1 if made_as else 0,
    )
    labels = {row["sample_id"]: row for row in made}
    if len(labels) < len(ordered):
        rows = await conn.fetch(
            f"SELECT {LABEL_COLUMNS}, false AS made FROM labels WHERE labelset_id = $1 "
            "AND sample_id = ANY($2::uuid[]) ORDER BY sample_id FOR UPDATE",
            scope.labelset_id,
            [sample for sample in ordered if sample not in labels],
        )
        labels |= {row["sample_id"]: row for row in rows}
    return labels


def plan_objects(
    scope: Scope, items: list[tuple[str, uuid.UUID, ObjectInput]], existing: dict[str, asyncpg.Record]
) -> list[Planned]:
    """Each object as it will be stored: new ones get an id, changed ones a new version."""
    planned = []
    fresh = iter(new_ids(sum(1 for _, _, item in items if item.id is None)))
    for path, sample_id, item in items:
        ident = str(item.id) if item.id else next(fresh)
        old = existing.get(ident)
        if old is not None and (old["labelset_id"] != scope.labelset_id or old["sample_id"] != sample_id):
            raise invalid(
                f"object {ident} belongs to another sample or labelset; leave `id` out to create a copy",
                path=f"{path}.id",
            )
        current = old["version"] if old is not None else 0
        if item.version is not None:
            check_version(item.version, current, f"object {ident}", f"{path}.version")
        obj = LabelObject(
            id=ident,
            class_id=str(item.class_id),
            shape=item.shape,
            z_index=item.z_index,
            attributes=item.attributes,
            confidence=item.confidence,
            external_id=item.external_id,
            version=current + 1,
            updated_by=scope.actor,
            updated_at=scope.now,
        )
        if old is None:
            planned.append(Planned(sample_id, obj, "created"))
            continue
        before = decode_object(old["body"])
        same = (
            before.class_id,
            before.shape,
            before.z_index,
            before.attributes,
            before.confidence,
            before.external_id,
        ) == (obj.class_id, obj.shape, obj.z_index, obj.attributes, obj.confidence, obj.external_id)
        planned.append(Planned(sample_id, before, "unchanged") if same else Planned(sample_id, obj, "updated"))
    return planned


async def existing_objects(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> dict[str, asyncpg.Record]:
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT id, labelset_id, sample_id, version, body::text FROM objects WHERE id = ANY($1::uuid[]) FOR UPDATE", ids
    )
    return {str(row["id"]): row for row in rows}


async def store_objects(conn: asyncpg.Connection, scope: Scope, planned: list[Planned]) -> None:
    changed = [p for p in planned if p.outcome != "unchanged"]
    if not changed:
        return
    bodies = [encoder.encode(p.obj).decode() for p in changed]
    rows = [
        ObjectRow(p.obj.id, p.sample_id, p.obj.class_id, p.obj.version, msgspec.Raw(body))
        for p, body in zip(changed, bodies, strict=True)
    ]
    await conn.execute(
        "INSERT INTO objects (id, labelset_id, sample_id, class_id, version, body) "
        "SELECT o.id, $1, o.sample_id, o.class_id, o.version, o.body "
        "FROM json_to_recordset($2::text::json) AS o (id uuid, sample_id uuid, class_id uuid, version int, body json) "
        "ON CONFLICT (id) DO UPDATE SET class_id = EXCLUDED.class_id, version = EXCLUDED.version, body = EXCLUDED.body",
        scope.labelset_id,
        encoder.encode(rows).decode(),
    )
    await audit_objects(conn, scope, [(p.sample_id, p.outcome, body) for p, body in zip(changed, bodies, strict=True)])


async def delete_object_rows(conn: asyncpg.Connection, scope: Scope, where: str, *args: Any) -> set[uuid.UUID]:
    """Delete the labelset's objects matching `where` ($2...) and audit it; the samples touched."""
    rows = await conn.fetch(
        f"DELETE FROM objects WHERE labelset_id = $1 AND {where} RETURNING id, sample_id", scope.labelset_id, *args
    )
    deleted: dict[uuid.UUID, list[str]] = {}
    for row in rows:
        deleted.setdefault(row["sample_id"], []).append(str(row["id"]))
    await audit(
        conn,
        scope,
        [(sample, "objects.deleted", encoder.encode({"deleted": ids}).decode()) for sample, ids in deleted.items()],
    )
    return set(deleted)


async def audit(conn: asyncpg.Connection, scope: Scope, entries: list[tuple[uuid.UUID, str, str]]) -> None:
    """(sample, action, change as JSON) rows, in one COPY."""
    if entries:
        await conn.copy_records_to_table(
            "audit",
            columns=("project_id", "sample_id", "labelset", "action", "actor", "at", "change"),
            records=[
                (scope.project_id, sample, scope.labelset, action, scope.actor, scope.now, change)
                for sample, action, change in entries
            ],
        )


async def audit_objects(conn: asyncpg.Connection, scope: Scope, written: list[tuple[uuid.UUID, str, str]]) -> None:
    """One objects.written row per sample for (sample, created|updated, object as JSON): a row per
    sample and call, not per object, keeps the trail's cost a small part of a bulk write."""
    by_sample: dict[uuid.UUID, dict[str, list[str]]] = {}
    for sample, outcome, body in written:
        by_sample.setdefault(sample, {"created": [], "updated": []})[outcome].append(body)
    await audit(
        conn,
        scope,
        [
            (
                sample,
                "objects.written",
                f'{{"created":[{",".join(lists["created"])}],"updated":[{",".join(lists["updated"])}]}}',
            )
            for sample, lists in by_sample.items()
        ],
    )


async def finish(
    conn: asyncpg.Connection,
    scope: Scope,
    sample_ids: Iterable[uuid.UUID],
    new_status: dict[uuid.UUID, LabelStatus] | None = None,
    made: Iterable[asyncpg.Record] = (),
) -> dict[uuid.UUID, int]:
    """Bump the version of each label written (setting the statuses given) and emit LabelChanged with
    the class counts each has now, also for the labels `lock_labels` made as this write leaves them
    (`made`, rows of theirs); answers the new versions."""
    rows = list(made)
    bumped = sorted(set(sample_ids) - {row["sample_id"] for row in rows})
    if bumped:
        rows += await conn.fetch(
            "UPDATE labels l SET version = l.version + 1, status = coalesce(c.status, l.status), updated_by = $3, "
            "updated_at = $4 FROM unnest($2::uuid[], $5::text[]) AS c (sample_id, status) "
            "WHERE l.labelset_id = $1 AND l.sample_id = c.sample_id "
            "RETURNING l.sample_id, l.version, l.status, l.tag_class_ids",
            scope.labelset_id,
            bumped,
            scope.actor,
            scope.now,
            [new_status.get(i) if new_status else None for i in bumped],
        )
    if not rows:
        return {}
    ids = sorted(row["sample_id"] for row in rows)
    counts: dict[uuid.UUID, dict[str, int]] = {i: {} for i in ids}
    for row in await conn.fetch(
        "SELECT sample_id, class_id, count(*) AS n FROM objects "
        "WHERE labelset_id = $1 AND sample_id = ANY($2::uuid[]) GROUP BY 1, 2",
        scope.labelset_id,
        ids,
    ):
        counts[row["sample_id"]][str(row["class_id"])] = row["n"]
    summaries = [
        LabelSummary(
            sample_id=str(row["sample_id"]),
            revision=row["version"],
            status=row["status"],
            class_counts=counts[row["sample_id"]],
            tag_class_ids=[str(t) for t in row["tag_class_ids"]],
        )
        for row in rows
    ]
    project = str(scope.project_id)
    await outbox.emit_many(
        conn,
        subjects.LABEL_CHANGED,
        [
            LabelChanged(
                project_id=project,
                labelset=scope.labelset,
                labels=summaries[i : i + EVENT_LABELS],
                changed_by=scope.actor or "",
                changed_at=scope.now,
            )
            for i in range(0, len(summaries), EVENT_LABELS)
        ],
        project,
    )
    return {row["sample_id"]: row["version"] for row in rows}


def validate_objects(
    schema: SchemaIndex, facts: dict[uuid.UUID, asyncpg.Record], items: Iterable[tuple[str, uuid.UUID, ObjectInput]]
) -> list[tuple[str, uuid.UUID, ObjectInput]]:
    checked = []
    seen: set[uuid.UUID] = set()
    for path, sample_id, item in items:
        if item.id is not None:
            if item.id in seen:
                raise invalid(f"object {item.id} is given twice in this call", path=f"{path}.id")
            seen.add(item.id)
        fact = facts[sample_id]
        what = f"object {path[path.rindex('[') + 1 : -1]}"  # $.items[12] → object 12
        checked.append((path, sample_id, check_object(item, schema, fact["width"], fact["height"], path, what=what)))
    return checked


# -- whole-label writes -----------------------------------------------------------------------------


@ANSWERS(subjects.PUT_LABEL)
async def put(rt: Runtime, request: PutLabelRequest, ctx: RequestContext) -> Label:
    sample = parse_uuid(request.sample_id, "sample")
    schema = await schema_facts.for_write(rt, request.project_id, ctx)
    async with rt.db.acquire() as conn:
        scope = await scope_of(conn, request.project_id, request.labelset, ctx.caller)
        facts = await sample_facts.load(rt, conn, scope.project_id, [sample], ctx.caller)
        async with conn.transaction():
            await replace_label(conn, scope, schema, facts[sample], request.label)
            return await read_label(conn, scope, sample)


async def replace_label(
    conn: asyncpg.Connection,
    scope: Scope,
    schema: SchemaIndex,
    fact: asyncpg.Record,
    body: LabelInput,
    path: str = "$",
    *,
    workflow: bool = True,
) -> None:
    """Make a sample's label exactly `body` (its objects not in `body` are deleted), inside the caller's
    transaction; errors name fields under `path` (the label's place in the request). `workflow=False`
    sets the status without checking the step (an import restores a state; it takes no step)."""
    sample = fact["id"]
    tags = check_tags(body.tag_class_ids, schema, f"{path}.tag_class_ids")
    attributes = check_image_attributes(body.attributes, schema, f"{path}.attributes")
    items = validate_objects(
        schema, {sample: fact}, ((f"{path}.objects[{i}]", sample, o) for i, o in enumerate(body.objects))
    )
    label = (await lock_labels(conn, scope, [sample]))[sample]
    check_version(body.version, label["version"], "the label", f"{path}.version")
    current: LabelStatus = label["status"] if label["version"] else "UNLABELED"
    if workflow:
        label_status.check_transition(current, body.status, scope.role, f"{path}.status")
    planned = plan_objects(scope, items, await existing_objects(conn, [o.id for _, _, o in items if o.id]))
    keep = [p.obj.id for p in planned]
    await delete_object_rows(conn, scope, "sample_id = $2 AND NOT (id = ANY($3::uuid[]))", sample, keep)
    await store_objects(conn, scope, planned)
    await set_label_fields(
        conn,
        scope,
        sample,
        label,
        {"status": body.status, "score": body.score, "tag_class_ids": tags, "attributes": attributes},
    )
    await finish(conn, scope, [sample])


async def set_label_fields(
    conn: asyncpg.Connection,
    scope: Scope,
    sample: uuid.UUID,
    label: asyncpg.Record,
    wanted: dict[str, Any],
    action: str | None = None,
) -> None:
    """Write the label's own fields and audit what changed (before, after) under `action`, by default
    what the change amounts to."""
    before = {
        "status": label["status"] if label["version"] else "UNLABELED",
        "score": label["score"],
        "tag_class_ids": [str(t) for t in label["tag_class_ids"]],
        "attributes": decode_attributes(label["attributes"]),
    }
    after = {**before, **{k: [str(t) for t in v] if k == "tag_class_ids" else v for k, v in wanted.items()}}
    changed = {field: [before[field], after[field]] for field in after if before[field] != after[field]}
    await conn.execute(
        "UPDATE labels SET status = $3, score = $4, tag_class_ids = $5::uuid[], attributes = $6::text::jsonb "
        "WHERE labelset_id = $1 AND sample_id = $2",
        scope.labelset_id,
        sample,
        after["status"],
        after["score"],
        after["tag_class_ids"],
        encoder.encode(after["attributes"]).decode(),
    )
    action = action or (
        "label.created"
        if label["version"] == 0
        else "status.changed"
        if set(changed) == {"status"}
        else "label.updated"
    )
    if changed or label["version"] == 0:
        await audit(conn, scope, [(sample, action, encoder.encode(changed).decode())])


@ANSWERS(subjects.UPDATE_LABEL)
async def update(rt: Runtime, request: UpdateLabelRequest, ctx: RequestContext) -> Label:
    changes = request.changes
    sample = parse_uuid(request.sample_id, "sample")
    wanted: dict[str, Any] = {}
    if changes.tag_class_ids is not msgspec.UNSET or changes.attributes is not msgspec.UNSET:
        schema = await schema_facts.for_write(rt, request.project_id, ctx)
        if changes.tag_class_ids is not msgspec.UNSET:
            wanted["tag_class_ids"] = check_tags(changes.tag_class_ids, schema, "$.tag_class_ids")
        if changes.attributes is not msgspec.UNSET:
            wanted["attributes"] = check_image_attributes(changes.attributes, schema, "$.attributes")
    if changes.score is not msgspec.UNSET:
        wanted["score"] = changes.score
    async with rt.db.acquire() as conn:
        scope = await scope_of(conn, request.project_id, request.labelset, ctx.caller)
        await sample_facts.load(rt, conn, scope.project_id, [sample], ctx.caller)
        async with conn.transaction():
            label = (await lock_labels(conn, scope, [sample]))[sample]
            check_version(changes.version, label["version"], "the label", "$.version")
            if changes.status is not msgspec.UNSET:
                current: LabelStatus = label["status"] if label["version"] else "UNLABELED"
                label_status.check_transition(current, changes.status, scope.role, "$.status")
                wanted["status"] = changes.status
            await set_label_fields(conn, scope, sample, label, wanted)
            await finish(conn, scope, [sample])
            return await read_label(conn, scope, sample)


async def change_status(
    conn: asyncpg.Connection, scope: Scope, sample: uuid.UUID, status: LabelStatus, path: str = "$.status"
) -> int:
    """Move a label along the workflow (work queues hand samples out this way); its new version."""
    label = (await lock_labels(conn, scope, [sample]))[sample]
    current: LabelStatus = label["status"] if label["version"] else "UNLABELED"
    label_status.check_transition(current, status, scope.role, path)
    await set_label_fields(conn, scope, sample, label, {"status": status})
    return (await finish(conn, scope, [sample]))[sample]


@ANSWERS(subjects.DELETE_LABEL)
async def delete(rt: Runtime, request: LabelRef, ctx: RequestContext) -> Empty:
    sample = parse_uuid(request.sample_id, "sample")
    async with rt.db.acquire() as conn, conn.transaction():
        scope = await scope_of(conn, request.project_id, request.labelset, ctx.caller)
        label = (await lock_labels(conn, scope, [sample]))[sample]
        if label["version"] == 0:
            return Empty()  # never written: nothing to delete
        await delete_object_rows(conn, scope, "sample_id = $2", sample)
        await set_label_fields(
            conn,
            scope,
            sample,
            label,
            {"status": "UNLABELED", "score": None, "tag_class_ids": [], "attributes": {}},
            "label.deleted",
        )
        await finish(conn, scope, [sample])
    return Empty()


# -- bulk object writes -----------------------------------------------------------------------------


@ANSWERS(subjects.UPSERT_OBJECTS)
async def upsert_objects(rt: Runtime, request: UpsertObjectsRequest, ctx: RequestContext) -> WrittenObjects:
    body = request.body
    schema = await schema_facts.for_write(rt, request.project_id, ctx)
    paths: dict[uuid.UUID, str] = {}
    for index, item in enumerate(body.items):
        paths.setdefault(item.sample_id, f"$.items[{index}].sample_id")
    async with rt.db.acquire() as conn:
        scope = await scope_of(conn, request.project_id, request.labelset, ctx.caller)
        facts = await sample_facts.load(rt, conn, scope.project_id, paths, ctx.caller, paths)
        items = validate_objects(schema, facts, ((f"$.items[{i}]", o.sample_id, o) for i, o in enumerate(body.items)))
        async with conn.transaction():
            labels = await lock_labels(conn, scope, paths, made_as=body.status)
            made = [row for row in labels.values() if row["made"]]
            empty = [sample for sample, row in labels.items() if row["version"] == 0]  # made before, never written
            if made or empty:
                label_status.check_transition("UNLABELED", body.status, scope.role, "$.status")
            planned = plan_objects(scope, items, await existing_objects(conn, [o.id for _, _, o in items if o.id]))
            await store_objects(conn, scope, planned)
            touched = {p.sample_id for p in planned if p.outcome != "unchanged"} | set(empty)
            await finish(conn, scope, touched, dict.fromkeys(empty, body.status), made=made)
    outcomes = [p.outcome for p in planned]
    sample_text = {sample: str(sample) for sample in paths}  # once per sample, not per object
    return WrittenObjects(
        created=outcomes.count("created"),
        updated=outcomes.count("updated"),
        unchanged=outcomes.count("unchanged"),
        items=[
            WrittenObject(id=p.obj.id, sample_id=sample_text[p.sample_id], version=p.obj.version, outcome=p.outcome)
            for p in planned
        ],
    )


@ANSWERS(subjects.DELETE_OBJECTS)
async def delete_objects(rt: Runtime, request: DeleteObjectsRequest, ctx: RequestContext) -> DeletedObjects:
    ids = request.body.ids
    async with rt.db.acquire() as conn, conn.transaction():
        scope = await scope_of(conn, request.project_id, request.labelset, ctx.caller)
        rows = await conn.fetch(
            "SELECT id, sample_id FROM objects WHERE labelset_id = $1 AND id = ANY($2::uuid[])", scope.labelset_id, ids
        )
        found = {row["id"] for row in rows}
        for index, ident in enumerate(ids):
            if ident not in found:
                raise invalid(
                    f"object {ident} is not in labelset {scope.labelset!r} of this project; nothing was deleted",
                    path=f"$.ids[{index}]",
                )
        await lock_labels(conn, scope, {row["sample_id"] for row in rows})
        touched = await delete_object_rows(conn, scope, "id = ANY($2::uuid[])", ids)
        await finish(conn, scope, touched)
    return DeletedObjects(deleted=len(found))


@ANSWERS(subjects.LIST_OBJECTS)
async def list_objects(rt: Runtime, request: ListObjectsRequest, ctx: RequestContext) -> ObjectPage:
    query = request.query
    scope = await scope_of(rt.db, request.project_id, request.labelset, ctx.caller)
    after_sample, after_seq = decode_cursor(query.cursor, uuid.UUID, int) or (uuid.UUID(int=0), 0)
    rows = await rt.db.fetch(
        "SELECT sample_id, seq, body::text FROM objects WHERE labelset_id = $1 AND (sample_id, seq) > ($2, $3) "
        "AND ($4::uuid IS NULL OR class_id = $4) AND ($5::uuid IS NULL OR sample_id = $5) "
        "AND ($7::uuid IS NULL OR id = $7) ORDER BY sample_id, seq LIMIT $6",
        scope.labelset_id,
        after_sample,
        after_seq,
        query.class_id and parse_uuid(query.class_id, "label class", "class_id"),
        query.sample_id and parse_uuid(query.sample_id, "sample", "sample_id"),
        query.limit + 1,
        query.object_id and parse_uuid(query.object_id, "object", "object_id"),
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = [
        SampleObject(sample_id=str(row["sample_id"]), **msgspec.structs.asdict(decode_object(row["body"])))
        for row in rows
    ]
    last = rows[-1] if more else None
    return ObjectPage(items=items, next_cursor=encode_cursor(last["sample_id"], last["seq"]) if last else None)


@ANSWERS(subjects.LIST_AUDIT)
async def list_audit(rt: Runtime, request: ListAuditRequest, ctx: RequestContext) -> AuditPage:
    query = request.query
    rows, next_cursor = await keyset_page(
        rt.db,
        "SELECT id, sample_id, labelset, action, actor, at, change FROM audit WHERE project_id = $1 "
        "AND ($2::uuid IS NULL OR sample_id = $2) AND ($3::text IS NULL OR labelset = $3)",
        [
            parse_uuid(request.project_id, "project"),
            query.sample_id and parse_uuid(query.sample_id, "sample", "sample_id"),
            query.labelset,
        ],
        query.cursor,
        query.limit,
        key=("id",),
        types=(int,),
        newest_first=True,
    )
    items = [from_row(AuditEntry, row, change=decode_attributes(row["change"])) for row in rows]
    return AuditPage(items=items, next_cursor=next_cursor)


async def on_class_merged(rt: Runtime, project_id: str | None, event: LabelClassMerged, delivery: Delivery) -> None:
    """Objects of a merged class now belong to its target: each such object gets a new version and
    an audit row, each label touched a new revision and LabelChanged, so search counts follow. A
    redelivery finds no objects of the source class left and changes nothing. The schema read model
    takes the merge as any other schema change."""
    if project_id is None:
        return
    await schema_facts.on_changed(rt, project_id, event, delivery)
    project, now = uuid.UUID(project_id), datetime.now(UTC)
    async with rt.db.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "UPDATE objects o SET class_id = $2, version = o.version + 1, body = jsonb_set(jsonb_set(o.body::jsonb, "
            "'{class_id}', to_jsonb($2::uuid::text)), '{version}', to_jsonb(o.version + 1))::json "
            "FROM labelsets ls WHERE ls.id = o.labelset_id AND ls.project_id = $3 AND o.class_id = $1 "
            "RETURNING o.id, o.sample_id, o.labelset_id, ls.name, o.body::text AS body",
            uuid.UUID(event.source.id),
            uuid.UUID(event.target.id),
            project,
        )
        by_labelset: dict[tuple[uuid.UUID, str], list[asyncpg.Record]] = {}
        for row in rows:
            by_labelset.setdefault((row["labelset_id"], row["name"]), []).append(row)
        for (labelset_id, name), moved in by_labelset.items():
            scope = Scope(
                project_id=project, labelset_id=labelset_id, labelset=name, actor="catalog:merge", role=None, now=now
            )
            await audit_objects(conn, scope, [(row["sample_id"], "updated", row["body"]) for row in moved])
            await finish(conn, scope, {row["sample_id"] for row in moved})
