"""Ingest commands, jobs and events: upload sessions, import runs, and the media it hands the catalog."""

from __future__ import annotations

from typing import Any

import msgspec


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
