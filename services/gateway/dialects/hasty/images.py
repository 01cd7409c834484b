"""Signed uploads, images (Loupe's samples) with their statuses, and image tags (the image-level tag
classes of the sample's ground-truth label)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec
from aiohttp import web

from proto import annotation, ingest, samples, schema, search, subjects
from proto.catalog import Role
from services.gateway.dialects.hasty.common import (
    GROUND_TRUTH,
    IMAGE_STATUSES,
    MAX_PAGE,
    PROJECT,
    Routes,
    ask,
    image_status,
    json,
    no_content,
    page,
    page_of,
    paging,
    query_int,
    query_list,
    timestamp,
)
from services.gateway.dialects.hasty.projects import all_datasets
from services.gateway.dialects.hasty.qa import images_with_findings
from services.gateway.dialects.native import catalogued
from services.gateway.dialects.requests import body, project_id, uuid_param
from shared.errors import LoupeError, invalid

IMAGE = PROJECT + "/images/{image_id}"
MAX_SLOTS = 50
RUN_WAIT_S = 120.0  # an image arrives in a second or two; a slow URL may take longer
FINISHED_RUNS = ("SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED")


class NewImage(msgspec.Struct, kw_only=True):
    dataset_id: uuid.UUID
    filename: str | None = None
    upload_id: uuid.UUID | None = None
    url: str | None = None
    copy_original: bool = True  # Loupe always keeps a copy
    bucket_id: uuid.UUID | None = None
    external_id: str | None = None


class ImageChanges(msgspec.Struct, kw_only=True):
    filename: str | None = None
    dataset_id: uuid.UUID | None = None


class StatusBody(msgspec.Struct, kw_only=True):
    status: str


class NewTag(msgspec.Struct, kw_only=True):
    tag_class_id: uuid.UUID


class TagRef(msgspec.Struct, kw_only=True):
    tag_id: uuid.UUID | None = None
    tag_class_id: uuid.UUID | None = None


# -- the image as Hasty shows it ----------------------------------------------------------------------


async def image_json(request: web.Request, sample: samples.Sample, dataset_names: dict[str, str]) -> dict[str, Any]:
    urls: samples.SampleUrls = await ask(
        request, subjects.SIGN_MEDIA, samples.SampleRef(project_id=sample.project_id, sample_id=sample.id)
    )
    return {
        "id": sample.id,
        "project_id": sample.project_id,
        "dataset_id": sample.dataset_id,
        "dataset_name": dataset_names.get(sample.dataset_id, ""),
        "name": sample.name,
        "width": sample.width,
        "height": sample.height,
        "format": sample.format,
        "mode": None,
        "status": IMAGE_STATUSES[sample.status],
        "status_id": None,
        "health_status": "OK",
        "is_locked": False,
        "public_url": urls.original_url,
        "url": urls.original_url,
        "thumbnail_url": urls.thumbnail_url,
        "uploaded_on": timestamp(sample.created_at),
        "update_date": timestamp(sample.updated_at),
        "updated_by": sample.labeler_id,
        "external_id": sample.external_id,
        "queue_ids": [],
        "exif": {},
    }


async def dataset_names(request: web.Request, pid: str) -> dict[str, str]:
    return {dataset.id: dataset.name for dataset in await all_datasets(request, pid)}


async def get_sample(request: web.Request, pid: str, sample_id: str, role: Role = "viewer") -> samples.Sample:
    return await ask(
        request, subjects.GET_SAMPLE, samples.SampleRef(project_id=pid, sample_id=sample_id), project_id=pid, role=role
    )


async def one_image(request: web.Request, pid: str, sample_id: str) -> web.Response:
    sample = await get_sample(request, pid, sample_id)
    return json(await image_json(request, sample, await dataset_names(request, pid)))


def image_ref(request: web.Request) -> tuple[str, str]:
    return project_id(request), uuid_param(request, "image_id")


# -- uploads ------------------------------------------------------------------------------------------


async def create_uploads(request: web.Request) -> web.Response:
    """Signed URLs to PUT images to. Loupe's upload slots belong to a dataset, Hasty's don't: each is a
    one-slot upload into the project's first dataset, whose run id is the upload id; creating the image
    moves it into the dataset it names."""
    pid = project_id(request)
    count = query_int(request, "count", 1)
    if not 1 <= count <= MAX_SLOTS:
        raise invalid(f"`count` must be a whole number from 1 to {MAX_SLOTS}", path="count")
    datasets = await all_datasets(request, pid)
    if not datasets:
        raise invalid("the project has no dataset yet: create one before uploading images", path="project_id")
    uploads = await asyncio.gather(
        *(
            ask(
                request,
                subjects.CREATE_UPLOAD,
                ingest.CreateUploadRequest(
                    project_id=pid, dataset_id=datasets[0].id, upload=ingest.CreateUpload(count=1)
                ),
                project_id=pid,
                role="manager",
            )
            for _ in range(count)
        )
    )
    items = [{"id": upload.run_id, "url": upload.slots[0].url} for upload in uploads]
    return json({"items": items, "meta": {"total": len(items)}})


async def finished_item(request: web.Request, pid: str, run: ingest.Run, path: str) -> str:
    """The sample the run's single image became, once the run finished and the catalog made it."""
    deadline = time.monotonic() + RUN_WAIT_S
    while run.state not in FINISHED_RUNS:
        await pause(deadline, f"import run {run.id} is still {run.state}", path)
        run = await ask(request, subjects.GET_RUN, ingest.RunRef(project_id=pid, id=run.id))
    items: ingest.RunItemPage = await ask(
        request,
        subjects.LIST_RUN_ITEMS,
        ingest.ListRunItemsRequest(project_id=pid, id=run.id, query=ingest.ListRunItems(limit=1)),
    )
    item = items.items[0]
    if item.sample_id is None:
        raise invalid(f"the image could not be stored: {item.error or item.state}", path=path)
    await catalogued(request, pid, [item.sample_id], deadline - time.monotonic())
    return item.sample_id


