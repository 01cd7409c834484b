"""Inference: predictions from served model versions, and the jobs that use them at scale.

- Predict now: one image (uploaded bytes, a URL or a sample) through a model version, answered at once in the
  shapes labels have.
- Jobs (`InferenceJob`), each a pass over a selection of samples through one model version:
  `autolabel` writes predictions as labels (Hasty's "Finish Him", Geti's auto-annotation), `embeddings`
  stores one vector per sample in the catalog for similarity search, `ranking` orders unlabeled samples
  for active learning. State QUEUED → RUNNING → SUCCEEDED, FAILED or CANCELLED, progress announced per
  slice, resumable after a crash from the last recorded slice.
- Tagging: each tag group's status derived from training and model state.

Which version: `model` and `version` left out, the version active for the family in the project; a
`model` without `version`, that model's active version if it has the family's active one, else its newest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from proto.annotation import BoxShape, MaskShape
from proto.common import Uuid
from proto.search import LabelFilter, SampleFilter
from proto.training import Family, ModelName

JobState = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
FINISHED_STATES: tuple[JobState, ...] = ("SUCCEEDED", "FAILED", "CANCELLED")
Heuristic = Literal["least-confidence", "margin", "entropy", "core-set", "random"]
TagStatus = Literal["queued", "training", "live"]
PREDICTIONS_LABELSET = "predictions"
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]


class ModelChoice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which model version: left out, the family's active version in the project."""

    family: Family
    model: ModelName | None = None
    version: Annotated[int, Meta(ge=1)] | None = None


class Thresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What of a model's output counts as a prediction."""

    confidence: Probability = 0.3  # lowest score of a box, tag or class kept
    max_detections: Annotated[int, Meta(ge=1, le=1000)] = 100  # boxes per image, best first
    min_size: Annotated[float, Meta(ge=0.0, le=100_000.0)] = 0.0  # pixels: smaller boxes are dropped
    mask_threshold: Probability = 0.5  # segmentation: pixels less sure than this are background


# -- predictions, in the shapes of labels ----------------------------------------------------------


class PredictedObject(msgspec.Struct, frozen=True, kw_only=True):
    class_id: str | None  # the schema's label class of that name; None when the schema has none any more
    class_name: str
    confidence: float | None  # None for masks: a semantic segmentation has no per-region score
    shape: BoxShape | MaskShape


class PredictedTag(msgspec.Struct, frozen=True, kw_only=True):
    group: str
    group_id: str | None
    tag: str
    tag_id: str | None
    confidence: float


