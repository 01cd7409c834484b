"""Where a sample's pixels are: presigned GET URLs of its original (media bucket) and thumbnail
(thumbs bucket), both keyed by the content hash, or the external `media_url` it was created with.

Presigned URLs are signed locally (no S3 round trip) and work without an API key, so a browser can
put them straight into `<img src>`. The original is not looked up: a sample names media that is in
the bucket. The thumbnail is, because ingest makes it after storing the original; a small JPEG has
none, its original serves (shared/thumbnails.py).
"""

from __future__ import annotations

import asyncpg

from proto import subjects
from proto.common import Redirect
from proto.samples import SampleMediaRef, SampleRef, SampleUrl, SampleUrlList, SampleUrls, SignMediaBatchRequest
from shared import object_keys, thumbnails
from shared.bus import RequestContext
from shared.errors import LoupeError
from shared.ids import parse_uuid
from shared.rows import one_of_project
from shared.service import Answers, Runtime
from shared.storage import Storage

ANSWERS = Answers()

EXPIRES_S = 3600


def original_url(storage: Storage, content_hash: str | None, media_url: str | None) -> str:
    if content_hash is not None:
        return storage.presigned_get("media", object_keys.original(content_hash), EXPIRES_S)
    assert media_url is not None, "a CHECK on samples keeps content_hash or media_url set"
    return media_url


async def thumbnail_url(storage: Storage, row: asyncpg.Record) -> str | None:
    """None while there is no thumbnail (not made yet, or external media Loupe never stored)."""
    if row["content_hash"] is None:
        return None
    bucket, key = thumbnails.location(row["content_hash"], row["format"], row["width"], row["height"])
    if bucket == "thumbs" and not await storage.exists(bucket, key):  # the original is there: a sample names it
        return None
    return storage.presigned_get(bucket, key, EXPIRES_S)


async def fetch(rt: Runtime, project_id: str, sample_id: str) -> asyncpg.Record:
    query = "SELECT content_hash, media_url, format, width, height FROM samples WHERE id = $1 AND project_id = $2"
    return await one_of_project(rt.db, query, "sample", sample_id, project_id)


@ANSWERS(subjects.LOCATE_MEDIA)
async def locate(rt: Runtime, request: SampleMediaRef, ctx: RequestContext) -> Redirect:
    row = await fetch(rt, request.project_id, request.sample_id)
    if request.variant == "original":
        return Redirect(url=original_url(rt.storage, row["content_hash"], row["media_url"]))
    url = await thumbnail_url(rt.storage, row)
    if url is None:
        raise LoupeError(
            "not_found",
            f"sample {request.sample_id} has no thumbnail yet"
            + (
                ": its media is external, Loupe keeps no copy"
                if row["content_hash"] is None
                else "; ingest makes one when it stores the image, try again shortly"
            ),
            resource="thumbnail",
            id=request.sample_id,
        )
    return Redirect(url=url)


@ANSWERS(subjects.SIGN_MEDIA)
async def sign(rt: Runtime, request: SampleRef, ctx: RequestContext) -> SampleUrls:
    row = await fetch(rt, request.project_id, request.sample_id)
    return SampleUrls(
        sample_id=request.sample_id,
        original_url=original_url(rt.storage, row["content_hash"], row["media_url"]),
        thumbnail_url=await thumbnail_url(rt.storage, row),
        expires_in=EXPIRES_S,
    )


@ANSWERS(subjects.SIGN_MEDIA_BATCH)
async def sign_batch(rt: Runtime, request: SignMediaBatchRequest, ctx: RequestContext) -> SampleUrlList:
    # Signing is local, so a grid's page of thumbnails costs one query; whether each thumbnail exists
    # yet is not asked (that would be an S3 round trip per sample).
    ids = list(dict.fromkeys(str(sample_id) for sample_id in request.body.sample_ids))
    rows = {
        str(row["id"]): row
        for row in await rt.db.fetch(
            "SELECT id, content_hash, media_url, format, width, height FROM samples "
            "WHERE project_id = $1 AND id = ANY($2::uuid[])",
            parse_uuid(request.project_id, "project"),
            ids,
        )
    }
    thumbnail = request.body.variant == "thumbnail"

    def url(row: asyncpg.Record) -> str:
        if thumbnail and row["content_hash"] is not None:
            return rt.storage.presigned_get(
                *thumbnails.location(row["content_hash"], row["format"], row["width"], row["height"]), EXPIRES_S
            )
        return original_url(rt.storage, row["content_hash"], row["media_url"])

    return SampleUrlList(
        items=[SampleUrl(sample_id=i, url=url(rows[i])) for i in ids if i in rows],
        missing=[i for i in ids if i not in rows],
        expires_in=EXPIRES_S,
    )
