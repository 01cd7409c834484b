"""Training: configurations, runs (a job each, with per-epoch progress), and the model registry (models,
their versions with metrics, the active version per task family).

A run trains one model version from one release: a given one, or one it cuts of everything labelled now,
so every version names the exact data it learnt from. Its state goes QUEUED → RUNNING → SUCCEEDED,
FAILED or CANCELLED; each epoch is announced (`training.run.progressed`) with its loss, metrics and ETA.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from proto.annotation import LabelsetName
from proto.common import Uuid

Family = Literal["classification", "tagging", "detection", "segmentation"]
FAMILIES: tuple[Family, ...] = ("classification", "tagging", "detection", "segmentation")
RunState = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
FINISHED_STATES: tuple[RunState, ...] = ("SUCCEEDED", "FAILED", "CANCELLED")
ModelName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Lower-case letters, digits, `_` and `-`; also names the model in Triton's repository",
        examples=["detector"],
    ),
]

# -- configuration ----------------------------------------------------------------------------------
# Each setting once, with its bounds; `TrainingConfig` (a whole configuration) and `ConfigChanges` (what
# a run changes of its project's) share them.
Epochs = Annotated[int, Meta(ge=1, le=1000)]
BatchSize = Annotated[int, Meta(ge=1, le=1024)]
# A multiple of 32: the backbone's coarsest level.
ImageSize = Annotated[int, Meta(ge=32, le=1024, multiple_of=32, description="Side of the square input, in pixels")]
ModelSize = Literal["small", "medium"]
LearningRate = Annotated[float, Meta(gt=0.0, le=1.0)]
Schedule = Literal["cosine", "step", "constant"]
WarmupEpochs = Annotated[int, Meta(ge=0, le=100)]
Patience = Annotated[int, Meta(ge=1, le=1000, description="Epochs without a better validation score before stopping")]
Seed = Annotated[int, Meta(ge=0, le=2**31 - 1)]
Device = Literal["auto", "cpu", "cuda"]
Workers = Annotated[int, Meta(ge=0, le=32, description="Processes that decode and augment images (0: in the trainer)")]


class TrainingConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a model is trained. The defaults train a small model on small data on the CPU in minutes."""

    epochs: Epochs = 20
    batch_size: BatchSize = 16
    image_size: ImageSize = 64
    model_size: ModelSize = "small"
    augment: bool = True
    learning_rate: LearningRate = 2e-3
    schedule: Schedule = "cosine"
    warmup_epochs: WarmupEpochs = 1
    early_stopping_patience: Patience | None = None  # None: train every epoch
    seed: Seed = 0
    device: Device = "auto"  # auto: a GPU (bf16) when there is one, else the CPU
    workers: Workers = 0


class ConfigChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one run changes of its project's configuration; fields left out keep the project's value."""

    epochs: Epochs | UnsetType = UNSET
    batch_size: BatchSize | UnsetType = UNSET
    image_size: ImageSize | UnsetType = UNSET
    model_size: ModelSize | UnsetType = UNSET
    augment: bool | UnsetType = UNSET
    learning_rate: LearningRate | UnsetType = UNSET
    schedule: Schedule | UnsetType = UNSET
    warmup_epochs: WarmupEpochs | UnsetType = UNSET
    early_stopping_patience: Patience | None | UnsetType = UNSET
    seed: Seed | UnsetType = UNSET
    device: Device | UnsetType = UNSET
    workers: Workers | UnsetType = UNSET


class ProjectConfig(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    config: TrainingConfig
    updated_at: datetime | None = None  # None: never set, the defaults


class ReplaceConfigRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    config: TrainingConfig


class ProjectScope(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str


# -- runs -------------------------------------------------------------------------------------------


class PretrainedVersion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A version of a model of the same project whose trained weights start a run instead of random ones:
    every weight whose name and shape match is copied (a detector's backbone and neck into a tagger, say;
    the heads of another family start afresh). The version must still have its weights, and its
    `model_size` must be the run's. Weights come only from Loupe's own versions, never from the internet."""

    model: ModelName
    version: Annotated[int, Meta(ge=1)]


class CreateTrainingRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Train a new version of `model` (made on first use) for a task family.

    The data: `release_id`, or, left out, a release the run cuts of the project as it is now. Samples of a
    dataset named `val`, `valid`, `validation` or `test` are the validation split; without such a dataset
    one sample in five (by id) is held out. Only samples whose label in `labelset` is LABELED, REVIEWED or
    VERIFIED are used.
    - detection: boxes of object classes (in a label without boxes, a polygon or mask counts as its bounds);
    - segmentation: polygons and masks painted per class, higher z_index on top (boxes, in a label without
      polygons or masks);
    - tagging: one head per active tag group of the schema (an image needs one tag of each);
    - classification: the tags of `tag_group` are the classes (default: the first SINGLE group).
    """

    family: Family
    model: ModelName | None = None  # default: the family's name
    release_id: Uuid | None = None
    labelset: LabelsetName = "ground-truth"
    tag_group: Annotated[str, Meta(min_length=1, max_length=200)] | None = None  # classification only
    config: ConfigChanges = ConfigChanges()
    pretrained: PretrainedVersion | None = None  # default: random initial weights


class CreateTrainingRunRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    run: CreateTrainingRun


class TrainingRun(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    model: str
    family: Family
    state: RunState
    release_id: str
    labelset: str
    tag_group: str | None
    config: TrainingConfig
    pretrained: PretrainedVersion | None  # the version whose weights it started from
    epoch: int  # epochs done so far; continues after a resume
    epochs: int
    loss: float | None
    metrics: dict[str, float]  # of the last epoch on the validation split
    eta_s: float | None  # seconds left, from the epochs so far
    resumed: int  # times the run continued from a checkpoint after its process died
    cancel_requested: bool
    error: str | None
    version_id: str | None  # the model version it made, once SUCCEEDED
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TrainingRunRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    run_id: str


class ListTrainingRuns(msgspec.Struct, frozen=True, kw_only=True):
    state: RunState | None = None
    limit: Annotated[int, Meta(ge=1, le=500)] = 50


class ListTrainingRunsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    query: ListTrainingRuns


class TrainingRunList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TrainingRun]  # newest first


class TrainingRunProgressed(msgspec.Struct, frozen=True, kw_only=True):
    """One epoch done."""

    run_id: str
    project_id: str
    model: str
    family: Family
    epoch: int
    epochs: int
    loss: float
    metrics: dict[str, float]
    seconds: float  # this epoch's wall time
    images_per_s: float
    data_seconds: float  # of `seconds`, spent waiting for decoded and augmented images
    eta_s: float


LogLevel = Literal["info", "warning", "error"]


class RunLogLine(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a run: the release read, the images downloaded, each epoch, the evaluation, the export,
    publishing, a resume, a cancellation, or a failure (with its traceback when it was unexpected)."""

    seq: int  # 1, 2, … per run, in the order the lines were written
    at: datetime
    level: LogLevel
    message: str


class RunLogPage(msgspec.Struct, frozen=True, kw_only=True):
    """Query of a run's log, oldest line first; pass the reply's `next_cursor` back as `cursor` for the next
    page, or to follow a run that is still going."""

    limit: Annotated[int, Meta(ge=1, le=1000)] = 200
    cursor: str | None = None


class RunLogRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    run_id: str
    query: RunLogPage


class RunLog(msgspec.Struct, frozen=True, kw_only=True):
    items: list[RunLogLine]  # oldest first
    # The lines after these. Null only once the run has finished and this page holds its last line; while it
    # is queued or running it is always set, even on a page that caught up, so polling can go on.
    next_cursor: str | None


class TrainingRunJob(msgspec.Struct, frozen=True, kw_only=True):
    """Train, evaluate, export and register a run, continuing from its checkpoint if it has one."""

    run_id: str


# -- models and versions ----------------------------------------------------------------------------


class ClassMetrics(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    metrics: dict[str, float]


class TagGroupValues(msgspec.Struct, frozen=True, kw_only=True):
    """A tagger's head: its tag group and the values it chooses from, in output order."""

    name: str
    values: list[str]


class ModelVersion(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    model: str
    family: Family
    version: int  # 1, 2, …: also its folder in Triton's repository
    run_id: str
    release_id: str
    labelset: str
    classes: list[str]  # the output classes in order (tagging: `group/value`)
    # Tagging: one per head (`tag<i>_logits` is the i-th), in order; classification: the one group whose tags
    # are its classes; [] for detection and segmentation.
    tag_groups: list[TagGroupValues]
    metrics: dict[str, float]  # on the release's validation split
    per_class: list[ClassMetrics]
    validation_samples: int
    training_samples: int
    config: TrainingConfig
    pretrained: PretrainedVersion | None  # the version whose weights its training started from
    code_version: str  # `git describe` of the code that trained it, or the package version
    onnx_max_abs_diff: float  # largest difference of onnxruntime's outputs from torch's on the validation images
    triton_model: str  # the model's name in Triton's repository
    active: bool
    weights_deleted: bool  # only the record is left: it cannot be activated or served
    created_at: datetime


class Model(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    name: str
    family: Family
    triton_model: str
    versions: int
    latest_version: int | None
    active_version: int | None  # the version serving its family for the project, if it is this model's
    created_at: datetime


class ModelRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    model: str


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Model]


class VersionList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ModelVersion]  # newest first


class VersionRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    model: str
    version: str  # the version number, as in the path


class ActivateVersion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[int, Meta(ge=1)]


class ActivateVersionRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    model: str
    body: ActivateVersion


class DeleteVersionOptions(msgspec.Struct, frozen=True, kw_only=True):
    weights_only: bool = False  # keep the record (metrics, lineage); delete the files


class DeleteVersionRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    model: str
    version: str
    query: DeleteVersionOptions


class ActiveVersionChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The version that serves a task family for a project changed (None: none does now)."""

    project_id: str
    family: Family
    version: ModelVersion | None