class Predictions(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    version: int
    family: Family
    width: int
    height: int
    objects: list[PredictedObject] = []  # detection: boxes; segmentation: one mask per class present
    tags: list[PredictedTag] = []  # tagging: one per tag group; classification: the class, as a tag


class Predict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One image: `image` (its bytes; base64 in JSON), `sample_id` or `url`, exactly one of the three. A `url`
    (http or https) is fetched under the rules of URL imports: never from private addresses or Loupe's own
    storage, and no larger than an image ingest accepts."""

    model: ModelChoice
    image: Annotated[bytes, Meta(max_length=50 * 1024 * 1024)] | None = None
    sample_id: Uuid | None = None
    url: Annotated[str, Meta(min_length=1, max_length=2048)] | None = None
    thresholds: Thresholds = Thresholds()


class PredictRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    body: Predict


class SimilarToImage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Samples that look like an uploaded image, in the embedding space of a model version (an embeddings
    job of that version must have run)."""

    model: ModelChoice
    image: Annotated[bytes, Meta(min_length=1, max_length=50 * 1024 * 1024)]
    limit: Annotated[int, Meta(ge=1, le=1000)] = 20
    filter: SampleFilter | None = None


class SimilarToImageRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    body: SimilarToImage


# -- jobs -------------------------------------------------------------------------------------------


class Selection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which samples a job goes through, oldest first: those `filter` matches (all, without one), or a
    saved view's; at most `limit` of them."""

    filter: SampleFilter | None = None
    view_id: Uuid | None = None
    limit: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None


class AutoLabel(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="autolabel", tag_field="kind"
):
    """Predictions become labels. `target` `predictions`: the `predictions` labelset (made when missing),
    status PRELABELED. `ground-truth`: PRELABELED ground truth, never over a label a person made (only over an
    earlier PRELABELED one). A model writes its part of the label and keeps the rest: a detector or segmentor
    the objects, a tagger or classifier the tags of its groups, so their jobs into one labelset add up.
    `replace` false skips a sample whose label has that part already. Labelled samples that were NEW become
    AUTO_LABELLED."""

    model: ModelChoice
    selection: Selection = Selection()
    thresholds: Thresholds = Thresholds()
    target: Literal["predictions", "ground-truth"] = "predictions"
    replace: bool = True


class Embed(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="embeddings", tag_field="kind"):
    """One vector per sample in the catalog, in the space `<model>:<version>`, for similarity search."""

    model: ModelChoice
    selection: Selection = Selection()


class Rank(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="ranking", tag_field="kind"):
    """Active learning: order the selection's samples (default: those without a person's ground truth) by how much labelling them
    should teach the model, and keep the best `count`. `core-set` picks samples far from the labelled ones
    and from each other, in the model's embedding space. `make_view` saves them as a view; `set_priority`
    raises their labelling priority so the work queue hands them out first, best first."""

    model: ModelChoice
    heuristic: Heuristic = "entropy"
    selection: Selection = Selection(filter=SampleFilter(labels=LabelFilter(status=["UNLABELED", "PRELABELED"])))
    count: Annotated[int, Meta(ge=1, le=10_000)] = 100
    make_view: bool = True
    set_priority: bool = False
    seed: Annotated[int, Meta(ge=0, le=2**31 - 1)] = 0  # for `random` and ties


JobSpec = AutoLabel | Embed | Rank
JobKind = Literal["autolabel", "embeddings", "ranking"]


class CreateJobRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    job: JobSpec


class InferenceJob(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    kind: JobKind
    state: JobState
    spec: JobSpec
    model: str  # the version the job resolved at its start, used throughout
    version: int
    family: Family
    total: int | None  # samples to go through, once counted
    done: int  # samples gone through
    written: int  # labels written (autolabel), vectors stored (embeddings), samples ranked (ranking)
    skipped: int  # kept because they had a label (autolabel), or gone meanwhile
    failed: int  # images that could not be read or decoded
    images_per_s: float | None
    eta_s: float | None
    resumed: int  # times it continued after its process died
    cancel_requested: bool
    error: str | None
    view_id: str | None  # ranking with make_view: the saved view of its picks
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    job_id: str


class ListJobs(msgspec.Struct, frozen=True, kw_only=True):
    kind: JobKind | None = None
    state: JobState | None = None
    limit: Annotated[int, Meta(ge=1, le=500)] = 50


class ListJobsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    query: ListJobs


class JobList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[InferenceJob]  # newest first


class JobResult(msgspec.Struct, frozen=True, kw_only=True):
    """One sample a job went through: autolabel its predictions; ranking its rank (1 = best) and score."""

    sample_id: str
    rank: int | None = None
    score: float | None = None
    predictions: Predictions | None = None


class ResultsPage(msgspec.Struct, frozen=True, kw_only=True):
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    cursor: str | None = None


class ResultsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    job_id: str
    query: ResultsPage


class JobResults(msgspec.Struct, frozen=True, kw_only=True):
    items: list[JobResult]  # ranking: best first; others: in the order they were gone through
    next_cursor: str | None


class InferenceJobRun(msgspec.Struct, frozen=True, kw_only=True):
    """The job message: go through (or continue) one inference job."""

    job_id: str


class JobProgressed(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    project_id: str
    kind: JobKind
    done: int
    total: int | None
    written: int
    images_per_s: float
    eta_s: float | None


# -- heuristics and tagging -------------------------------------------------------------------------


class HeuristicInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # a Heuristic
    description: str
    families: list[Family]


class HeuristicList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[HeuristicInfo]


class TagGroupStatus(msgspec.Struct, frozen=True, kw_only=True):
    """`live`: the active tagging version predicts the group; `training`: a tagging run that will is queued
    or running; `queued`: neither yet (train a tagger to make it live)."""

    group_id: str
    group: str
    status: TagStatus
    model: str | None  # live: the serving version; training: the run's model
    version: int | None
    run_id: str | None


class TagStatusList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TagGroupStatus]


class TaggingScope(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
