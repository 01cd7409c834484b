"""The label summary search reads: a read model of annotation's LabelChanged events.

Per (sample, labelset) it keeps the newest revision only: a summary row is upserted under the
condition that the stored revision is older, and the per-class rows are replaced only for the rows
that were. So an event redelivered, or one overtaken by a newer revision, changes nothing, without an
inbox row per event (labels change often; the revision already is the idempotency key). An event
carries the labels one call changed; all of them are applied in three statements. Events are applied
several at once, so the summary rows are locked in sample order whatever plan joins them to the samples:
two events that share samples then wait for each other rather than deadlock.
"""

from __future__ import annotations

import logging
import uuid

import msgspec

from proto.annotation import LabelChanged, LabelsetDeleted
from shared.bus import encoder
from shared.consumers import Delivery
from shared.service import Runtime

log = logging.getLogger(__name__)


UPSERT = """
INSERT INTO label_summaries (sample_id, labelset, project_id, revision, status, tag_class_ids, changed_at)
SELECT s.id, $2, s.project_id, t.revision, t.status, t.tag_class_ids, $3
FROM json_to_recordset($4::text::json) AS t (sample_id uuid, revision bigint, status text, tag_class_ids text[])
JOIN samples s ON s.id = t.sample_id AND s.project_id = $1
ORDER BY t.sample_id
ON CONFLICT (sample_id, labelset) DO UPDATE SET revision = EXCLUDED.revision, status = EXCLUDED.status,
    tag_class_ids = EXCLUDED.tag_class_ids, changed_at = EXCLUDED.changed_at
WHERE label_summaries.revision < EXCLUDED.revision
RETURNING sample_id
"""

INSERT_COUNTS = """
INSERT INTO label_class_counts (sample_id, labelset, class_id, count)
SELECT t.sample_id, $1, t.class_id, t.count
FROM json_to_recordset($2::text::json) AS t (sample_id uuid, class_id text, count int)
WHERE t.sample_id = ANY($3::uuid[])
"""


class SummaryRow(msgspec.Struct, frozen=True):
    sample_id: str
    revision: int
    status: str
    tag_class_ids: list[str]


class CountRow(msgspec.Struct, frozen=True):
    sample_id: str
    class_id: str
    count: int


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def apply_label_changed(rt: Runtime, project_id: str | None, event: LabelChanged, delivery: Delivery) -> None:
    # Retrying cannot make an id valid; such a label describes nothing this catalog holds.
    labels = [label for label in event.labels if is_uuid(label.sample_id)]
    if len(labels) < len(event.labels) or not is_uuid(event.project_id):
        log.warning(
            "label event %s names samples or a project that are not ids; those labels are ignored", delivery.msg_id
        )
        if not is_uuid(event.project_id):
            return
    summaries = [
        SummaryRow(label.sample_id, label.revision, label.status, sorted(set(label.tag_class_ids))) for label in labels
    ]
    counts = [
        CountRow(label.sample_id, class_id, count)
        for label in labels
        for class_id, count in label.class_counts.items()
        if count > 0
    ]
    async with rt.db.acquire() as conn, conn.transaction():
        # Nothing is inserted for a sample the project does not have (deleted since, or never its).
        applied = [
            row["sample_id"]
            for row in await conn.fetch(
                UPSERT,
                uuid.UUID(event.project_id),
                event.labelset,
                event.changed_at,
                encoder.encode(summaries).decode(),
            )
        ]
        if not applied:
            return
        await conn.execute(
            "DELETE FROM label_class_counts WHERE labelset = $1 AND sample_id = ANY($2::uuid[])",
            event.labelset,
            applied,
        )
        await conn.execute(INSERT_COUNTS, event.labelset, encoder.encode(counts).decode(), applied)


async def apply_labelset_deleted(
    rt: Runtime, project_id: str | None, event: LabelsetDeleted, delivery: Delivery
) -> None:
    """A labelset made again under the same name starts its revisions anew: forget the old ones."""
    await rt.db.execute(
        "DELETE FROM label_summaries WHERE project_id = $1 AND labelset = $2", uuid.UUID(event.project_id), event.name
    )
