"""The review workflow of a label (Segments.ai's statuses): which status may follow which, and the
least project role that may take the step. Managers and admins may take any listed step.

UNLABELED → LABELING_IN_PROGRESS → LABELED → REVIEWING_IN_PROGRESS → REVIEWED (→ VERIFIED) or
REJECTED (→ back to labeling). A model's labels arrive PRELABELED; a labeler may SKIP a sample.
"""

from __future__ import annotations

from proto.annotation import LabelStatus
from proto.catalog import Role
from shared import workflow

TRANSITIONS: dict[LabelStatus, dict[LabelStatus, Role]] = {
    "UNLABELED": {
        "LABELING_IN_PROGRESS": "labeler",
        "LABELED": "labeler",
        "SKIPPED": "labeler",
        "PRELABELED": "labeler",
    },
    "PRELABELED": {
        "LABELING_IN_PROGRESS": "labeler",
        "LABELED": "labeler",
        "SKIPPED": "labeler",
        "UNLABELED": "labeler",
        "REVIEWING_IN_PROGRESS": "reviewer",
    },
    "LABELING_IN_PROGRESS": {
        "LABELED": "labeler",
        "SKIPPED": "labeler",
        "UNLABELED": "labeler",
        "PRELABELED": "labeler",
    },
    "SKIPPED": {"LABELING_IN_PROGRESS": "labeler", "LABELED": "labeler", "UNLABELED": "labeler"},
    "LABELED": {
        "LABELING_IN_PROGRESS": "labeler",
        "REVIEWING_IN_PROGRESS": "reviewer",
        "REVIEWED": "reviewer",
        "REJECTED": "reviewer",
        "UNLABELED": "manager",
    },
    "REVIEWING_IN_PROGRESS": {"REVIEWED": "reviewer", "REJECTED": "reviewer", "LABELED": "reviewer"},
    "REJECTED": {"LABELING_IN_PROGRESS": "labeler", "LABELED": "labeler", "UNLABELED": "manager"},
    "REVIEWED": {
        "VERIFIED": "reviewer",
        "REJECTED": "reviewer",
        "REVIEWING_IN_PROGRESS": "reviewer",
        "LABELING_IN_PROGRESS": "manager",
        "UNLABELED": "manager",
    },
    "VERIFIED": {"REJECTED": "manager", "REVIEWED": "manager", "UNLABELED": "manager"},
}


def check_transition(current: LabelStatus, requested: LabelStatus, role: str | None, path: str) -> None:
    workflow.check_transition(TRANSITIONS, "a label", current, requested, role, path)