async def pause(deadline: float, still: str, path: str) -> None:
    if time.monotonic() > deadline:
        raise LoupeError("unavailable", f"{still} after {RUN_WAIT_S:.0f} s; try again later", path=path)
    await asyncio.sleep(0.1)


async def from_upload(request: web.Request, pid: str, new: NewImage) -> str:
    run_id = str(new.upload_id)
    run = await ask(
        request,
        subjects.COMPLETE_UPLOAD,
        ingest.CompleteUploadRequest(project_id=pid, run_id=run_id, complete=ingest.CompleteUpload()),
        project_id=pid,
        role="manager",
    )
    sample_id = await finished_item(request, pid, run, "upload_id")
    if run.dataset_id != str(new.dataset_id):
        await ask(
            request,
            subjects.MOVE_SAMPLES,
            samples.MoveSamplesRequest(
                project_id=pid,
                body=samples.MoveSamples(ids=[uuid.UUID(sample_id)], dataset_id=new.dataset_id),
            ),
        )
    return sample_id


async def from_url(request: web.Request, pid: str, new: NewImage) -> str:
    assert new.url is not None
    run = await ask(
        request,
        subjects.IMPORT_URLS,
        ingest.ImportUrlsRequest(
            project_id=pid,
            dataset_id=str(new.dataset_id),
            urls=ingest.ImportUrls(items=[ingest.UrlItem(url=new.url, name=new.filename, external_id=new.external_id)]),
        ),
        project_id=pid,
        role="manager",
    )
    return await finished_item(request, pid, run, "url")


async def from_bucket(request: web.Request, pid: str, new: NewImage) -> str:
    """The object at `url` (its key) of the project's stored bucket `bucket_id`."""
    key = (new.url or "").lstrip("/")
    if not key:
        raise invalid("give the image's path in the bucket as `url`", path="url")
    run = await ask(
        request,
        subjects.IMPORT_BUCKET,
        ingest.ImportBucketRequest(
            project_id=pid,
            dataset_id=str(new.dataset_id),
            source=ingest.ImportBucket(bucket_id=str(new.bucket_id), keys=[key]),
        ),
        project_id=pid,
        role="manager",
    )
    return await finished_item(request, pid, run, "url")


async def create_image(request: web.Request) -> web.Response:
    pid = project_id(request)
    new = await body(request, NewImage)
    await ask(
        request,
        subjects.GET_DATASET,
        samples.DatasetRef(project_id=pid, dataset_id=str(new.dataset_id)),
        project_id=pid,
        role="manager",
    )
    if new.upload_id is not None:
        sample_id = await from_upload(request, pid, new)
    elif new.bucket_id is not None:
        sample_id = await from_bucket(request, pid, new)
    elif new.url:
        sample_id = await from_url(request, pid, new)
    else:
        raise invalid("give `upload_id` (of GET .../uploads) or `url` of the image", path="upload_id")
    changes = samples.SampleChanges(
        name=new.filename or msgspec.UNSET, external_id=new.external_id if new.external_id else msgspec.UNSET
    )
    if changes != samples.SampleChanges():
        await ask(
            request,
            subjects.UPDATE_SAMPLE,
            samples.UpdateSampleRequest(project_id=pid, sample_id=sample_id, changes=changes),
        )
    response = await one_image(request, pid, sample_id)
    response.set_status(201)
    return response


# -- images -------------------------------------------------------------------------------------------


async def list_images(request: web.Request) -> web.Response:
    pid = project_id(request)
    offset, limit = paging(request)
    statuses = [image_status(value, "image_status") for value in query_list(request, "image_status")]
    datasets = query_list(request, "dataset_id")
    with_findings = None
    if run_ids := query_list(request, "ef_run_ids"):
        with_findings = await images_with_findings(request, pid, run_ids)
        if not with_findings:
            return page([], 0, offset, limit)
    query = search.SearchQuery(
        dataset_ids=datasets or None,
        statuses=statuses or None,
        name_contains=request.query.get("image_name") or None,
        sample_ids=with_findings,
        sort="created_at",
        limit=max(1, min(limit, MAX_PAGE)),
        offset=offset,
        total="exact",
    )
    found: search.SamplePage = await ask(
        request,
        subjects.SEARCH_SAMPLES,
        search.SearchSamples(project_id=pid, query=query),
        project_id=pid,
        role="viewer",
    )
    names = await dataset_names(request, pid)
    items = [] if limit == 0 else await asyncio.gather(*(image_json(request, s, names) for s in found.items))
    return page(items, found.total or 0, offset, limit)


