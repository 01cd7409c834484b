"""Releases (immutable snapshots of a project's samples, labels and schema), their exports to other
formats, and label imports (labelled data in those formats, brought into a project); plus the native
release format, which is a public contract.

The native format is JSON Lines: the first line is a `ReleaseHeader`, every further line one
`ReleaseSample`. It is lossless: importing it into a fresh project and releasing again gives the
same file apart from ids and times.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from proto.annotation import AttributeValues, LabelObject, LabelsetName, LabelStatus
from proto.catalog import Description, Page
from proto.common import Uuid
from proto.ingest import BucketSource
from proto.samples import SampleStatus
from proto.schema import LabelSchema

JobState = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
ReleaseName = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
NATIVE_FORMAT_VERSION = "loupe.release/1"

# -- the native format ------------------------------------------------------------------------------


class ReleaseProject(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    task_type: str


class ReleaseInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    description: str
    created_at: datetime


class ReleaseDataset(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str


class ReleaseHeader(msgspec.Struct, frozen=True, kw_only=True):
    format: str  # NATIVE_FORMAT_VERSION
    project: ReleaseProject
    release: ReleaseInfo
    label_schema: LabelSchema  # archived items included: labels may still use them
    labelsets: list[str]
    datasets: list[ReleaseDataset]
    samples: int
    objects: int


class ReleaseLabel(msgspec.Struct, frozen=True, kw_only=True):
    status: LabelStatus
    score: float | None = None
    objects: list[LabelObject] = []
    tag_class_ids: list[str] = []
    attributes: AttributeValues = {}
    updated_by: str | None = None
    updated_at: datetime | None = None


class ReleaseSample(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    dataset_id: str
    name: str
    width: int
    height: int
    content_hash: str | None = None  # the original is at key `<content_hash>` of the media bucket
    media_url: str | None = None  # external media
    external_id: str | None = None
    metadata: dict[str, object] = {}
    status: SampleStatus | None = None  # None in release files written before releases kept it
    labels: dict[str, ReleaseLabel] = {}  # by labelset name; a labelset without a label is left out


# -- releases ---------------------------------------------------------------------------------------


class Release(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    name: str
    description: str
    labelsets: list[str]
    state: JobState
    samples: int
    objects: int
    error: str | None
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None


class CreateRelease(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ReleaseName  # unique in the project
    description: Description = ""
    labelsets: list[LabelsetName] = []  # empty: all of the project's labelsets


class CreateReleaseRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    release: CreateRelease


class ReleaseRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    release_id: str


class ListReleases(Page, frozen=True, kw_only=True):
    pass


class ListReleasesRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    page: ListReleases


class ReleasePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Release]
    next_cursor: str | None = None


# -- exports ----------------------------------------------------------------------------------------

# `images`: a zip of the release's original images, no labels (services/annotation/formats/images.py).
ExportFormat = Literal["native", "coco", "yolo", "voc", "semantic_png", "segments", "hasty", "images"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = (
    "native",
    "coco",
    "yolo",
    "voc",
    "semantic_png",
    "segments",
    "hasty",
    "images",
)


class ExportFilter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which part of the release to export; empty lists mean no restriction."""

    dataset_ids: list[str] = []
    statuses: list[LabelStatus] = []  # of the exported labelset's label (UNLABELED: samples without one)
    class_ids: list[str] = []  # objects of other classes are left out (the samples stay)
    # Of the sample itself when the release was cut; a release that does not know them matches none.
    sample_statuses: list[SampleStatus] = []


class CreateExport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    format: ExportFormat
    labelset: LabelsetName = "ground-truth"  # the labelset single-labelset formats export
    filter: ExportFilter = ExportFilter()
    # coco/yolo: "detection" exports boxes, "segmentation" polygons and masks (coco: RLE for masks).
    task: Literal["detection", "segmentation"] = "detection"
    archive: bool = False  # a zip even when the format writes one file (which is otherwise downloaded as it is)


class CreateExportRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    release_id: str
    export: CreateExport


class Export(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    release_id: str
    format: ExportFormat
    labelset: str
    filter: ExportFilter
    task: str
    archive: bool = False
    state: JobState
    samples: int
    objects: int
    size_bytes: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    download_url: str | None = None  # presigned, once SUCCEEDED
    expires_in: int | None = None  # seconds the URL stays valid


class ExportRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    export_id: str


class ListExportsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    release_id: str


class ExportList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Export]


# -- label imports ---------------------------------------------------------------------------------
# Annotation's imports of labelled data (REST: /label-imports), not ingest's import runs of images (`Run`,
# REST: /imports). The types keep their names `Import...`: they are the OpenAPI document's schema names.

ImportFormat = Literal["native", "coco", "yolo", "voc"]


class ImageSource(BucketSource, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Images under `prefix` of `bucket` on your S3 at `endpoint` (required: never Loupe's own storage), read
    with the keys given, which are kept only encrypted; matched to annotations by their path below `prefix`."""


class CreateImport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Import labelled data: upload one file (a zip of images and annotations, or the annotation file
    alone) to `upload_url`, then start the import. Images come from the zip, from `images` on S3, or
    (native) from Loupe's own media by content hash."""

    format: ImportFormat
    dataset_id: Uuid
    labelset: LabelsetName = "ground-truth"
    images: ImageSource | None = None
    create_classes: bool = True  # classes the file names that the schema lacks are created


class CreateImportRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    body: CreateImport


ImportItemOutcome = Literal["IMPORTED", "FAILED", "SKIPPED"]


class ImportItem(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one image of the import."""

    index: int
    name: str
    outcome: ImportItemOutcome
    sample_id: str | None = None
    objects: int = 0
    error_code: str | None = None
    error: str | None = None  # names the annotation and field at fault


class Import(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    dataset_id: str
    labelset: str
    format: ImportFormat
    state: Literal["WAITING", "PENDING", "RUNNING", "SUCCEEDED", "PARTIAL", "FAILED"]
    images: int
    imported: int
    failed: int
    objects: int
    classes_created: list[str]
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    upload_url: str | None = None  # presigned PUT for the file, while WAITING


class ImportRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    import_id: str


class ListImportItems(msgspec.Struct, frozen=True, kw_only=True):
    outcome: ImportItemOutcome | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    offset: Annotated[int, Meta(ge=0)] = 0


class ListImportItemsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    import_id: str
    query: ListImportItems


class ImportItemPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ImportItem]
    total: int


# -- jobs -------------------------------------------------------------------------------------------


class BuildRelease(msgspec.Struct, frozen=True, kw_only=True, tag="release"):
    release_id: str


class BuildExport(msgspec.Struct, frozen=True, kw_only=True, tag="export"):
    export_id: str


ReleaseJob = BuildRelease | BuildExport


# A label import's two jobs: hand its images to ingest (submitted when it starts), then write its labels
# (submitted once ingest's part is done: at once for images registered by hash, else when its run finished).
LabelImportStep = Literal["images", "labels"]


class LabelImportJob(msgspec.Struct, frozen=True, kw_only=True):
    """Take a label import (an `Import`) through one step, from the stage its row records."""

    import_id: str
    step: LabelImportStep
