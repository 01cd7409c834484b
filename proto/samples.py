"""Catalog datasets and samples: messages of their commands and events."""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from proto.catalog import Description, Page

# Fixed forever: ingest and the catalog both derive sample ids from it (see `sample_id_for`).
SAMPLE_NAMESPACE = uuid.UUID("5a7c6e1e-3f0b-4d8e-9a42-1c6b2f0e8d31")
MAX_ITEMS = 10_000  # items per bulk call


def sample_id_for(dataset_id: str, content_hash: str) -> str:
    """The id of the sample an image (hex SHA-256) becomes in a dataset: the same image in the same
    dataset always names the same sample, which makes registering it twice harmless.

    It is `uuid5(SAMPLE_NAMESPACE, "<dataset id>:<hash>")`, computed without building UUID objects:
    ingest derives one per image, tens of thousands a second when registering.
    """
    digest = bytearray(hashlib.sha1(_uuid5_prefix(dataset_id) + content_hash.lower().encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.lru_cache(maxsize=4096)
def _uuid5_prefix(dataset_id: str) -> bytes:
    return SAMPLE_NAMESPACE.bytes + f"{uuid.UUID(dataset_id)}:".encode()


class FindSamplesByHash(msgspec.Struct, frozen=True, kw_only=True):
    """Which of these images (hex SHA-256) are already samples of the dataset."""

    project_id: str
    dataset_id: str
    content_hashes: list[str]


class SamplesByHash(msgspec.Struct, frozen=True, kw_only=True):
    found: dict[str, str]  # content hash → sample id


# The workflow of a sample through labelling; its allowed transitions are enforced by the catalog.
SampleStatus = Literal["NEW", "IN_PROGRESS", "TO_REVIEW", "DONE", "SKIPPED", "AUTO_LABELLED", "COMPLETED"]


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    dataset_id: str
    name: str
    external_id: str | None
    content_hash: str | None  # hex SHA-256 of the original in the media bucket
    media_url: str | None  # set instead for media kept outside Loupe
    format: str | None
    width: int
    height: int
    size_bytes: int | None
    metadata: dict[str, Any]
    tags: list[str]
    priority: float
    status: SampleStatus
    labeler_id: str | None
    reviewer_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime


# -- field types ------------------------------------------------------------------------------------

DatasetName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
SampleName = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"\S")]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
ContentHash = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 (lower case) of the image bytes")
]
MediaUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=4096)]
Dimension = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
ImageFormat = Literal["jpeg", "png", "webp", "tiff", "bmp", "gif"]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=100)]
SampleIds = Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]


# -- datasets ---------------------------------------------------------------------------------------


