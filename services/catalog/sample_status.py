"""The labelling workflow of a sample: which status may follow which, and who may make the step.

The statuses are Hasty's: NEW (not started), IN_PROGRESS (a labeler is on it), TO_REVIEW (labelled,
waiting for a reviewer), DONE (accepted by a reviewer), SKIPPED (a labeler passed on it, e.g. an
unusable image), AUTO_LABELLED (labelled by a model, not checked by a person yet) and COMPLETED
(final: a manager closed it, e.g. once it went into a release).
"""

from __future__ import annotations

from proto.catalog import Role
from proto.samples import SampleStatus
from shared import workflow

# current status → {allowed next status: least project role that may take the step}
TRANSITIONS: dict[SampleStatus, dict[SampleStatus, Role]] = {
    "NEW": {
        "IN_PROGRESS": "labeler",
        "TO_REVIEW": "labeler",
        "SKIPPED": "labeler",
        "AUTO_LABELLED": "manager",
        "DONE": "manager",
    },
    "IN_PROGRESS": {"NEW": "labeler", "TO_REVIEW": "labeler", "SKIPPED": "labeler", "DONE": "manager"},
    "SKIPPED": {"NEW": "labeler", "IN_PROGRESS": "labeler"},
    "AUTO_LABELLED": {"IN_PROGRESS": "labeler", "TO_REVIEW": "labeler", "DONE": "reviewer", "NEW": "manager"},
    # A reviewer accepts (DONE) or rejects (back to IN_PROGRESS).
    "TO_REVIEW": {"DONE": "reviewer", "IN_PROGRESS": "reviewer"},
    "DONE": {"TO_REVIEW": "reviewer", "IN_PROGRESS": "reviewer", "COMPLETED": "manager"},
    "COMPLETED": {"DONE": "manager"},
}


def check_transition(current: SampleStatus, requested: SampleStatus, role: str | None, path: str) -> None:
    workflow.check_transition(TRANSITIONS, "a sample", current, requested, role, path)
