"""Bucket credentials (Loupe's stored buckets) and bucket imports.

Hasty keeps credentials per workspace and reads buckets by cloud roles; Loupe keeps them per project and reads
S3-compatible buckets with access keys. So a credential is created with Loupe's `project_id`, `access_key`,
`secret_key` (and `endpoint`, AWS's by default) beside Hasty's fields, and the workspace's credentials are
those of every project the caller manages.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
from aiohttp import web

from proto import ingest, subjects
from proto.common import Uuid
from services.gateway.dialects.hasty.common import Routes, ask, json, no_content, page_of, timestamp
from services.gateway.dialects.hasty.projects import own_workspace
from services.gateway.dialects.native import visible_projects
from services.gateway.dialects.requests import body, uuid_param
from shared.errors import LoupeError, invalid

CREDENTIALS = "/v1/buckets/{workspace_id}/credentials"
ONE = CREDENTIALS + "/{bucket_id}"
AWS = "s3.amazonaws.com"


class NewCredentials(msgspec.Struct, kw_only=True):
    description: ingest.StoredBucketName
    cloud_provider: str
    project_id: Uuid | None = None  # Loupe's: the project that keeps them
    bucket_s3: ingest.BucketName | None = None
    endpoint: ingest.Endpoint = AWS  # Loupe's, as are the three below
    secure: bool = True
    region: str = ""
    access_key: str = ""
    secret_key: str = ""


class BucketImport(msgspec.Struct, kw_only=True):
    dataset_id: uuid.UUID
    prefix: str = ""
    copy: bool = True  # Loupe always copies
    upload_id: str | None = None
    asset_type: str = "images"


def credentials_json(stored: ingest.StoredBucket) -> dict[str, Any]:
    return {
        "credential_id": stored.id,
        "description": stored.name,
        "cloud_provider": "s3",
        "created_at": timestamp(stored.created_at),
        "update_at": timestamp(stored.created_at),
        "project_id": stored.project_id,
        "bucket_s3": stored.bucket,
        "endpoint": stored.endpoint,
        "region": stored.region,
    }


async def managed_buckets(request: web.Request, project_id: str) -> list[ingest.StoredBucket]:
    """The project's stored buckets, or none where the caller is not its manager."""
    try:
        reply = await ask(
            request,
            subjects.LIST_STORED_BUCKETS,
            ingest.ListStoredBucketsRequest(project_id=project_id),
            project_id=project_id,
            role="manager",
        )
    except LoupeError as error:
        if error.code in ("forbidden", "not_found"):
            return []
        raise
    return reply.items


async def workspace_buckets(request: web.Request) -> list[ingest.StoredBucket]:
    await own_workspace(request, uuid_param(request, "workspace_id"), "workspace_id")
    projects = await visible_projects(request)
    found = await asyncio.gather(*(managed_buckets(request, project.id) for project in projects))
    return sorted((stored for each in found for stored in each), key=lambda stored: stored.created_at)


async def named_bucket(request: web.Request) -> ingest.StoredBucket:
    bucket_id = uuid_param(request, "bucket_id")
    for stored in await workspace_buckets(request):
        if stored.id == bucket_id:
            return stored
    raise LoupeError(
        "not_found",
        f"bucket credentials {bucket_id} do not exist, or you manage none of the projects that keep them",
        path="bucket_id",
    )


async def list_credentials(request: web.Request) -> web.Response:
    return page_of(request, [credentials_json(stored) for stored in await workspace_buckets(request)])


async def get_credentials(request: web.Request) -> web.Response:
    return json(credentials_json(await named_bucket(request)))


async def create_credentials(request: web.Request) -> web.Response:
    await own_workspace(request, uuid_param(request, "workspace_id"), "workspace_id")
    new = await body(request, NewCredentials)
    if new.cloud_provider != "s3":
        raise invalid(
            f"Loupe reads buckets through the S3 API only, not {new.cloud_provider!r}: use cloud_provider s3 with "
            "the `endpoint` of an S3-compatible service (Google Cloud Storage's is storage.googleapis.com, with "
            "HMAC keys)",
            path="cloud_provider",
        )
    if not (new.access_key and new.secret_key):
        raise invalid(
            "Loupe cannot assume a cloud role: give `access_key` and `secret_key` of a key that may list and read "
            "the bucket",
            path="access_key",
        )
    if new.project_id is None:
        raise invalid(
            "Loupe keeps bucket credentials per project: add the `project_id` that keeps them", path="project_id"
        )
    if not new.bucket_s3:
        raise invalid("name the bucket in `bucket_s3`", path="bucket_s3")
    stored = await ask(
        request,
        subjects.CREATE_STORED_BUCKET,
        ingest.CreateStoredBucketRequest(
            project_id=new.project_id,
            bucket=ingest.NewStoredBucket(
                name=new.description,
                bucket=new.bucket_s3,
                endpoint=new.endpoint,
                secure=new.secure,
                region=new.region,
                access_key=new.access_key,
                secret_key=new.secret_key,
            ),
        ),
        project_id=new.project_id,
        role="manager",
    )
    return json(credentials_json(stored), status=201)


async def delete_credentials(request: web.Request) -> web.Response:
    stored = await named_bucket(request)
    await ask(
        request,
        subjects.DELETE_STORED_BUCKET,
        ingest.StoredBucketRef(project_id=stored.project_id, id=stored.id),
        project_id=stored.project_id,
        role="manager",
    )
    return no_content()


async def import_bucket(request: web.Request) -> web.Response:
    """Every image under `prefix` into a dataset of the project that keeps the credentials."""
    stored = await named_bucket(request)
    job = await body(request, BucketImport)
    if job.asset_type != "images":
        raise invalid("Loupe has no video projects: import `images`", path="asset_type")
    if job.upload_id:
        raise invalid("a list of objects to import is not supported: give the `prefix` to import", path="upload_id")
    run: ingest.Run = await ask(
        request,
        subjects.IMPORT_BUCKET,
        ingest.ImportBucketRequest(
            project_id=stored.project_id,
            dataset_id=str(job.dataset_id),
            source=ingest.ImportBucket(bucket_id=stored.id, prefix=job.prefix),
        ),
        project_id=stored.project_id,
        role="manager",
    )
    return json({"import_id": run.id, "project_id": run.project_id, "dataset_id": run.dataset_id, "status": run.state})


ROUTES: Routes = [
    ("GET", CREDENTIALS, list_credentials),
    ("POST", CREDENTIALS, create_credentials),
    ("GET", ONE, get_credentials),
    ("DELETE", ONE, delete_credentials),
    ("POST", ONE + "/import", import_bucket),
]
