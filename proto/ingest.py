"""Ingest commands, jobs and events: upload sessions, import runs, and the media it hands the catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from proto.common import Uuid


class StoredMedia(msgspec.Struct, frozen=True, kw_only=True):
    """One validated image in the media bucket, to become (or stay) a sample of a dataset.

    `sample_id` is derived from (dataset, sha256), so registering the same image in the same dataset
    twice names the same sample and the catalog creates it once.
    """

    sample_id: str
    sha256: str  # hex; the original is at key `<sha256>` of the media bucket, its thumbnail likewise in thumbs
    format: str  # jpeg, png, webp, tiff, bmp, gif
    width: int  # after EXIF orientation
    height: int
    size: int  # bytes
    name: str
    external_id: str | None = None
    metadata: dict[str, Any] = {}
    priority: float = 0.0


class MediaStored(msgspec.Struct, frozen=True, kw_only=True):
    """A batch of images ingest stored for one dataset (at most a few hundred per event)."""

    project_id: str
    dataset_id: str
    items: list[StoredMedia]
    run_id: str | None = None  # the import run or upload session they came from


# -- import runs: every way in makes one, and reports on it ------------------------------------------

RunKind = Literal["upload", "url", "bucket", "bus", "register"]
RunState = Literal["WAITING", "RUNNING", "SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED"]
ItemState = Literal["WAITING", "PENDING", "CREATED", "DUPLICATE", "FAILED", "CANCELLED"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=8000)]


class FileSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to call an incoming image and what to record with it."""

    name: Name | None = None  # defaults to the file name, the URL's last segment or the S3 key
    external_id: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    metadata: dict[str, Any] = {}
    priority: float = 0.0


Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
ImageType = Literal["image/jpeg", "image/png", "image/webp", "image/tiff", "image/bmp", "image/gif"]


class UploadFile(FileSpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A file to upload. A client that knows the file's SHA-256 (hex) and type says so: its bytes then go
    straight to their final place (no staging copy), and a file the organisation has stored before needs no
    PUT at all."""

    sha256: Sha256 | None = None
    content_type: ImageType | None = None  # required with sha256; the file's real type must be this one


class CreateUpload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Ask for presigned PUT slots: give `files` (one per image) or just a `count`."""

    files: Annotated[list[UploadFile], msgspec.Meta(max_length=10_000)] = []
    count: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0


class CreateUploadRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    dataset_id: str
    upload: CreateUpload


class UploadSlot(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    url: str | None  # PUT the image's bytes here, as they are; None when `stored`
    name: str | None = None
    headers: dict[str, str] = {}  # send these with the PUT, exactly (a file declared by its SHA-256)
    stored: bool = False  # the organisation has this file already (by its declared SHA-256): no PUT needed


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    slots: list[UploadSlot]
    expires_in_s: int
    complete_url: str  # POST here when the PUTs are done (relative to the API root)


class CompleteUpload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The slots whose PUT finished; empty = all of them. Slots never PUT are reported as failed."""

    indexes: list[Annotated[int, msgspec.Meta(ge=0)]] = []


class CompleteUploadRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    run_id: str
    complete: CompleteUpload


class InlineFile(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    data: bytes


class UploadFilesRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Images whose bytes come with the request (the gateway's multipart upload): no staging, no presigned URL."""

    project_id: str
    dataset_id: str
    files: Annotated[list[InlineFile], msgspec.Meta(min_length=1, max_length=100)]


class UrlItem(FileSpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Url


class ImportUrls(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[UrlItem], msgspec.Meta(min_length=1, max_length=10_000)]


class ImportUrlsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    dataset_id: str
    urls: ImportUrls


# S3's bucket naming rules: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a
# letter or digit, no ".." / ".-" / "-.", and not an IPv4 address.
BucketName = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=63,
        examples=["raw-frames"],
        pattern=r"^(?!(?:[0-9]{1,3}\.){3}[0-9]{1,3}$)(?!.*(?:\.\.|\.-|-\.))[a-z0-9][a-z0-9.-]*[a-z0-9]$",
    ),
]
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}\.)*[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.?"  # the last label is never all digits
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
_HEX = "[0-9A-Fa-f]{1,4}"
# Eight groups, or fewer around one "::" (the lookahead allows at most seven colons in all).
_IPV6 = (
    rf"(?:(?:{_HEX}:){{7}}{_HEX}|(?=(?:[0-9A-Fa-f]{{0,4}}:){{0,7}}[0-9A-Fa-f]{{0,4}}\])"
    rf"(?:(?:{_HEX}:){{1,7}}|:)(?:(?::{_HEX}){{1,7}}|:))"
)
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# host[:port]: a host name, an IPv4 address or a bracketed IPv6 address, and a port from 1 to 65535.
Endpoint = Annotated[
    str,
    msgspec.Meta(
        max_length=260,
        pattern=rf"^(?:{_HOST}|{_IPV4}|\[{_IPV6}\])(?::{_PORT})?$",
        examples=["s3.amazonaws.com", "minio.example.com:9000"],
    ),
]


class BucketSource(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A prefix of a bucket on the user's S3 at `endpoint`, and the keys that read it. `endpoint` is required:
    Loupe never imports from its own storage."""

    bucket: BucketName
    prefix: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    endpoint: Endpoint | None = None  # host[:port]; missing is refused with a hint, by ingest
    secure: bool = True
    region: str = ""
    access_key: str = ""
    secret_key: str = ""


ObjectKey = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, examples=["cams/front/0001.jpg"])]


class ImportBucket(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Import every image under `prefix` (or only the objects `keys` names) of a bucket: one of the project's
    stored buckets (`bucket_id`, whose keys Loupe keeps), or one named here by `endpoint` and `bucket` with the
    keys that read it (stored encrypted for this import, for resuming). `endpoint` is required for the latter:
    Loupe never imports from its own storage."""

    bucket_id: Uuid | None = None  # a stored bucket of the project: give no bucket, endpoint or keys with it
    bucket: BucketName | None = None
    prefix: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    keys: Annotated[list[ObjectKey], msgspec.Meta(max_length=1000)] = []  # these objects only, not the prefix
    endpoint: Endpoint | None = None  # host[:port]; missing is refused with a hint, by ingest
    secure: bool = True
    region: str = ""
    access_key: str = ""
    secret_key: str = ""
    metadata: dict[str, Any] = {}  # recorded on every sample (plus the S3 key as `s3_key`)


class SealedKeys(msgspec.Struct, frozen=True, kw_only=True):
    """A bucket source's keys as ingest stores them (encrypted), for a service that starts its import later."""

    credentials: str


class ImportBucketRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    dataset_id: str
    source: ImportBucket
    # Set by a Loupe service, never from a request body: `source` names files that service staged for this
    # project on Loupe's own S3 (annotation's label imports), which ingest reads only under
    # `<project_id>/imports/` of the releases bucket.
    staged: bool = False
    # Set by a Loupe service, never from a request body: the source's keys as ingest sealed them earlier
    # (SEAL_BUCKET_KEYS; `source` then carries none), so that no other service keeps them or their key.
    credentials: str | None = None


# -- stored buckets: a project's S3 buckets with the keys that read them, kept encrypted -----------------


StoredBucketName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["dashcam frames"])]


