"""Review commands: work queues (what to label or review next, under an expiring lock), issues and
comments on samples, and label QA runs that compare a predictions labelset with ground truth."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from proto.annotation import LabelsetName, LabelStatus
from proto.common import Uuid

# -- work queues ------------------------------------------------------------------------------------

QueueKind = Literal["label", "review"]


class NextSample(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Ask for the next sample to label (its label is UNLABELED, PRELABELED or REJECTED) or to review
    (LABELED). Samples assigned to the caller come first, then by priority (highest first), then the
    oldest. The sample stays locked for the caller until the lock expires or is released."""

    labelset: LabelsetName = "ground-truth"
    dataset_id: Uuid | None = None


class NextSampleRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    queue: QueueKind
    body: NextSample


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """A sample handed out by a queue; the caller holds its lock until `expires_at`."""

    project_id: str
    sample_id: str
    dataset_id: str
    name: str
    labelset: str
    queue: QueueKind
    status: LabelStatus  # the label's status now (moved to LABELING_/REVIEWING_IN_PROGRESS)
    label_version: int
    locked_by: str
    expires_at: datetime


class NextSampleReply(msgspec.Struct, frozen=True, kw_only=True):
    assignment: Assignment | None  # None: the queue is empty


class LockRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    sample_id: str
    labelset: str


# -- issues and comments ----------------------------------------------------------------------------

IssueStatus = Literal["OPEN", "CLOSED"]
Text = Annotated[str, Meta(min_length=1, max_length=10_000, pattern=r"\S")]


class Comment(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issue_id: str
    text: str
    created_by: str | None
    created_at: datetime


class Issue(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    sample_id: str
    labelset: str | None
    object_id: str | None  # the object the issue is about, if any
    description: str
    status: IssueStatus
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    comments: list[Comment] = []


class CreateIssue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    description: Text
    labelset: LabelsetName | None = None
    object_id: Uuid | None = None


class CreateIssueRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    sample_id: str
    issue: CreateIssue


class UpdateIssue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    description: Text | UnsetType = UNSET
    status: IssueStatus | UnsetType = UNSET


class UpdateIssueRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    issue_id: str
    changes: UpdateIssue


class IssueRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    issue_id: str


class ListIssues(msgspec.Struct, frozen=True, kw_only=True):
    sample_id: Uuid | None = None
    status: IssueStatus | None = None
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    cursor: str | None = None


class ListIssuesRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    query: ListIssues


class IssuePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Issue]
    next_cursor: str | None = None


class CreateComment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Text


class CreateCommentRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    issue_id: str
    comment: CreateComment


# -- label QA ("error finder") ----------------------------------------------------------------------

# Hasty's error types that apply to images: each says what is wrong with the ground truth, judged by
# the predictions (MISSING_LABEL: a confident prediction ground truth lacks; EXTRA_LABEL: a ground
# truth object nothing predicts; EXTRA_/MISSING_AREA: a mask that covers too much / too little).
FindingKind = Literal[
    "LOW_IOU",
    "MISSING_LABEL",
    "EXTRA_LABEL",
    "MISCLASSIFICATION",
    "TAG_MISCLASSIFICATION",
    "ATTR_MISCLASSIFICATION",
    "EXTRA_TAG",
    "MISSING_TAG",
    "EXTRA_ATTRIBUTE",
    "MISSING_ATTRIBUTE",
    "EXTRA_AREA",
    "MISSING_AREA",
]
FINDING_KINDS: tuple[FindingKind, ...] = get_args(FindingKind)
Resolution = Literal["NOT_AN_ERROR", "FIXED"]  # Hasty's NOT_AN_ERROR, or the label was corrected


class QaOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    iou_threshold: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.5  # a match below it is LOW_IOU
    min_iou: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.1  # below it two objects are unrelated
    min_confidence: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.5  # predictions below it are ignored
    area_threshold: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.1  # mask area difference, as a share of the union


class CreateQaRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    predictions: LabelsetName
    ground_truth: LabelsetName = "ground-truth"
    dataset_id: Uuid | None = None
    options: QaOptions = QaOptions()


class CreateQaRunRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    run: CreateQaRun


class QaRun(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    ground_truth: str
    predictions: str
    dataset_id: str | None
    options: QaOptions
    state: Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
    samples: int  # compared so far
    findings: int
    counts: dict[str, int]  # by kind
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class QaRunRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    run_id: str


class ListQaRunsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str


class QaRunList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[QaRun]


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    run_id: str
    sample_id: str
    kind: FindingKind
    ground_truth_object_id: str | None = None
    prediction_object_id: str | None = None
    class_id: str | None = None  # ground truth's class (or the predicted one when ground truth has none)
    predicted_class_id: str | None = None
    tag_class_id: str | None = None
    attribute_id: str | None = None
    iou: float | None = None
    confidence: float | None = None
    resolution: Resolution | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None


class ListFindings(msgspec.Struct, frozen=True, kw_only=True):
    kind: FindingKind | None = None
    resolved: bool | None = None
    sample_id: Uuid | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    offset: Annotated[int, Meta(ge=0)] = 0


class ListFindingsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    run_id: str
    query: ListFindings


class FindingPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Finding]
    total: int


class ResolveFinding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    resolution: Resolution | None  # None reopens it


class ResolveFindingRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    finding_id: str
    body: ResolveFinding


class QaJob(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
