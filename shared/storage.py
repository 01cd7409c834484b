"""S3 through the `minio` SDK: bucket bootstrap, bytes in and out, presigned URLs.

The SDK is synchronous, so every call runs in a worker thread. Presigned URLs are signed locally
by a second client pointed at the endpoint clients can reach (`s3_public_endpoint`); giving it the
region keeps signing free of network round trips.
"""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from shared.settings import Settings

# Logical bucket names; the real name is `<bucket_prefix><name>`.
BUCKETS = ("media", "thumbs", "staging", "releases", "models")


class Storage:
    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.bucket_prefix
        self.client = self._client(settings, settings.s3_endpoint)
        self.public = self._client(settings, settings.s3_public_endpoint or settings.s3_endpoint)

    @staticmethod
    def _client(settings: Settings, endpoint: str) -> Minio:
        return Minio(endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                     secure=settings.s3_secure, region=settings.s3_region)

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
            # Another replica (or a previous start) made it first; that is the goal.
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def ping(self) -> None:
        await asyncio.to_thread(self.client.list_buckets)

    async def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self.client.put_object, self.bucket(bucket), key, io.BytesIO(data), len(data),
                                content_type=content_type)

    async def get_bytes(self, bucket: str, key: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(self.bucket(bucket), key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(read)

    async def exists(self, bucket: str, key: str) -> bool:
        try:
            await asyncio.to_thread(self.client.stat_object, self.bucket(bucket), key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return False
            raise
        return True

    async def delete_many(self, bucket: str, keys: list[str]) -> None:
        """Delete `keys` in one request per thousand; missing keys are no error."""
        def delete() -> None:
            errors = list(self.client.remove_objects(self.bucket(bucket), (DeleteObject(key) for key in keys)))
            if errors:
                raise S3Error(errors[0].code, errors[0].message, errors[0].name, None, None, None)

        await asyncio.to_thread(delete)

    def presigned_get(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        return self.public.presigned_get_object(self.bucket(bucket), key, expires=timedelta(seconds=expires_s))

    def presigned_put(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        return self.public.presigned_put_object(self.bucket(bucket), key, expires=timedelta(seconds=expires_s))
