"""Annotation commands and events: labelsets, labels and their objects, and the label-changed event
the catalog's search read model consumes.

Coordinates are pixels of the original image (after EXIF orientation), origin at the top-left
corner, x to the right, y down; a pixel (i, j) covers [i, i+1) × [j, j+1), so a box that covers a
whole W × H image is (0, 0, W, H).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from proto.catalog import Description
from proto.common import Uuid

# -- shapes -----------------------------------------------------------------------------------------

Point = tuple[float, float]  # (x, y)
Ring = Annotated[list[Point], Meta(min_length=3, max_length=100_000)]


class BoxShape(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="bbox", tag_field="type"):
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 with x1 < x2, y1 < y2 (Hasty's order)


class PolygonShape(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="polygon", tag_field="type"
):
    """A simple polygon: no self-intersection; holes lie inside it and do not overlap each other."""

    points: Ring  # the outer ring, not closed (the last point is not the first again)
    holes: list[Ring] = []


class PolylineShape(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="polyline", tag_field="type"
):
    points: Annotated[list[Point], Meta(min_length=2, max_length=100_000)]


class PointShape(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="point", tag_field="type"):
    point: Point


# COCO's visibility flags: 0 not labelled (x and y are ignored, write 0), 1 labelled but hidden, 2 visible.
Visibility = Literal[0, 1, 2]
Keypoint = tuple[float, float, Visibility]  # (x, y, visibility)


class KeypointsShape(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="keypoints", tag_field="type"
):
    """One point per keypoint of the class's keypoint schema, in the schema's order."""

    keypoints: list[Keypoint]


class Rle(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """COCO run-length encoding, column-major: `counts` alternate background and foreground runs,
    starting with background. Either COCO's compressed string or the plain list of run lengths."""

    size: tuple[int, int]  # (height, width): must be the image's
    counts: str | list[int]


class MaskShape(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="mask", tag_field="type"):
    """A per-pixel mask. Written either as `rle` or as `png` (a base64 PNG of the image's size whose
    non-zero pixels are the mask); Loupe stores and returns it as compressed RLE."""

    rle: Rle | None = None
    png: str | None = None


Shape = BoxShape | PolygonShape | PolylineShape | PointShape | KeypointsShape | MaskShape
ShapeType = Literal["bbox", "polygon", "polyline", "point", "keypoints", "mask"]
SHAPE_TYPES: tuple[ShapeType, ...] = ("bbox", "polygon", "polyline", "point", "keypoints", "mask")

# Attribute values by attribute id. SELECTION: the value's id (or its text); MULTIPLE_SELECTION: a list
# of them; TEXT: a string; INT/FLOAT: a number; BOOL: true/false.
AttributeValues = dict[str, Any]

# -- objects and labels -----------------------------------------------------------------------------

LabelStatus = Literal[
    "UNLABELED",
    "LABELING_IN_PROGRESS",
    "LABELED",
    "REVIEWING_IN_PROGRESS",
    "REVIEWED",
    "REJECTED",
    "PRELABELED",
    "SKIPPED",
    "VERIFIED",
]
LABEL_STATUSES: tuple[LabelStatus, ...] = get_args(LabelStatus)
LabelsetName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="Letters, digits, `_`, `.` and `-`",
        examples=["ground-truth"],
    ),
]
GROUND_TRUTH = "ground-truth"
ExternalId = Annotated[str, Meta(min_length=1, max_length=500)]
Confidence = Annotated[float, Meta(ge=0.0, le=1.0)]
ZIndex = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
MAX_OBJECTS = 10_000  # objects per bulk call, and per label


class LabelObject(msgspec.Struct, frozen=True, kw_only=True):
    """One labelled thing in an image, as Loupe returns it."""

    id: str
    class_id: str
    shape: Shape
    z_index: int = 0  # drawn above lower ones; COCO/semantic exports paint in this order
    attributes: AttributeValues = {}
    confidence: float | None = None  # for predictions
    external_id: str | None = None
    version: int = 1  # grows with each change of this object
    updated_by: str | None = None
    updated_at: datetime | None = None


class ObjectInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An object to create, or to replace when `id` names an existing one of the same label."""

    id: uuid.UUID | None = None  # left out: a new object with a new id
    class_id: uuid.UUID
    shape: Shape
    z_index: ZIndex = 0
    attributes: AttributeValues = {}
    confidence: Confidence | None = None
    external_id: ExternalId | None = None
    version: int | None = None  # when given, must be the object's current version (else 409)


class Label(msgspec.Struct, frozen=True, kw_only=True):
    """A sample's label in one labelset: its status, objects, image-level tags and attributes."""

    project_id: str
    sample_id: str
    labelset: str
    status: LabelStatus
    score: float | None = None
    objects: list[LabelObject] = []
    tag_class_ids: list[str] = []
    attributes: AttributeValues = {}  # image attributes (subject IMAGE)
    version: int = 0  # 0: never written; grows with every change, the revision LabelChanged carries
    created_by: str | None = None
    created_at: datetime | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


class LabelInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """PUT body: the whole label. Objects with an `id` of the label are replaced, others created, and
    the label's objects left out are deleted."""

    status: LabelStatus = "LABELED"
    score: float | None = None
    objects: Annotated[list[ObjectInput], Meta(max_length=MAX_OBJECTS)] = []
    tag_class_ids: list[uuid.UUID] = []
    attributes: AttributeValues = {}
    version: int | None = None  # when given, must be the label's current version (else 409); 0: must not exist


class LabelChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """PATCH body: fields left out stay as they are; objects are edited with the object calls."""

    status: LabelStatus | UnsetType = UNSET
    score: float | None | UnsetType = UNSET
    tag_class_ids: list[uuid.UUID] | UnsetType = UNSET
    attributes: AttributeValues | UnsetType = UNSET  # replaces the image attributes
    version: int | None = None


class LabelRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    sample_id: str
    labelset: str


class PutLabelRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    sample_id: str
    labelset: str
    label: LabelInput


class UpdateLabelRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    sample_id: str
    labelset: str
    changes: LabelChanges


# -- whole labels of many samples ------------------------------------------------------------------
MAX_LABELS = 1000  # labels per bulk read or write


class LabelItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sample_id: uuid.UUID
    label: LabelInput


