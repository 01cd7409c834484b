"""Bucket imports: list an S3 prefix a page at a time (remembering how far it got), or take the keys given, and read
its objects, from the user's S3, reached with the stored, encrypted credentials (the run's own, or a stored bucket's,
looked up at each step) through the same address guard as URL imports.

Loupe's own storage is never a source: the guard refuses every address it answers on. The one exception is a
run a Loupe service staged files for (annotation's label imports), which ingest checked when it made the run.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg
from minio import Minio
from minio.error import S3Error

from services.ingest import buckets
from services.ingest.pipeline import Reader
from services.ingest.rejection import FileRejected
from services.ingest.runs import add_items, key_entry
from shared import credentials, fetch
from shared.errors import LoupeError
from shared.service import Runtime
from shared.storage import read_object

LIST_PAGE = 1000


def client_for(rt: Runtime, bucket: dict) -> Minio:
    if bucket.get("staged"):
        return rt.storage.client
    if not bucket["endpoint"]:  # a run made before imports needed an endpoint: it would read Loupe's own storage
        raise fetch.FetchError(
            "blocked_address",
            "this import names no endpoint, and Loupe never imports from its "
            "own storage: start it again with the `endpoint` of your S3",
        )
    access_key, secret_key = credentials.unseal(rt.settings, bucket["credentials"])
    return Minio(
        bucket["endpoint"],
        access_key=access_key,
        secret_key=secret_key,
        secure=bucket["secure"],
        region=bucket["region"] or None,
        http_client=fetch.guarded_http(rt.state[fetch.POLICY]),
    )


async def source_of(rt: Runtime, run: asyncpg.Record) -> dict[str, Any]:
    """Where the run reads: as it recorded, or, for a stored bucket, as stored now (gone: FetchError)."""
    bucket = run["bucket"]
    if "bucket_id" not in bucket:
        return bucket
    try:
        row = await buckets.stored_row(rt.db, str(run["project_id"]), bucket["bucket_id"])
    except LoupeError as error:
        if error.code != "not_found":
            raise
        raise fetch.FetchError(
            "bucket_deleted", f"stored bucket {bucket['bucket_id']} was deleted, and its keys with it; store it again"
        ) from None
    return bucket | buckets.run_source(row)


async def list_more(rt: Runtime, run: asyncpg.Record) -> None:
    """Add the next page of the prefix's keys to the run; the last page marks the run listed."""
    try:
        bucket = await source_of(rt, run)
    except fetch.FetchError as exc:
        await fail_listing(rt, run, exc.message)
        return

    def page() -> list[str]:
        objects = client_for(rt, bucket).list_objects(
            bucket["bucket"], prefix=bucket["prefix"], recursive=True, start_after=run["list_after"] or None
        )
        return [o.object_name for o in itertools.islice(objects, LIST_PAGE)]

    try:
        keys = await asyncio.to_thread(page)
    except fetch.FetchError as exc:
        await fail_listing(rt, run, exc.message)
        return
    except S3Error as exc:
        await fail_listing(
            rt,
            run,
            f"listing s3://{bucket['bucket']}/{bucket['prefix']} failed: {exc.code}: "
            f"{exc.message}; check the bucket, prefix and keys",
        )
        return
    async with rt.db.acquire() as conn, conn.transaction():
        current = await conn.fetchrow("SELECT total, list_after FROM runs WHERE id = $1 FOR UPDATE", run["id"])
        if current["list_after"] != run["list_after"]:
            return  # another replica listed this page meanwhile
        entries = [key_entry(key, bucket["metadata"]) for key in keys if not key.endswith("/")]
        await add_items(conn, run["id"], current["total"], entries, "PENDING")
        await conn.execute(
            "UPDATE runs SET list_after = $2, listed = $3 WHERE id = $1",
            run["id"],
            keys[-1] if keys else run["list_after"],
            len(keys) < LIST_PAGE,
        )


async def fail_listing(rt: Runtime, run: asyncpg.Record, reason: str) -> None:
    async with rt.db.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE runs SET listed = true, failed = failed + 1, updated_at = now() WHERE id = $1", run["id"]
        )
        await conn.execute(
            "INSERT INTO items (run_id, idx, source, state, error_code, error) "
            "SELECT id, total, 'listing:' || total, 'FAILED', 'listing_failed', $2 FROM runs WHERE id = $1",
            run["id"],
            reason,
        )
        await conn.execute("UPDATE runs SET total = total + 1 WHERE id = $1", run["id"])


def bucket_reader(rt: Runtime, run: asyncpg.Record) -> Reader:
    places: list[tuple[Minio, str]] = []  # the client and bucket, made on the first read, then reused

    def read_key(key: str) -> bytes:
        client, bucket = places[0]
        return read_object(client, bucket, key)

    async def read(row: asyncpg.Record) -> bytes:
        if not places:
            bucket = await source_of(rt, run)
            places.append((client_for(rt, bucket), bucket["bucket"]))
        try:
            return await asyncio.to_thread(read_key, row["source"])
        except S3Error as exc:
            raise FileRejected("unreadable", f"reading {row['source']} failed: {exc.code}: {exc.message}") from None

    return read
