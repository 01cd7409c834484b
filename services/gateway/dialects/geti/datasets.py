"""Geti Tune: the project's dataset. Its items are every sample of the Loupe project, whatever native dataset
holds them; images uploaded here go into the project's native dataset named `dataset` (made on the first
upload). An item's subset comes from the name of its native dataset, as native training splits by it."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import uuid
from typing import Annotated, Any

import msgspec
from aiohttp import web

from proto import ingest, samples, search, subjects
from proto.common import Redirect, Uuid
from services.gateway.dialects.geti.annotating import item_annotations
from services.gateway.dialects.geti.common import (
    ITEM,
    PROJECT,
    Route,
    answer,
    authorized,
    body,
    no_content,
    paginated,
    query_bool,
    query_int,
    timestamp,
)
from services.gateway.dialects.geti.projects import get_project
from services.gateway.dialects.geti.task import project_task
from services.gateway.dialects.native import ask, ask_all, catalogued
from services.gateway.dialects.requests import uuid_param
from services.gateway.uploads import HTTP_CLIENT, declared, put_slot, run_finished
from shared.errors import LoupeError, invalid
from shared.service import RUNTIME

DATASET_NAME = "dataset"
DEFAULT_LIMIT, MAX_LIMIT = 10, 100  # Geti's page sizes of dataset items
CATALOGUED_WAIT_S = 10.0  # ingest hands a stored image to the catalog by an event: a moment later it is a sample
SUBSETS = {
    "train": "training",
    "training": "training",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "test": "testing",
    "testing": "testing",
}


# -- items as Geti shows them -------------------------------------------------------------------------


async def dataset_names(request: web.Request, pid: str) -> dict[str, str]:
    datasets: list[samples.Dataset] = await ask_all(
        request,
        subjects.LIST_DATASETS,
        lambda cursor: samples.ListDatasetsRequest(project_id=pid, page=samples.ListDatasets(limit=500, cursor=cursor)),
    )
    return {dataset.id: dataset.name for dataset in datasets}


def subset(dataset_name: str) -> str:
    return SUBSETS.get(dataset_name.lower(), "unassigned")


def item_json(sample: samples.Sample, datasets: dict[str, str]) -> dict[str, Any]:
    return {
        "id": sample.id,
        "name": sample.name,
        "format": sample.format,
        "width": sample.width,
        "height": sample.height,
        "size": sample.size_bytes,
        "source_id": None,
        "subset": subset(datasets.get(sample.dataset_id, "")),
        "tags": sample.tags,
        "created_at": timestamp(sample.created_at),
    }


async def items_json(request: web.Request, pid: str, found: list[samples.Sample]) -> list[dict[str, Any]]:
    """The items, each with its annotation when the query asks `with_annotations=true`."""
    datasets = await dataset_names(request, pid)
    shown = [item_json(sample, datasets) for sample in found]
    if query_bool(request, "with_annotations"):
        task = await project_task(request, await get_project(request, pid))
        annotations = await item_annotations(request, pid, task, [sample.id for sample in found])
        for item in shown:
            item["annotation"] = annotations[item["id"]]
    return shown


def page_query(request: web.Request) -> tuple[int, int]:
    return query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT), query_int(request, "offset", 0, 0, 100_000)


async def list_items(request: web.Request) -> web.Response:
    """Newest first, as Geti lists them."""
    pid = await authorized(request, "viewer")
    limit, offset = page_query(request)
    found: search.SamplePage = await ask(
        request,
        subjects.SEARCH_SAMPLES,
        search.SearchSamples(
            project_id=pid, query=search.SearchQuery(sort="-created_at", limit=limit, offset=offset, total="exact")
        ),
    )
    return paginated(await items_json(request, pid, found.items), limit, offset, found.total or 0)


async def get_sample(request: web.Request, pid: str, sample_id: str) -> samples.Sample:
    return await ask(request, subjects.GET_SAMPLE, samples.SampleRef(project_id=pid, sample_id=sample_id))


async def get_item(request: web.Request) -> web.Response:
    pid = await authorized(request, "viewer")
    sample = await get_sample(request, pid, uuid_param(request, "item_id"))
    return answer((await items_json(request, pid, [sample]))[0])


async def delete_item(request: web.Request) -> web.Response:
    pid = await authorized(request, "manager")
    await ask(
        request, subjects.DELETE_SAMPLE, samples.SampleRef(project_id=pid, sample_id=uuid_param(request, "item_id"))
    )
    return no_content()


# -- image data -------------------------------------------------------------------------------------


def in_object_storage(request: web.Request, url: str) -> bool:
    settings = request.config_dict[RUNTIME].settings
    endpoint = settings.s3_public_endpoint or settings.s3_endpoint
    return url.startswith(f"{'https' if settings.s3_secure else 'http'}://{endpoint}/")


async def media(request: web.Request, pid: str, sample_id: str, variant: samples.MediaVariant) -> web.Response:
    """The image's bytes, passed through from object storage: Geti's clients read them from this URL with
    their API key, which a presigned URL elsewhere would not take. A sample whose image is kept outside Loupe
    (an external `media_url`) is a redirect to it: the gateway fetches nothing from addresses users name."""
    where: Redirect = await ask(
        request, subjects.LOCATE_MEDIA, samples.SampleMediaRef(project_id=pid, sample_id=sample_id, variant=variant)
    )
    if not in_object_storage(request, where.url):
        raise web.HTTPFound(where.url)
    async with request.config_dict[HTTP_CLIENT].get(where.url) as response:
        if response.status == 404 and variant == "thumbnail":
            raise LoupeError("not_found", "the thumbnail is not made yet; it is, seconds after the upload")
        if response.status != 200:
            raise LoupeError("unavailable", f"object storage answered {response.status} for the image; retry")
        data = await response.read()
        content_type = response.headers.get("Content-Type", "application/octet-stream")
    return web.Response(body=data, content_type=content_type.split(";")[0])


async def item_binary(request: web.Request) -> web.Response:
    return await media(request, await authorized(request, "viewer"), uuid_param(request, "item_id"), "original")


async def item_thumbnail(request: web.Request) -> web.Response:
    return await media(request, await authorized(request, "viewer"), uuid_param(request, "item_id"), "thumbnail")


# -- uploads ----------------------------------------------------------------------------------------


async def sent_image(request: web.Request) -> tuple[str, bytes]:
    """The uploaded image and its file name: the file part of a multipart form (`file`, as Geti's web client
    and `requests`' `files=` send it), or the raw body with the name in `?name=`."""
    data = await request.read()
    if not data:
        raise invalid(
            "send the image: a multipart form with a `file` part, or the image bytes as the body", path="file"
        )
    if request.content_type == "multipart/form-data":
        # The gateway reads every body before the handler runs, so the form is parsed from the bytes in hand.
        header = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + data)
        for part in form.iter_parts():
            payload = part.get_payload(decode=True)
            if (filename := part.get_filename()) and isinstance(payload, bytes) and payload:
                return filename, payload
        raise invalid("the form has no file part (a part with a file name and bytes)", path="file")
    return request.query.get("name") or f"image-{uuid.uuid4().hex[:8]}", data