class NewStoredBucket(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A bucket on your S3 at `endpoint` (never Loupe's own storage) and the keys that read it, kept for the
    project so that imports name it by id. The keys are stored encrypted and never shown again."""

    name: StoredBucketName
    bucket: BucketName
    endpoint: Endpoint
    secure: bool = True
    region: Annotated[str, msgspec.Meta(max_length=100)] = ""
    access_key: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    secret_key: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class CreateStoredBucketRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    bucket: NewStoredBucket


class StoredBucket(msgspec.Struct, frozen=True, kw_only=True):
    """A stored bucket as anyone sees it: where it is, never its keys."""

    id: str
    project_id: str
    name: str
    bucket: str
    endpoint: str
    secure: bool
    region: str
    created_by: str
    created_at: datetime


class StoredBucketRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    id: str


class ListStoredBucketsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str


class StoredBucketList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[StoredBucket]


class MediaRef(FileSpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sha256: Sha256


class RegisterMedia(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Make samples of images Loupe already stored (by their SHA-256), e.g. in another dataset."""

    items: Annotated[list[MediaRef], msgspec.Meta(min_length=1, max_length=10_000)]


class RegisterMediaRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    dataset_id: str
    media: RegisterMedia


class OwnedMediaRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Which of these images (hex SHA-256) has the organisation stored: read in one of its imports."""

    org_id: str
    hashes: list[str]


class OwnedMedia(msgspec.Struct, frozen=True, kw_only=True):
    owned: list[str]  # the hashes of the request that the organisation stored, in no particular order


class Run(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    project_id: str
    dataset_id: str
    kind: RunKind
    state: RunState
    total: int  # items known so far (a bucket import learns them as it lists)
    created: int  # new samples
    duplicates: int  # images already in the dataset, reported with the existing sample
    failed: int
    pending: int
    source: str  # what it reads: "upload", the bucket and prefix, "bus", ...
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class RunItem(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    source: str
    name: str | None
    state: ItemState
    sample_id: str | None = None
    sha256: str | None = None
    error_code: str | None = None
    error: str | None = None


class RunRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    id: str


class ListRuns(msgspec.Struct, frozen=True, kw_only=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50
    dataset_id: Uuid | None = None


class ListRunsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    query: ListRuns


class RunList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Run]


class ListRunItems(msgspec.Struct, frozen=True, kw_only=True):
    state: ItemState | None = None
    after: Annotated[int, msgspec.Meta(ge=-1)] = -1  # the last index of the previous page
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class ListRunItemsRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    id: str
    query: ListRunItems


class RunItemPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[RunItem]
    next_after: int | None = None


class RunProgressed(msgspec.Struct, frozen=True, kw_only=True):
    run: Run


class MediaImportJob(msgspec.Struct, frozen=True, kw_only=True):
    """Work on a run's pending items (and, for a bucket, list more of it); `step` orders the messages
    of one run, each a bounded slice of work that submits the next."""

    run_id: str
    step: int = 0


class BusMedia(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An image an outside producer (a camera, a robot) publishes for a dataset: its bytes (base64 in
    JSON; a message must fit the NATS max_payload, which Loupe sets to 16 MiB) or a URL to fetch."""

    project_id: str
    dataset_id: str
    data: bytes | None = None
    url: Url | None = None
    name: Name | None = None
    external_id: str | None = None
    metadata: dict[str, Any] = {}
    priority: float = 0.0


class UploadedFiles(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a multipart upload: the run, and each file's outcome once it finished."""

    run: Run
    items: list[RunItem]
