"""Whole labels of many samples in one call: read them, and write them with an outcome per sample.

A bulk write is one transaction with a savepoint per label, so one label that cannot be written (a stale
version, a sample deleted meanwhile, an object outside its image, a status step the caller may not take)
is reported with why, and the others are written. Model jobs write a slice of predictions this way in one
bus round trip instead of one per sample.
"""

from __future__ import annotations

import uuid

from proto import subjects
from proto.annotation import GetLabelsRequest, LabelList, PutLabelResult, PutLabelsReply, PutLabelsRequest
from services.annotation import labels, sample_facts, schema_facts
from shared.bus import RequestContext
from shared.errors import LoupeError, invalid
from shared.service import Answers, Runtime

ANSWERS = Answers()
# What a single label's failure may be; any other error (the database, the bus) fails the whole call.
ITEM_FAILURES = ("conflict", "not_found", "invalid", "forbidden")


def check_distinct(ids: list[uuid.UUID], field: str) -> None:
    seen: set[uuid.UUID] = set()
    for index, ident in enumerate(ids):
        if ident in seen:
            raise invalid(f"sample {ident} is given twice in this call", path=f"$.{field}[{index}]")
        seen.add(ident)


@ANSWERS(subjects.PUT_LABELS)
async def put_many(rt: Runtime, request: PutLabelsRequest, ctx: RequestContext) -> PutLabelsReply:
    items = request.body.items
    check_distinct([item.sample_id for item in items], "items")
    schema = await schema_facts.for_write(rt, request.project_id, ctx)
    results: list[PutLabelResult] = []
    async with rt.db.acquire() as conn:
        scope = await labels.scope_of(conn, request.project_id, request.labelset, ctx.caller)
        facts = await sample_facts.load_existing(
            rt, conn, scope.project_id, [item.sample_id for item in items], ctx.caller
        )
        async with conn.transaction():
            for index, item in enumerate(items):
                sample_id = str(item.sample_id)
                fact = facts.get(item.sample_id)
                if fact is None:
                    results.append(
                        PutLabelResult(sample_id=sample_id, outcome="not_found", error="the project has no such sample")
                    )
                    continue
                try:
                    async with conn.transaction():  # a savepoint: this label alone is undone if it fails
                        await labels.replace_label(conn, scope, schema, fact, item.label, f"$.items[{index}].label")
                except LoupeError as error:
                    if error.code not in ITEM_FAILURES:
                        raise
                    path = error.details.get("path")
                    results.append(
                        PutLabelResult(
                            sample_id=sample_id,
                            outcome=error.code,  # type: ignore[arg-type]
                            error=error.message,
                            path=str(path) if path else None,
                        )
                    )
                    continue
                results.append(PutLabelResult(sample_id=sample_id, outcome="written"))
            written = [uuid.UUID(r.sample_id) for r in results if r.outcome == "written"]
            versions = {
                row["sample_id"]: row["version"]
                for row in await conn.fetch(
                    "SELECT sample_id, version FROM labels WHERE labelset_id = $1 AND sample_id = ANY($2::uuid[])",
                    scope.labelset_id,
                    written,
                )
            }
    return PutLabelsReply(
        items=[
            PutLabelResult(sample_id=r.sample_id, outcome=r.outcome, version=versions[uuid.UUID(r.sample_id)])
            if r.outcome == "written"
            else r
            for r in results
        ],
        written=len(written),
    )


@ANSWERS(subjects.GET_LABELS)
async def get_many(rt: Runtime, request: GetLabelsRequest, ctx: RequestContext) -> LabelList:
    """The labels of these samples in the labelset, in the order asked; UNLABELED where none was written
    (also for a sample the project does not have: reading tells nothing about other projects)."""
    ids = request.body.sample_ids
    check_distinct(ids, "sample_ids")
    scope = await labels.scope_of(rt.db, request.project_id, request.labelset, ctx.caller)
    async with rt.db.acquire() as conn:
        rows = {
            row["sample_id"]: row
            for row in await conn.fetch(
                f"SELECT {labels.LABEL_COLUMNS} FROM labels l WHERE l.labelset_id = $1 "
                "AND l.sample_id = ANY($2::uuid[]) AND EXISTS (SELECT 1 FROM samples s WHERE s.id = l.sample_id "
                "AND s.project_id = $3)",
                scope.labelset_id,
                ids,
                scope.project_id,
            )
        }
        bodies: dict[uuid.UUID, list[str]] = {}
        for row in await conn.fetch(
            "SELECT sample_id, body::text FROM objects WHERE labelset_id = $1 AND sample_id = ANY($2::uuid[]) "
            "ORDER BY sample_id, seq",
            scope.labelset_id,
            list(rows),
        ):
            bodies.setdefault(row["sample_id"], []).append(row["body"])
    return LabelList(items=[labels.to_label(scope, i, rows.get(i), bodies.get(i, [])) for i in ids])