class Dataset(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    name: str
    description: str
    version: int
    created_at: datetime
    updated_at: datetime


class CreateDataset(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: DatasetName  # unique in the project, case-insensitively
    description: Description = ""


class CreateDatasetRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    dataset: CreateDataset


class UpdateDataset(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields left out stay as they are; `version`, when given, must match (else 409)."""

    name: DatasetName | None = None
    description: Description | None = None
    version: int | None = None


class UpdateDatasetRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    dataset_id: str
    changes: UpdateDataset


class DatasetRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    dataset_id: str


class ListDatasets(Page, frozen=True, kw_only=True):
    """Query parameters of listing datasets."""


class ListDatasetsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    page: ListDatasets


class DatasetPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Dataset]
    next_cursor: str | None = None


class DatasetUpdated(msgspec.Struct, frozen=True, kw_only=True):
    dataset: Dataset
    changed: list[str]  # names of the fields that changed


class DatasetDeleted(msgspec.Struct, frozen=True, kw_only=True):
    """A dataset and all its samples are gone; no per-sample events follow."""

    id: str
    project_id: str
    name: str
    sample_count: int  # samples deleted with it


# -- samples: one at a time -------------------------------------------------------------------------


class SampleRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    sample_id: str


class LocateSample(msgspec.Struct, frozen=True, kw_only=True):
    """Which project a sample is in, for APIs that name a sample by its id alone (Segments.ai's)."""

    sample_id: str


class SampleChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields left out stay as they are; `null` clears the nullable ones. `metadata` replaces the
    whole object, `metadata_patch` merges into it (RFC 7396: a `null` value removes that key); send
    one of the two. `status` must be an allowed next status of the current one. `version`, when
    given, must match (else 409)."""

    name: SampleName | UnsetType = UNSET
    external_id: ExternalId | None | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    metadata_patch: dict[str, Any] | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    priority: float | UnsetType = UNSET
    status: SampleStatus | UnsetType = UNSET
    labeler_id: uuid.UUID | None | UnsetType = UNSET  # a user of the organisation
    reviewer_id: uuid.UUID | None | UnsetType = UNSET
    version: int | UnsetType = UNSET


class UpdateSampleRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    sample_id: str
    changes: SampleChanges


class SetSampleStatus(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Move a sample along the labelling workflow; `version`, when given, must match (else 409)."""

    status: SampleStatus
    version: int | UnsetType = UNSET


# -- samples: in bulk -------------------------------------------------------------------------------


class NewSample(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One image to become a sample: either `content_hash` of an image your organisation stored (uploaded or
    imported), or an external `media_url`. `id` is optional; without it a sample with `content_hash` gets
    `sample_id_for(dataset_id, content_hash)`, so creating the same image again is idempotent."""

    id: uuid.UUID | None = None
    content_hash: ContentHash | None = None
    media_url: MediaUrl | None = None
    name: SampleName
    width: Dimension
    height: Dimension
    format: ImageFormat | None = None
    size: Annotated[int, msgspec.Meta(ge=0)] | None = None  # bytes
    external_id: ExternalId | None = None
    metadata: dict[str, Any] = {}
    priority: float = 0.0


class CreateSamples(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """All or nothing: one bad item fails the call and `path` names it (`$.items[3].width`)."""

    items: Annotated[list[NewSample], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]


class CreateSamplesRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    dataset_id: str
    body: CreateSamples


class CreatedSample(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    outcome: Literal["created", "existing"]  # existing: this image was already a sample of the dataset


class CreatedSamples(msgspec.Struct, frozen=True, kw_only=True):
    created: int
    existing: int
    items: list[CreatedSample]  # in the order of the request


class SampleUpdate(SampleChanges, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The changes of one sample in a bulk update."""

    id: uuid.UUID


class UpdateSamples(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """All or nothing: an unknown id, a stale version or a forbidden status fails the call and
    `path` names the item."""

    items: Annotated[list[SampleUpdate], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]


class UpdateSamplesRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    body: UpdateSamples


class UpdatedSample(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    changed: list[str]  # empty when the item changed nothing


class UpdatedSamples(msgspec.Struct, frozen=True, kw_only=True):
    items: list[UpdatedSample]  # in the order of the request


class DeleteSamples(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """All or nothing: an id that is not a sample of the project fails the call (404)."""

    ids: SampleIds


class DeleteSamplesRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    body: DeleteSamples


class DeletedSamples(msgspec.Struct, frozen=True, kw_only=True):
    deleted: int


class MoveSamples(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Move samples into another dataset of the same project. An image may be in a dataset once, so a
    move that would put it there twice fails (409, naming both samples)."""

    ids: SampleIds
    dataset_id: uuid.UUID


class MoveSamplesRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    body: MoveSamples


class MovedSamples(msgspec.Struct, frozen=True, kw_only=True):
    moved: int
    unchanged: int  # already in the target dataset


# -- events -----------------------------------------------------------------------------------------


class SampleFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What other services keep of a sample (annotation validates and exports labels with these)."""

    id: str
    dataset_id: str
    name: str
    content_hash: str | None
    media_url: str | None
    width: int
    height: int
    status: SampleStatus
    external_id: str | None = None
    metadata: dict[str, Any] = {}
    priority: float = 0.0
    labeler_id: str | None = None
    reviewer_id: str | None = None


class SamplesCreated(msgspec.Struct, frozen=True, kw_only=True):
    """Samples created by one call or one ingest batch (a call of thousands is split into events of
    at most `EVENT_SAMPLES`, to stay under the NATS message size)."""

    project_id: str
    dataset_id: str
    samples: list[SampleFacts]
    run_id: str | None = None  # the ingest run or upload session they came from


class SamplesUpdated(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    samples: list[SampleFacts]  # as they are now
    changed: list[str]  # fields changed on at least one of them


class SamplesDeleted(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    ids: list[str]


class SamplesMoved(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    dataset_id: str  # where they are now
    ids: list[str]


EVENT_SAMPLES = 1000  # samples per created/updated event


# -- media ------------------------------------------------------------------------------------------

MediaVariant = Literal["original", "thumbnail"]


class SampleMediaRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    sample_id: str
    variant: MediaVariant


class SampleUrls(msgspec.Struct, frozen=True, kw_only=True):
    """Presigned URLs that work without an API key until they expire (or the external URL as is)."""

    sample_id: str
    original_url: str
    thumbnail_url: str | None  # None while no thumbnail exists yet
    expires_in: int  # seconds


MAX_SIGNED = 500  # sample ids per bulk URL request: a few pages of a grid


class SignMediaBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Presigned URLs of many samples' originals or thumbnails at once, signed without looking at the
    bucket: a thumbnail URL answers 404 until ingest has made the thumbnail (seconds after the image is
    stored; the single-sample `…/urls` tells which). A sample with external media has no thumbnail,
    so it gets its external URL for either variant."""

    sample_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=MAX_SIGNED)]
    variant: MediaVariant = "thumbnail"


class SignMediaBatchRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    body: SignMediaBatch


class SampleUrl(msgspec.Struct, frozen=True, kw_only=True):
    sample_id: str
    url: str


class SampleUrlList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[SampleUrl]  # in the order asked, a repeated id once
    missing: list[str]  # ids that are no sample of the project (deleted, say): left out of `items`
    expires_in: int  # seconds