async def named_dataset(request: web.Request, pid: str) -> str | None:
    names = await dataset_names(request, pid)
    return next((dataset_id for dataset_id, name in names.items() if name.lower() == DATASET_NAME), None)


async def upload_dataset(request: web.Request, pid: str) -> str:
    """The id of the project's native dataset that Geti uploads go to, made on first use."""
    if found := await named_dataset(request, pid):
        return found
    try:
        made: samples.Dataset = await ask(
            request,
            subjects.CREATE_DATASET,
            samples.CreateDatasetRequest(project_id=pid, dataset=samples.CreateDataset(name=DATASET_NAME)),
        )
        return made.id
    except LoupeError as error:
        # A concurrent upload made it first.
        if error.code == "conflict" and (found := await named_dataset(request, pid)):
            return found
        raise


async def stored(request: web.Request, pid: str, dataset_id: str, name: str, data: bytes) -> str:
    """The sample an uploaded image became: the presigned-upload flow played on the client's behalf."""
    runtime = request.config_dict[RUNTIME]
    upload: ingest.Upload = await ask(
        request,
        subjects.CREATE_UPLOAD,
        ingest.CreateUploadRequest(
            project_id=pid, dataset_id=dataset_id, upload=ingest.CreateUpload(files=[declared(name, data)])
        ),
    )
    await put_slot(request.config_dict[HTTP_CLIENT], upload.slots[0], data)
    async with run_finished(runtime.nats, upload.run_id) as finished:
        await ask(
            request,
            subjects.COMPLETE_UPLOAD,
            ingest.CompleteUploadRequest(project_id=pid, run_id=upload.run_id, complete=ingest.CompleteUpload()),
        )
        try:
            await asyncio.wait_for(finished, runtime.settings.request_timeout_s)
        except TimeoutError:
            raise LoupeError("unavailable", "the image is still being processed; list the items in a moment") from None
    items: ingest.RunItemPage = await ask(
        request,
        subjects.LIST_RUN_ITEMS,
        ingest.ListRunItemsRequest(project_id=pid, id=upload.run_id, query=ingest.ListRunItems(limit=1)),
    )
    item = items.items[0]
    if item.sample_id is None:
        raise invalid(f"the image was not taken: {item.error or item.state}", path="file")
    return item.sample_id


