"""Bucket imports: list an S3 prefix a page at a time (remembering how far it got) and read its objects, from
the user's S3, reached with the stored, encrypted credentials through the same address guard as URL imports.

Loupe's own storage is never a source: the guard refuses every address it answers on. The one exception is a
run a Loupe service staged files for (annotation's label imports), which ingest checked when it made the run.
"""

from __future__ import annotations

import asyncio
import itertools
import posixpath

import asyncpg
from minio import Minio
from minio.error import S3Error

from proto.ingest import FileSpec
from services.ingest import credentials
from services.ingest.pipeline import Reader
from services.ingest.rejection import FileRejected
from services.ingest.runs import add_items
from shared import fetch
from shared.service import Runtime

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


async def list_more(rt: Runtime, run: asyncpg.Record) -> None:
    """Add the next page of the prefix's keys to the run; the last page marks the run listed."""
    bucket = run["bucket"]

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
        entries = [
            (key, FileSpec(name=posixpath.basename(key), metadata={**bucket["metadata"], "s3_key": key}))
            for key in keys
            if not key.endswith("/")
        ]
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
    bucket = run["bucket"]
    clients: list[Minio] = []  # made on the first read, then reused

    def read_object(key: str) -> bytes:
        response = clients[0].get_object(bucket["bucket"], key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    async def read(row: asyncpg.Record) -> bytes:
        if not clients:
            clients.append(client_for(rt, bucket))
        try:
            return await asyncio.to_thread(read_object, row["source"])
        except S3Error as exc:
            raise FileRejected("unreadable", f"reading {row['source']} failed: {exc.code}: {exc.message}") from None

    return read
