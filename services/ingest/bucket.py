"""Bucket imports: list an S3 prefix a page at a time (remembering how far it got) and read its objects,
from Loupe's own S3 or an external one reached with the stored, encrypted credentials."""

from __future__ import annotations

import asyncio
import itertools
import posixpath

import asyncpg
from minio import Minio
from minio.error import S3Error

from proto.ingest import FileSpec
from services.ingest import credentials, fetch
from services.ingest.pipeline import Reader
from services.ingest.rejection import FileRejected
from services.ingest.runs import add_items
from shared.service import Runtime

LIST_PAGE = 1000


async def client_for(rt: Runtime, bucket: dict) -> Minio:
    if not bucket["endpoint"]:
        return rt.storage.client
    host, _, port = bucket["endpoint"].rpartition(":")
    if not host or not port.isdigit():
        host, port = bucket["endpoint"], "443" if bucket["secure"] else "80"
    # The endpoint is the user's to choose, so it gets the same private-address ban as URL imports.
    await fetch.GuardedResolver(fetch.AddressGuard(rt.state["fetch_policy"])).resolve(host.strip("[]"), int(port))
    access_key, secret_key = credentials.unseal(rt.settings, bucket["credentials"])
    return Minio(bucket["endpoint"], access_key=access_key, secret_key=secret_key, secure=bucket["secure"],
                 region=bucket["region"] or None)


async def list_more(rt: Runtime, run: asyncpg.Record) -> None:
    """Add the next page of the prefix's keys to the run; the last page marks the run listed."""
    bucket = run["bucket"]
    try:
        client = await client_for(rt, bucket)
    except fetch.FetchError as exc:
        await fail_listing(rt, run, exc.message)
        return

    def page() -> list[str]:
        objects = client.list_objects(bucket["bucket"], prefix=bucket["prefix"], recursive=True,
                                      start_after=run["list_after"] or None)
        return [o.object_name for o in itertools.islice(objects, LIST_PAGE)]

    try:
        keys = await asyncio.to_thread(page)
    except S3Error as exc:
        await fail_listing(rt, run, f"listing s3://{bucket['bucket']}/{bucket['prefix']} failed: {exc.code}: "
                           f"{exc.message}; check the bucket, prefix and keys")
        return
    async with rt.db.acquire() as conn, conn.transaction():
        current = await conn.fetchrow("SELECT total, list_after FROM runs WHERE id = $1 FOR UPDATE", run["id"])
        if current["list_after"] != run["list_after"]:
            return  # another replica listed this page meanwhile
        entries = [(key, FileSpec(name=posixpath.basename(key), metadata={**bucket["metadata"], "s3_key": key}))
                   for key in keys if not key.endswith("/")]
        await add_items(conn, run["id"], current["total"], entries, "PENDING")
        await conn.execute("UPDATE runs SET list_after = $2, listed = $3 WHERE id = $1",
                           run["id"], keys[-1] if keys else run["list_after"], len(keys) < LIST_PAGE)


async def fail_listing(rt: Runtime, run: asyncpg.Record, reason: str) -> None:
    async with rt.db.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE runs SET listed = true, failed = failed + 1, updated_at = now() WHERE id = $1",
                           run["id"])
        await conn.execute(
            "INSERT INTO items (run_id, idx, source, state, error_code, error) "
            "SELECT id, total, 'listing:' || total, 'FAILED', 'listing_failed', $2 FROM runs WHERE id = $1",
            run["id"], reason)
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
            clients.append(await client_for(rt, bucket))
        try:
            return await asyncio.to_thread(read_object, row["source"])
        except S3Error as exc:
            raise FileRejected("unreadable", f"reading {row['source']} failed: {exc.code}: {exc.message}") from None
    return read