async def upload_item(request: web.Request) -> web.Response:
    pid = await authorized(request, "manager")
    name, data = await sent_image(request)
    sample_id = await stored(request, pid, await upload_dataset(request, pid), name, data)
    (sample,) = await catalogued(request, pid, [sample_id], CATALOGUED_WAIT_S)
    return answer(item_json(sample, await dataset_names(request, pid)), 201)


# -- tags -------------------------------------------------------------------------------------------


ItemIds = Annotated[list[Uuid], msgspec.Meta(min_length=1, max_length=1000)]


class TagChanges(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    item_ids: ItemIds
    tags_to_add: list[samples.Tag] = []
    tags_to_remove: list[samples.Tag] = []


async def item_tags(request: web.Request) -> web.Response:
    sample = await get_sample(request, await authorized(request, "viewer"), uuid_param(request, "item_id"))
    return answer(sample.tags)


async def all_samples(request: web.Request, pid: str, query: search.SampleFilter) -> list[samples.Sample]:
    fields = msgspec.structs.asdict(query)
    return await ask_all(
        request,
        subjects.SEARCH_SAMPLES,
        lambda cursor: search.SearchSamples(
            project_id=pid, query=search.SearchQuery(**fields, sort="name", limit=500, cursor=cursor)
        ),
    )


async def dataset_tags(request: web.Request) -> web.Response:
    """Every tag of the dataset's items, with how many items have it, most used first."""
    counts: dict[str, int] = {}
    for sample in await all_samples(request, await authorized(request, "viewer"), search.SampleFilter()):
        for tag in sample.tags:
            counts[tag] = counts.get(tag, 0) + 1
    ordered = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    return answer([{"name": tag, "count": count} for tag, count in ordered])


async def change_tags(request: web.Request) -> web.Response:
    changes: TagChanges = await body(request, TagChanges)
    pid = await authorized(request, "manager")
    ids = [str(uuid.UUID(item_id)) for item_id in changes.item_ids]
    found = {sample.id: sample for sample in await all_samples(request, pid, search.SampleFilter(sample_ids=ids))}
    for index, item_id in enumerate(ids):
        if item_id not in found:
            raise LoupeError(
                "not_found", f"item {item_id} is not in this project's dataset", path=f"$.item_ids[{index}]"
            )
    updates = []
    for item_id in ids:
        tags = [tag for tag in found[item_id].tags if tag not in changes.tags_to_remove]
        tags += [tag for tag in dict.fromkeys(changes.tags_to_add) if tag not in tags]
        updates.append(samples.SampleUpdate(id=uuid.UUID(item_id), tags=tags))
    await ask(
        request,
        subjects.UPDATE_SAMPLES,
        samples.UpdateSamplesRequest(project_id=pid, body=samples.UpdateSamples(items=updates)),
    )
    return no_content()


ROUTES: list[Route] = [
    ("GET", PROJECT + "/dataset/items", list_items),
    ("POST", PROJECT + "/dataset/items", upload_item),
    # Before the item routes: `tags` is not an item id.
    ("PATCH", PROJECT + "/dataset/items/tags", change_tags),
    ("GET", PROJECT + "/dataset/tags", dataset_tags),
    ("GET", ITEM, get_item),
    ("DELETE", ITEM, delete_item),
    ("GET", ITEM + "/binary", item_binary),
    ("GET", ITEM + "/thumbnail", item_thumbnail),
    ("GET", ITEM + "/tags", item_tags),
]
