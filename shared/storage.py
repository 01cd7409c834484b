"""S3 through the `minio` SDK: bucket bootstrap, bytes in and out, presigned URLs.

The SDK is synchronous, so its calls run in worker threads. Moving bytes is the hot path of ingest,
so `put_bytes` and `get_bytes` instead sign a short-lived URL (local HMAC work: a `Presigner` per
bucket and method, renewed each minute, signs one in a few µs where the SDK takes 40+) and transfer
with aiohttp on the event loop: half the client CPU of the SDK's urllib3 path, and no thread hand-off.
Presigned URLs for clients are signed by a second client pointed at the endpoint they can reach
(`s3_public_endpoint`); giving it the region keeps signing free of round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO
from xml.etree import ElementTree

import aiohttp
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from shared import metrics
from shared.presign import Presigner
from shared.settings import Settings

# Logical bucket names; the real name is `<bucket_prefix><name>`.
BUCKETS = ("media", "thumbs", "staging", "releases", "models")


TRANSFER_URL_EXPIRY = timedelta(minutes=10)
BUCKET_APPEARS_S = 5.0  # how long a bucket another replica is making may take to appear
# A transfer's URL comes from a signer of its bucket and method made at most this long ago, so it is still valid
# for most of TRANSFER_URL_EXPIRY; the SDK would derive the signing key and rebuild the URL for each (40+ µs).
TRANSFER_SIGNER_S = 60.0
SINGLE_PUT_MAX_BYTES = 5 * 1024**3  # S3's limit for one PUT
# A file's upload has no total limit, since a file of any size must be able to finish; a stalled one still fails.
FILE_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)


def read_object(client: Minio, bucket: str, key: str) -> bytes:
    """A whole object through a blocking client (a worker thread's), its connection given back to the pool."""
    response = client.get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


class ObjectMissing(LookupError):
    """The key is not in the bucket."""


class StorageError(RuntimeError):
    """S3 refused a request this module made itself (the SDK's own requests raise its `S3Error`)."""


async def _refused(method: str, bucket: str, key: str, response: aiohttp.ClientResponse) -> StorageError:
    body = await response.text()
    try:  # S3 says why in XML: <Error><Code>…</Code><Message>…</Message>…</Error>
        error = ElementTree.fromstring(body)
        detail = f"{error.findtext('Code')}: {error.findtext('Message')}"
    except ElementTree.ParseError:  # not S3 itself answering (a proxy), or no body
        detail = body
    return StorageError(f"{method} {bucket}/{key} failed: HTTP {response.status} {detail}")


class Storage:
    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.bucket_prefix
        self.settings = settings
        self.client = self._client(settings, settings.s3_endpoint)
        self._signers: dict[tuple[str, str], tuple[float, Presigner]] = {}
        self.public = self._client(settings, settings.s3_public_endpoint or settings.s3_endpoint)
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop; `close` ends it.
        if self._http is None:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @staticmethod
    def _client(settings: Settings, endpoint: str) -> Minio:
        return Minio(
            endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )

    def bucket(self, name: str) -> str:
        if name not in BUCKETS:
            raise ValueError(f"unknown bucket {name!r}; buckets are {BUCKETS}")
        return self.prefix + name

    async def ensure_buckets(self, names: tuple[str, ...]) -> None:
        for name in names:
            await asyncio.to_thread(self._ensure_bucket, self.bucket(name))

    def _ensure_bucket(self, bucket: str) -> None:
        try:
            self.client.make_bucket(bucket)
        except S3Error as exc:
            # Another replica (or a previous start) made it first; that is the goal. SeaweedFS answers a make that
            # races another replica's with NoSuchBucket while that one is half made: it is there once it exists.
            if exc.code == "NoSuchBucket" and self._appears(bucket):
                return
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _appears(self, bucket: str) -> bool:
        """Whether `bucket` exists within BUCKET_APPEARS_S."""
        deadline = time.monotonic() + BUCKET_APPEARS_S
        while not self.client.bucket_exists(bucket):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    async def ping(self) -> None:
        await asyncio.to_thread(self.client.list_buckets)

    def _transfer_url(self, method: str, bucket: str, key: str) -> str:
        made, signer = self._signers.get((method, bucket), (-TRANSFER_SIGNER_S, None))
        if signer is None or time.monotonic() - made >= TRANSFER_SIGNER_S:
            expires_s = int(TRANSFER_URL_EXPIRY.total_seconds())
            signer = Presigner(self.client, self.bucket(bucket), self.settings, method, expires_s)
            self._signers[method, bucket] = (time.monotonic(), signer)
        return signer(key)

    async def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        metrics.S3_REQUESTS.labels(bucket, "PUT").inc()
        await self._put(bucket, key, data, {"Content-Type": content_type})

    async def _put(
        self, bucket: str, key: str, body: bytes | BinaryIO, headers: dict[str, str], **request: Any
    ) -> None:
        """One presigned PUT of `body`; `headers` name its Content-Type, which spares SeaweedFS sniffing one (a
        third more CPU per object)."""
        url = self._transfer_url("PUT", bucket, key)
        async with self._session().put(url, data=body, headers=headers, **request) as response:
            if response.status >= 300:
                raise await _refused("PUT", self.bucket(bucket), key, response)

    @contextlib.asynccontextmanager
    async def _get(self, bucket: str, key: str) -> AsyncIterator[aiohttp.ClientResponse]:
        metrics.S3_REQUESTS.labels(bucket, "GET").inc()
        url = self._transfer_url("GET", bucket, key)
        async with self._session().get(url) as response:
            if response.status == 404:
                raise ObjectMissing(f"{key} is not in bucket {self.bucket(bucket)}")
            if response.status >= 300:
                raise await _refused("GET", self.bucket(bucket), key, response)
            yield response

    async def get_bytes(self, bucket: str, key: str) -> bytes:
        async with self._get(bucket, key) as response:
            return await response.read()

    async def get_with_headers(self, bucket: str, key: str) -> tuple[bytes, Mapping[str, str]]:
        """The object's bytes and the response's headers (its Content-Type, its `x-amz-meta-*`)."""
        async with self._get(bucket, key) as response:
            return await response.read(), response.headers

    async def put_file(self, bucket: str, key: str, path: Path, content_type: str) -> None:
        """Upload a file of any size, read from disk a chunk at a time so memory stays flat. Up to S3's limit for
        one request it is one presigned PUT: the SDK's upload in parts took 0.2–0.3 s for a 10 MB export
        (four requests, and the payload hashed in Python to sign it), half of what an export costs. Above
        the limit the SDK sends it in parts."""
        metrics.S3_REQUESTS.labels(bucket, "PUT").inc()
        size = (await asyncio.to_thread(path.stat)).st_size
        if size > SINGLE_PUT_MAX_BYTES:
            await asyncio.to_thread(
                self.client.fput_object, self.bucket(bucket), key, str(path), content_type=content_type
            )
            return
        with path.open("rb") as body:
            headers = {"Content-Type": content_type, "Content-Length": str(size)}
            await self._put(bucket, key, body, headers, timeout=FILE_TIMEOUT)

    async def get_file(self, bucket: str, key: str, path: Path) -> None:
        """Download an object of any size into `path`, a chunk at a time."""
        async with self._get(bucket, key) as response:
            with path.open("wb") as out:
                async for chunk in response.content.iter_chunked(1 << 20):
                    out.write(chunk)

    async def exists(self, bucket: str, key: str) -> bool:
        metrics.S3_REQUESTS.labels(bucket, "HEAD").inc()
        try:
            await asyncio.to_thread(self.client.stat_object, self.bucket(bucket), key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return False
            raise
        return True

    async def delete_many(self, bucket: str, keys: list[str]) -> None:
        """Delete `keys` in one request per thousand; missing keys are no error."""
        if not keys:
            return
        metrics.S3_REQUESTS.labels(bucket, "DELETE").inc(-(-len(keys) // 1000))
        await asyncio.to_thread(self._remove, bucket, keys)

    async def delete_prefix(self, bucket: str, prefix: str) -> None:
        """Delete every object whose key starts with `prefix`."""

        def keys() -> Iterator[str]:
            for listed in self.client.list_objects(self.bucket(bucket), prefix=prefix, recursive=True):
                yield listed.object_name

        await asyncio.to_thread(self._remove, bucket, keys())

    def _remove(self, bucket: str, keys: Iterable[str]) -> None:
        errors = list(self.client.remove_objects(self.bucket(bucket), (DeleteObject(key) for key in keys)))
        if errors:
            raise StorageError(
                f"deleting {self.bucket(bucket)}/{errors[0].name} failed: {errors[0].code}: {errors[0].message}"
            )

    def presigned_get(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        return self.public.presigned_get_object(self.bucket(bucket), key, expires=timedelta(seconds=expires_s))

    def presigned_put(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        return self.public.presigned_put_object(self.bucket(bucket), key, expires=timedelta(seconds=expires_s))