async def get_image(request: web.Request) -> web.Response:
    return await one_image(request, *image_ref(request))


async def update_image(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    changes = await body(request, ImageChanges)
    await get_sample(request, pid, sample_id, role="manager")
    if changes.filename:
        await ask(
            request,
            subjects.UPDATE_SAMPLE,
            samples.UpdateSampleRequest(
                project_id=pid, sample_id=sample_id, changes=samples.SampleChanges(name=changes.filename)
            ),
        )
    if changes.dataset_id is not None:
        await ask(
            request,
            subjects.MOVE_SAMPLES,
            samples.MoveSamplesRequest(
                project_id=pid, body=samples.MoveSamples(ids=[uuid.UUID(sample_id)], dataset_id=changes.dataset_id)
            ),
        )
    return await one_image(request, pid, sample_id)


async def delete_image(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    await ask(
        request,
        subjects.DELETE_SAMPLE,
        samples.SampleRef(project_id=pid, sample_id=sample_id),
        project_id=pid,
        role="manager",
    )
    return no_content()


async def set_status(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    wanted = image_status((await body(request, StatusBody)).status, "status")
    sample = await ask(
        request,
        subjects.UPDATE_SAMPLE,
        samples.UpdateSampleRequest(project_id=pid, sample_id=sample_id, changes=samples.SampleChanges(status=wanted)),
        project_id=pid,
        role="labeler",
    )
    return json({"status_id": None, "status": IMAGE_STATUSES[sample.status]})


# -- image tags ---------------------------------------------------------------------------------------


async def ground_truth(request: web.Request, pid: str, sample_id: str) -> annotation.Label:
    return await ask(
        request,
        subjects.GET_LABEL,
        annotation.LabelRef(project_id=pid, sample_id=sample_id, labelset=GROUND_TRUTH),
        project_id=pid,
        role="viewer",
    )


async def tag_names(request: web.Request, pid: str) -> dict[str, str]:
    tags: schema.TagClassList = await ask(
        request, subjects.TAG_CLASS.list, schema.ListSchemaItems(project_id=pid, include_archived=True)
    )
    return {tag.id: tag.name for tag in tags.items}


async def tags_json(request: web.Request, pid: str, sample_id: str, tag_class_ids: list[str]) -> list[dict[str, Any]]:
    names = await tag_names(request, pid)
    # An image has a tag class once, so the tag class id is the tag's id too.
    return [
        {"id": tag_id, "tag_class_id": tag_id, "tag_class_name": names.get(tag_id), "image_id": sample_id}
        for tag_id in tag_class_ids
    ]


async def set_tags(request: web.Request, pid: str, sample_id: str, tag_class_ids: list[str]) -> annotation.Label:
    return await ask(
        request,
        subjects.UPDATE_LABEL,
        annotation.UpdateLabelRequest(
            project_id=pid,
            sample_id=sample_id,
            labelset=GROUND_TRUTH,
            changes=annotation.LabelChanges(tag_class_ids=[uuid.UUID(t) for t in tag_class_ids]),
        ),
        project_id=pid,
        role="labeler",
    )


async def list_tags(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    label = await ground_truth(request, pid, sample_id)
    return page_of(request, await tags_json(request, pid, sample_id, label.tag_class_ids))


async def add_tags(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    new = [str(tag.tag_class_id) for tag in await body(request, list[NewTag])]
    current = (await ground_truth(request, pid, sample_id)).tag_class_ids
    await set_tags(request, pid, sample_id, [*current, *(t for t in dict.fromkeys(new) if t not in current)])
    return json(await tags_json(request, pid, sample_id, list(dict.fromkeys(new))), status=201)


async def delete_tags(request: web.Request) -> web.Response:
    pid, sample_id = image_ref(request)
    refs = await body(request, list[TagRef])
    gone = {str(ref.tag_id or ref.tag_class_id) for ref in refs if ref.tag_id or ref.tag_class_id}
    current = (await ground_truth(request, pid, sample_id)).tag_class_ids
    await set_tags(request, pid, sample_id, [t for t in current if t not in gone])
    return no_content()


ROUTES: Routes = [
    ("GET", PROJECT + "/uploads", create_uploads),
    ("GET", PROJECT + "/images", list_images),
    ("POST", PROJECT + "/images", create_image),
    ("GET", IMAGE, get_image),
    ("PATCH", IMAGE, update_image),
    ("DELETE", IMAGE, delete_image),
    ("PUT", IMAGE + "/status", set_status),
    ("GET", IMAGE + "/tags", list_tags),
    ("POST", IMAGE + "/tags", add_tags),
    ("DELETE", IMAGE + "/tags", delete_tags),
]
