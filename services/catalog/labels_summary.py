"""The label summary search reads: a read model of annotation's LabelChanged events.

Per (sample, labelset) it keeps the newest revision only: the summary row is upserted under the
condition that the stored revision is older, and the per-class rows are replaced only when it was.
So an event redelivered, or one overtaken by a newer revision, changes nothing, without an inbox row
per event (labels change often; the revision already is the idempotency key).
"""

from __future__ import annotations

import logging
import uuid

from proto.annotation import LabelChanged, LabelsetDeleted
from shared.consumers import Delivery
from shared.service import Runtime

log = logging.getLogger(__name__)


async def apply_label_changed(rt: Runtime, project_id: str | None, event: LabelChanged, delivery: Delivery) -> None:
    try:
        sample_id, project = uuid.UUID(event.sample_id), uuid.UUID(event.project_id)
    except ValueError:
        # Retrying cannot make an id valid; the event describes nothing this catalog holds.
        log.warning("label event %s names sample %r of project %r, which are not ids; ignored",
                    delivery.msg_id, event.sample_id, event.project_id)
        return
    counts = {class_id: count for class_id, count in event.class_counts.items() if count > 0}
    async with rt.db.acquire() as conn, conn.transaction():
        # Nothing is inserted for a sample the project does not have (deleted since, or never its).
        applied = await conn.fetchval(
            "INSERT INTO label_summaries (sample_id, labelset, project_id, revision, status, tag_class_ids, changed_at) "
            "SELECT s.id, $3, s.project_id, $4, $5, $6, $7 FROM samples s WHERE s.id = $1 AND s.project_id = $2 "
            "ON CONFLICT (sample_id, labelset) DO UPDATE SET revision = EXCLUDED.revision, status = EXCLUDED.status, "
            "tag_class_ids = EXCLUDED.tag_class_ids, changed_at = EXCLUDED.changed_at "
            "WHERE label_summaries.revision < EXCLUDED.revision "
            "RETURNING true",
            sample_id, project, event.labelset, event.revision, event.status, sorted(set(event.tag_class_ids)),
            event.changed_at)
        if not applied:
            return
        await conn.execute("DELETE FROM label_class_counts WHERE sample_id = $1 AND labelset = $2",
                           sample_id, event.labelset)
        await conn.execute(
            "INSERT INTO label_class_counts (sample_id, labelset, class_id, count) "
            "SELECT $1, $2, class_id, count FROM unnest($3::text[], $4::int4[]) AS t (class_id, count)",
            sample_id, event.labelset, list(counts), list(counts.values()))


async def apply_labelset_deleted(rt: Runtime, project_id: str | None, event: LabelsetDeleted,
                                 delivery: Delivery) -> None:
    """A labelset made again under the same name starts its revisions anew: forget the old ones."""
    await rt.db.execute("DELETE FROM label_summaries WHERE project_id = $1 AND labelset = $2",
                        uuid.UUID(event.project_id), event.name)
