"""Upload slots for files declared by their SHA-256: the client PUTs straight to the original's final key.

A staged upload costs S3 a staging PUT, ingest's GET of it, ingest's PUT of the original and a share of a
batched delete. A client that says a file's SHA-256 and type when it asks for slots skips two of those:

- A file its organisation stored before (`org_media`) needs no PUT: its slot says `stored`, and ingest takes
  the image's facts from its media row, validated when it was first stored.
- Any other file gets a URL to its final, content-addressed key in the media bucket, signed with three
  headers the PUT must carry exactly (`put_headers`). S3 refuses a body whose SHA-256 is not the declared
  one (`x-amz-checksum-sha256`), so nothing but those bytes can ever be written at that key, and a PUT
  over an object already there writes the same bytes. The Content-Type is signed too, so what S3 serves
  is the type validation will check. The upload's run id, as `x-amz-meta-loupe-upload`, records whose
  PUT wrote the object last.

Ingest then reads the object once, as it reads a staged one, and validates it before any sample exists.
It accepts the bytes only if this run's own PUT wrote them: an object another upload wrote proves nothing
about whether this client has the file, so declaring the hash of somebody else's image gets the same
"not uploaded" as declaring one nobody has. Bytes that fail validation are deleted from the final key
unless a media row names it (those bytes are invalid for anyone: the key is their hash).

MinIO and AWS S3 check `x-amz-checksum-sha256` too; `tests/integration/test_uploads_declared.py` checks
that the local stack's SeaweedFS does.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable

import asyncpg

from proto.ingest import UploadFile
from services.ingest.media import ProcessedImage
from services.ingest.rejection import FileRejected
from shared import object_keys
from shared.image_formats import MIME, sniff_format
from shared.service import Runtime
from shared.storage import ObjectMissing

UPLOAD_HEADER = "x-amz-meta-loupe-upload"


def not_uploaded() -> FileRejected:
    return FileRejected(
        "not_uploaded",
        "nothing was PUT to this slot's URL before the upload was completed; upload it again in a new upload",
    )


def put_headers(file: UploadFile, run_id: uuid.UUID) -> dict[str, str]:
    """The headers a declared file's PUT must send, as its URL is signed with them."""
    assert file.sha256 is not None and file.content_type is not None, "checked by create_upload"
    return {
        "content-type": file.content_type,
        "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(file.sha256)).decode(),
        UPLOAD_HEADER: str(run_id),
    }


async def read(rt: Runtime, row: asyncpg.Record) -> bytes:
    """The bytes of item `row` (declared by its SHA-256) that its own upload PUT to their final key."""
    try:
        data, headers = await rt.storage.get_with_headers("media", object_keys.original(row["sha256"]))
    except ObjectMissing:
        raise not_uploaded() from None
    if headers.get(UPLOAD_HEADER) != run_of(row):
        raise not_uploaded()
    found = sniff_format(data[:12])
    if found is not None and MIME[found] != headers.get("Content-Type"):
        raise FileRejected(
            "content_type_mismatch",
            f"the file was declared {headers.get('Content-Type')} but is a {found.upper()} image; "
            f"declare its type as {MIME[found]}",
        )
    return data


def run_of(row: asyncpg.Record) -> str:
    """The upload run of a slot's item, from its source (`object_keys.upload_slot`)."""
    return str(row["source"]).rsplit("/", 1)[0]


def hash_mismatch(row: asyncpg.Record, image: ProcessedImage) -> FileRejected | None:
    """Where the object store took a body whose SHA-256 is not the signed one: a store that ignores
    `x-amz-checksum-sha256`."""
    if image.sha256 == row["sha256"]:
        return None
    return FileRejected(
        "checksum_mismatch",
        f"the file's SHA-256 is {image.sha256}, not the {row['sha256']} declared for it; declare the hash of "
        "the bytes you upload",
    )


def known_image(row: asyncpg.Record) -> ProcessedImage:
    """An image stored and validated before, from its media row: it needs no thumbnail of its own now."""
    return ProcessedImage(
        sha256=row["sha256"],
        format=row["format"],
        mime=MIME[row["format"]],
        width=row["width"],
        height=row["height"],
        size=row["size_bytes"],
        orientation=1,
        thumbnail=None,
    )


async def owned_media(
    db: asyncpg.Pool | asyncpg.Connection, org_id: uuid.UUID | None, hashes: Iterable[str]
) -> dict[str, asyncpg.Record]:
    """The media rows of the images among `hashes` that organisation `org_id` stored before, by SHA-256: what it
    may register or upload again without sending the bytes."""
    wanted = sorted(set(hashes))
    if org_id is None or not wanted:
        return {}
    rows = await db.fetch(
        "SELECT m.* FROM media m JOIN org_media o ON o.sha256 = m.sha256 AND o.org_id = $2 WHERE m.sha256 = ANY($1)",
        wanted,
        org_id,
    )
    return {row["sha256"]: row for row in rows}


async def owned(rt: Runtime, org_id: uuid.UUID | None, hashes: Iterable[str]) -> dict[str, ProcessedImage]:
    """The images among `hashes` that organisation `org_id` stored before, by SHA-256."""
    return {sha: known_image(row) for sha, row in (await owned_media(rt.db, org_id, hashes)).items()}


async def discard(rt: Runtime, recorded: Iterable[tuple[asyncpg.Record, object]]) -> None:
    """Delete what declared items among the recorded `(item, outcome)` pairs left at their final keys when their
    bytes failed validation, where no media row names the key. A `not_uploaded` item's object, if any, may be
    another upload's, and stays."""
    hashes = sorted(
        {
            row["sha256"]
            for row, outcome in recorded
            if row["sha256"] and isinstance(outcome, FileRejected) and outcome.code != "not_uploaded"
        }
    )
    if not hashes:
        return
    kept = {r["sha256"] for r in await rt.db.fetch("SELECT sha256 FROM media WHERE sha256 = ANY($1)", hashes)}
    await rt.storage.delete_many("media", [object_keys.original(sha) for sha in hashes if sha not in kept])
