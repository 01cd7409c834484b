"""Annotation events other services consume. The annotation service (issue 4) emits them; the
catalog keeps a per-sample label summary from them for search."""

from __future__ import annotations

from datetime import datetime

import msgspec


class LabelChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The label of one sample in one labelset changed; carries the summary search needs.

    `revision` grows with every change of that (sample, labelset) label, so a consumer that sees
    events out of order keeps the newest. `class_counts` maps label class id → number of objects of
    that class; `tag_class_ids` are the image-level tags set. A deleted label has status UNLABELED and
    empty counts.
    """

    project_id: str
    sample_id: str
    labelset: str  # labelset name; "ground-truth" is the default
    revision: int
    status: str  # UNLABELED, LABELING_IN_PROGRESS, LABELED, REVIEWING_IN_PROGRESS, REVIEWED, REJECTED, PRELABELED, SKIPPED, VERIFIED
    class_counts: dict[str, int] = {}
    tag_class_ids: list[str] = []
    changed_by: str = ""
    changed_at: datetime | None = None