class PutLabels(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Whole labels of up to 1,000 samples, each as PUT of one label makes it. Each stands alone: one that
    cannot be written (a stale `version`, a deleted sample, an invalid object, a status step the caller may
    not take) is reported with why, and the others are written."""

    items: Annotated[list[LabelItem], Meta(min_length=1, max_length=MAX_LABELS)]


class PutLabelsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    labelset: str
    body: PutLabels


LabelOutcome = Literal["written", "conflict", "not_found", "invalid", "forbidden"]


class PutLabelResult(msgspec.Struct, frozen=True, kw_only=True):
    sample_id: str
    outcome: LabelOutcome
    version: int | None = None  # written: the label's version now
    error: str | None = None  # otherwise: why, and what to do
    path: str | None = None  # the field at fault, as `$.items[i].label…`


class PutLabelsReply(msgspec.Struct, frozen=True, kw_only=True):
    items: list[PutLabelResult]  # in the order of the request
    written: int


class GetLabels(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sample_ids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=MAX_LABELS)]


class GetLabelsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    labelset: str
    body: GetLabels


class LabelList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Label]  # in the order asked; UNLABELED (version 0) where none was written


# -- bulk object writes -----------------------------------------------------------------------------


class SampleObjectInput(ObjectInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sample_id: uuid.UUID


class UpsertObjects(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Create or replace objects of many samples at once, all or nothing. Labels that did not exist
    are created with `status`."""

    items: Annotated[list[SampleObjectInput], Meta(min_length=1, max_length=MAX_OBJECTS)]
    status: LabelStatus = "LABELED"


class UpsertObjectsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    labelset: str
    body: UpsertObjects


class WrittenObject(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    sample_id: str
    version: int
    outcome: Literal["created", "updated", "unchanged"]


class WrittenObjects(msgspec.Struct, frozen=True, kw_only=True):
    created: int
    updated: int
    unchanged: int
    items: list[WrittenObject]  # in the order of the request


class DeleteObjects(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=MAX_OBJECTS)]


class DeleteObjectsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    labelset: str
    body: DeleteObjects


class DeletedObjects(msgspec.Struct, frozen=True, kw_only=True):
    deleted: int


class ListObjects(msgspec.Struct, frozen=True, kw_only=True):
    """Query of listing a labelset's objects, in (sample, object) order, a page at a time."""

    class_id: Uuid | None = None
    sample_id: Uuid | None = None
    object_id: Uuid | None = None  # the one object with this id (the Hasty dialect finds a label by its id)
    limit: Annotated[int, Meta(ge=1, le=10_000)] = 1000
    cursor: str | None = None


class ListObjectsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    labelset: str
    query: ListObjects


class SampleObject(LabelObject, frozen=True, kw_only=True):
    sample_id: str


class ObjectPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[SampleObject]
    next_cursor: str | None = None


# -- labelsets --------------------------------------------------------------------------------------


class Labelset(msgspec.Struct, frozen=True, kw_only=True):
    """A named set of labels of a project: ground truth, a model's predictions, a second opinion..."""

    id: str
    project_id: str
    name: str
    description: str
    is_ground_truth: bool
    created_at: datetime


class CreateLabelset(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: LabelsetName  # unique in the project
    description: Description = ""


class CreateLabelsetRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    labelset: CreateLabelset


class UpdateLabelset(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    description: Description


class UpdateLabelsetRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    labelset: str
    changes: UpdateLabelset


class LabelsetRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    labelset: str


class ProjectLabelsets(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str


class LabelsetList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Labelset]


# -- audit trail ------------------------------------------------------------------------------------

AuditAction = Literal[
    "label.created", "label.updated", "label.deleted", "status.changed", "objects.written", "objects.deleted"
]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One change of one sample's label by one call.

    `change` by action: objects.written `{"created": [object, ...], "updated": [object, ...]}` (each
    object as it became); objects.deleted `{"deleted": [id, ...]}`; label.* and status.changed
    `{field: [before, after], ...}` for the label's own fields that changed.
    """

    id: int
    sample_id: str
    labelset: str
    action: AuditAction
    actor: str | None  # user id, or `key:<id>` for an organisation key without a user
    at: datetime
    change: dict[str, Any]


class ListAudit(msgspec.Struct, frozen=True, kw_only=True):
    """Query of the audit trail, newest first."""

    sample_id: Uuid | None = None
    labelset: str | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    cursor: str | None = None


class ListAuditRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    query: ListAudit


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[AuditEntry]
    next_cursor: str | None = None


# -- events -----------------------------------------------------------------------------------------


class LabelSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One sample's label as search needs it. `revision` grows with every change of that (sample,
    labelset) label, so a consumer that sees events out of order keeps the newest. `class_counts`
    maps label class id → number of objects of that class; `tag_class_ids` are the image-level tags
    set. A deleted label has status UNLABELED and empty counts."""

    sample_id: str
    revision: int
    status: str  # a LabelStatus
    class_counts: dict[str, int] = {}
    tag_class_ids: list[str] = []


class LabelChanged(msgspec.Struct, frozen=True, kw_only=True):
    """Labels of one labelset changed: one event per call (a call of thousands is split into events of
    at most EVENT_LABELS), each label with the summary the catalog's search keeps."""

    project_id: str
    labelset: str  # labelset name; "ground-truth" is the default
    labels: list[LabelSummary]
    changed_by: str = ""
    changed_at: datetime | None = None


EVENT_LABELS = 1000  # labels per LabelChanged event


class LabelsetDeleted(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    id: str
    name: str
    labels: int  # labels deleted with it
