"""Segments samples and labels, and the asset upload their images come through.

Every image goes through ingest, as any other upload does (validation, dedupe by content, thumbnails):
an asset the SDK uploaded (`File.url` of `POST /assets/`) through an upload session, any other URL
through ingest's URL import (with its SSRF rules). A sample added to a dataset goes into the project's
oldest Loupe dataset (`default`, made on first use): Segments has no splits.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web

from proto import subjects
from proto.annotation import (
    GetLabels,
    GetLabelsRequest,
    Label,
    LabelChanges,
    LabelRef,
    LabelStatus,
    PutLabelRequest,
    UpdateLabelRequest,
)
from proto.catalog import Project, ProjectRef
from proto.ingest import (
    CompleteUpload,
    CompleteUploadRequest,
    CreateUpload,
    CreateUploadRequest,
    ImportUrls,
    ImportUrlsRequest,
    ListRunItems,
    ListRunItemsRequest,
    Run,
    RunItem,
    RunRef,
    UploadFile,
    UploadSlot,
    UrlItem,
)
from proto.samples import (
    CreateDataset,
    CreateDatasetRequest,
    DeleteSamples,
    DeleteSamplesRequest,
    ListDatasets,
    ListDatasetsRequest,
    Sample,
    SampleChanges,
    SampleRef,
    UpdateSampleRequest,
)
from proto.schema import GetSchema
from proto.search import LabelFilter, SearchQuery, SearchSamples
from services.gateway.dialects.native import ask, catalogued
from services.gateway.dialects.segments import files, policy
from services.gateway.dialects.segments.common import (
    PAGE,
    body_of,
    dataset,
    iso,
    locate_sample,
    me,
    query_int,
    reply,
)
from services.gateway.dialects.segments.labels import Bitmap, InLabel, Schema, label_attributes, status_steps, to_loupe
from services.gateway.uploads import HTTP_CLIENT, form_step, put_slot, run_finished
from shared import object_keys
from shared.errors import LoupeError
from shared.service import RUNTIME

DEFAULT_DATASET = "default"
ASSET_PREFIX = "segments-assets"  # keys in the staging bucket: segments-assets/<org id>/<asset uuid>
RUN_WAIT_S = 60.0
MEDIA_URL_EXPIRES_S = 7 * 24 * 3600
FORM_OVERHEAD = 64 * 1024  # the policy fields around the file
SORTS = {"name": "name", "created_at": "created_at", "priority": "priority", "gt_label__updated_at": "updated_at"}


class ImageUrl(msgspec.Struct, kw_only=True):
    url: str


class SampleAttributes(msgspec.Struct, kw_only=True):
    image: ImageUrl


class SampleBody(msgspec.Struct, kw_only=True):
    name: str
    attributes: SampleAttributes
    metadata: dict[str, Any] = {}
    priority: float = 0.0


class SampleUpdate(msgspec.Struct, kw_only=True):
    name: str | None = None
    metadata: dict[str, Any] | None = None
    priority: float | None = None
    attributes: dict[str, Any] | None = None


class DeleteBody(msgspec.Struct, kw_only=True):
    uuids: list[str]


# -- how a sample looks -----------------------------------------------------------------------------


def image_url(request: web.Request, sample: Sample) -> str | None:
    """A URL that loads the image without an API key (presigned), as Segments' own are."""
    if sample.content_hash is None:
        return sample.media_url
    storage = request.config_dict[RUNTIME].storage
    presigned = storage.presigned_get("media", object_keys.original(sample.content_hash), MEDIA_URL_EXPIRES_S)
    return files.image_link(request, presigned, sample.name)


def sample_json(request: web.Request, sample: Sample, owner: str, project_name: str) -> dict[str, Any]:
    return {
        "uuid": sample.id,
        "name": sample.name,
        "data_type": "IMAGE",
        "attributes": {"image": {"url": image_url(request, sample)}},
        "metadata": sample.metadata,
        "priority": sample.priority,
        "created_at": iso(sample.created_at),
        "created_by": owner,
        "assigned_labeler": sample.labeler_id,
        "assigned_reviewer": sample.reviewer_id,
        "readme": "",
        "dataset_full_name": f"{owner}/{project_name}",
    }


def label_json(request: web.Request, label: Label, schema: Schema, project: Project) -> dict[str, Any]:
    bitmap = None
    if project.task_type == "segmentation-bitmap":
        bitmap = files.bitmap_link(request, project.org_id, label)
    return {
        "sample_uuid": label.sample_id,
        "label_type": project.task_type,
        "label_status": label.status,
        "labelset": label.labelset,
        "attributes": label_attributes(label, schema, bitmap),
        "score": label.score,
        "created_at": iso(label.created_at),
        "created_by": label.created_by or "",
        "updated_at": iso(label.updated_at),
        "updated_by": label.updated_by,
    }


def summary_json(label: Label) -> dict[str, Any]:
    return {
        "label_status": label.status,
        "score": label.score,
        "updated_at": iso(label.updated_at),
        "created_by": label.created_by,
    }


# -- samples --------------------------------------------------------------------------------------


async def default_dataset(request: web.Request, project: Project) -> str:
    page = await ask(
        request, subjects.LIST_DATASETS, ListDatasetsRequest(project_id=project.id, page=ListDatasets(limit=1))
    )
    if page.items:
        return page.items[0].id
    made = await ask(
        request,
        subjects.CREATE_DATASET,
        CreateDatasetRequest(project_id=project.id, dataset=CreateDataset(name=DEFAULT_DATASET)),
        project_id=project.id,
        role="manager",
    )
    return made.id


async def list_samples(request: web.Request) -> web.Response:
    caller, project = await dataset(request)
    per_page = query_int(request, "per_page", 1000, high=10_000)
    offset = (query_int(request, "page", 1) - 1) * per_page
    labelset = request.query.get("labelset")
    statuses = [s for s in request.query.get("label_status", "").split(",") if s]
    sort = request.query.get("sort", "name")
    order = SORTS.get(sort.lstrip("-"))
    if order is None:
        raise LoupeError("invalid", f"sort by one of {', '.join(SORTS)}", path="query.sort")
    query: dict[str, Any] = {"sort": ("-" if sort.startswith("-") else "") + order}
    if name := request.query.get("name__contains"):
        query["name_contains"] = name
    if statuses:
        query["labels"] = msgspec.convert({"labelset": labelset or "ground-truth", "status": statuses}, LabelFilter)
    samples: list[Sample] = []
    while len(samples) < per_page:
        limit = min(PAGE, per_page - len(samples))
        search = msgspec.convert({**query, "limit": limit, "offset": offset + len(samples)}, SearchQuery)
        page = await ask(request, subjects.SEARCH_SAMPLES, SearchSamples(project_id=project.id, query=search))
        samples.extend(page.items)
        if len(page.items) < limit:
            break
    items = [sample_json(request, sample, caller.org_name, project.name) for sample in samples]
    if labelset and samples:
        full = request.query.get("include_full_label") in ("1", "true")
        schema = (
            Schema(await ask(request, subjects.GET_LABEL_SCHEMA, GetSchema(project_id=project.id))) if full else None
        )
        for start in range(0, len(samples), 1000):
            ids = [uuid.UUID(s.id) for s in samples[start : start + 1000]]
            labels = await ask(
                request,
                subjects.GET_LABELS,
                GetLabelsRequest(project_id=project.id, labelset=labelset, body=GetLabels(sample_ids=ids)),
            )
            for item, label in zip(items[start : start + 1000], labels.items, strict=True):
                item["label"] = label_json(request, label, schema, project) if schema else summary_json(label)
    return reply(items)


async def create_sample(request: web.Request) -> web.Response:
    caller, project = await dataset(request, "manager")
    body = await body_of(request, SampleBody)
    (sample,) = await add_samples(request, caller.org_id, project, [body])
    return reply(sample_json(request, sample, caller.org_name, project.name), status=201)


async def create_samples(request: web.Request) -> web.Response:
    caller, project = await dataset(request, "manager")
    bodies = await body_of(request, list[SampleBody])
    if not bodies:
        raise LoupeError("invalid", "send at least one sample", path="$")
    samples = await add_samples(request, caller.org_id, project, bodies)
    return reply([sample_json(request, sample, caller.org_name, project.name) for sample in samples], status=201)


async def add_samples(request: web.Request, org_id: str, project: Project, bodies: list[SampleBody]) -> list[Sample]:
    """Ingest each body's image; the samples in the bodies' order. Assets of this organisation come from
    the staging bucket through an upload session, other URLs through a URL import."""
    dataset_id = await default_dataset(request, project)
    asset_base = f"{request.app[files.PUBLIC_URL]}/assets/"
    assets: list[int] = []
    urls: list[int] = []
    for index, body in enumerate(bodies):
        (assets if body.attributes.image.url.startswith(asset_base) else urls).append(index)
    runs = await asyncio.gather(
        upload_assets(request, org_id, project.id, dataset_id, [bodies[i] for i in assets], asset_base),
        import_urls(request, project.id, dataset_id, [bodies[i] for i in urls]),
    )
    sample_ids: list[str] = [""] * len(bodies)
    for indexes, items in zip((assets, urls), runs, strict=True):
        for index, item in zip(indexes, items, strict=True):
            if item.sample_id is None:
                prefix = f"[{index}]." if len(bodies) > 1 else ""
                raise LoupeError(
                    "invalid",
                    f"the image of sample {bodies[index].name!r} was not taken: {item.error or item.state}",
                    path=f"{prefix}attributes.image.url",
                )
            sample_ids[index] = item.sample_id
    return await catalogued(request, project.id, sample_ids, RUN_WAIT_S)


def file_spec(body: SampleBody) -> dict[str, Any]:
    return {"name": body.name, "metadata": body.metadata, "priority": body.priority}


async def upload_assets(
    request: web.Request, org_id: str, project_id: str, dataset_id: str, bodies: list[SampleBody], base: str
) -> list[RunItem]:
    if not bodies:
        return []
    storage = request.config_dict[RUNTIME].storage
    keys = []
    for index, body in enumerate(bodies):
        owner, _, rest = body.attributes.image.url[len(base) :].partition("/")
        asset_id = rest.partition("/")[0]
        if owner != org_id:
            raise LoupeError(
                "not_found", "this asset does not exist in your organisation", path=f"[{index}].attributes.image.url"
            )
        keys.append(f"{ASSET_PREFIX}/{org_id}/{asset_id}")
    upload = await ask(
        request,
        subjects.CREATE_UPLOAD,
        CreateUploadRequest(
            project_id=project_id,
            dataset_id=dataset_id,
            upload=CreateUpload(files=[msgspec.convert(file_spec(body), UploadFile) for body in bodies]),
        ),
        project_id=project_id,
        role="manager",
    )
    client = request.config_dict[HTTP_CLIENT]

    async def copy(key: str, slot: UploadSlot) -> None:
        try:
            data = await storage.get_bytes("staging", key)
        except LookupError:
            raise LoupeError(
                "invalid", "the asset was never uploaded; POST its file first", path="attributes.image.url"
            ) from None
        await put_slot(client, slot, data)

    await asyncio.gather(*(copy(key, slot) for key, slot in zip(keys, upload.slots, strict=True)))
    async with run_finished(request.config_dict[RUNTIME].nats, upload.run_id) as finished:
        run = await ask(
            request,
            subjects.COMPLETE_UPLOAD,
            CompleteUploadRequest(project_id=project_id, run_id=upload.run_id, complete=CompleteUpload()),
        )
        return await run_items(request, project_id, run, finished)


async def import_urls(
    request: web.Request, project_id: str, dataset_id: str, bodies: list[SampleBody]
) -> list[RunItem]:
    if not bodies:
        return []
    items = [msgspec.convert({**file_spec(body), "url": body.attributes.image.url}, UrlItem) for body in bodies]
    run = await ask(
        request,
        subjects.IMPORT_URLS,
        ImportUrlsRequest(project_id=project_id, dataset_id=dataset_id, urls=ImportUrls(items=items)),
        project_id=project_id,
        role="manager",
    )
    async with run_finished(request.config_dict[RUNTIME].nats, run.id) as finished:
        # Subscribed after the import began: a run that finished meanwhile is seen by asking for it.
        run = await ask(request, subjects.GET_RUN, RunRef(project_id=project_id, id=run.id))
        return await run_items(request, project_id, run, finished)


async def run_items(request: web.Request, project_id: str, run: Run, finished: asyncio.Future[Run]) -> list[RunItem]:
    """The run's items once it finished, in order."""
    if run.finished_at is None:
        try:
            await asyncio.wait_for(finished, RUN_WAIT_S)
        except TimeoutError:
            raise LoupeError(
                "unavailable", f"the images are still being imported (run {run.id}); list the samples later"
            ) from None
    items: list[RunItem] = []
    after = -1
    while True:
        page = await ask(
            request,
            subjects.LIST_RUN_ITEMS,
            ListRunItemsRequest(project_id=project_id, id=run.id, query=ListRunItems(after=after, limit=1000)),
        )
        items.extend(page.items)
        if page.next_after is None:
            return items
        after = page.next_after


async def sample_reply(request: web.Request, sample: Sample) -> dict[str, Any]:
    caller, project = await asyncio.gather(
        me(request), ask(request, subjects.GET_PROJECT, ProjectRef(id=sample.project_id))
    )
    return sample_json(request, sample, caller.org_name, project.name)


async def get_sample(request: web.Request) -> web.Response:
    ref = await locate_sample(request, request.match_info["sample"])
    sample = await ask(request, subjects.GET_SAMPLE, ref)
    body = await sample_reply(request, sample)
    if labelset := request.query.get("labelset"):
        project, schema = await project_and_schema(request, ref.project_id)
        label = await ask(
            request, subjects.GET_LABEL, LabelRef(project_id=ref.project_id, sample_id=ref.sample_id, labelset=labelset)
        )
        body["label"] = label_json(request, label, schema, project)
    return reply(body)


async def update_sample(request: web.Request) -> web.Response:
    ref = await locate_sample(request, request.match_info["sample"], "manager")
    body = await body_of(request, SampleUpdate)
    if body.attributes is not None:
        raise LoupeError("invalid", "a sample's image cannot change; add a new sample instead", path="attributes")
    changes = {
        name: getattr(body, name) for name in ("name", "metadata", "priority") if getattr(body, name) is not None
    }
    sample = await ask(
        request,
        subjects.UPDATE_SAMPLE,
        UpdateSampleRequest(
            project_id=ref.project_id, sample_id=ref.sample_id, changes=msgspec.convert(changes, SampleChanges)
        ),
        project_id=ref.project_id,
        role="manager",
    )
    return reply(await sample_reply(request, sample))


async def delete_sample(request: web.Request) -> web.Response:
    ref = await locate_sample(request, request.match_info["sample"], "manager")
    await ask(request, subjects.DELETE_SAMPLE, ref, project_id=ref.project_id, role="manager")
    return web.Response(status=204)


async def delete_samples(request: web.Request) -> web.Response:
    _, project = await dataset(request, "manager")
    body = await body_of(request, DeleteBody)
    if not 1 <= len(body.uuids) <= 1000:
        raise LoupeError("invalid", "send 1 to 1000 uuids", path="uuids")
    ids = msgspec.convert({"ids": body.uuids}, DeleteSamples)
    deleted = await ask(
        request,
        subjects.DELETE_SAMPLES,
        DeleteSamplesRequest(project_id=project.id, body=ids),
        project_id=project.id,
        role="manager",
    )
    return reply({"deleted_count": deleted.deleted})


# -- labels ---------------------------------------------------------------------------------------


async def project_and_schema(request: web.Request, project_id: str) -> tuple[Project, Schema]:
    project, schema = await asyncio.gather(
        ask(request, subjects.GET_PROJECT, ProjectRef(id=project_id)),
        ask(request, subjects.GET_LABEL_SCHEMA, GetSchema(project_id=project_id)),
    )
    return project, Schema(schema)


def label_ref(request: web.Request, ref: SampleRef) -> LabelRef:
    return LabelRef(project_id=ref.project_id, sample_id=ref.sample_id, labelset=request.match_info["labelset"])


async def get_label(request: web.Request) -> web.Response:
    ref = await locate_sample(request, request.match_info["sample"])
    project, schema = await project_and_schema(request, ref.project_id)
    label = await ask(request, subjects.GET_LABEL, label_ref(request, ref))
    if label.version == 0:
        raise LoupeError("not_found", f"sample {ref.sample_id} has no label in labelset {label.labelset}: not found")
    return reply(label_json(request, label, schema, project))


async def put_label(request: web.Request) -> web.Response:
    """PUT writes the whole label; PATCH without `attributes` changes only its status or score."""
    ref = await locate_sample(request, request.match_info["sample"], "labeler")
    project, schema = await project_and_schema(request, ref.project_id)
    body = await body_of(request, InLabel)
    where = label_ref(request, ref)
    current = await ask(request, subjects.GET_LABEL, where)
    target: LabelStatus = body.label_status or (current.status if current.version else "PRELABELED")
    steps = list(status_steps(current.status, target))
    if request.method == "PUT" or body.attributes is not None:
        bitmap = await bitmap_of(request, body, project, ref)
        label = await ask(
            request,
            subjects.PUT_LABEL,
            PutLabelRequest(**msgspec.structs.asdict(where), label=to_loupe(body, schema, steps.pop(0), bitmap)),
            project_id=ref.project_id,
            role="labeler",
        )
    for step in steps:
        changes: dict[str, Any] = {"status": step}
        if body.score is not None:
            changes["score"] = body.score
        label = await ask(
            request,
            subjects.UPDATE_LABEL,
            UpdateLabelRequest(**msgspec.structs.asdict(where), changes=msgspec.convert(changes, LabelChanges)),
            project_id=ref.project_id,
            role="labeler",
        )
    return reply(label_json(request, label, schema, project), status=200 if request.method == "PATCH" else 201)


async def bitmap_of(request: web.Request, body: InLabel, project: Project, ref: SampleRef) -> Bitmap | None:
    """The label's segmentation bitmap in a segmentation-bitmap dataset (None in others, which take vector
    annotations)."""
    named = body.attributes.segmentation_bitmap if body.attributes else None
    if project.task_type != "segmentation-bitmap":
        if named is not None:
            raise LoupeError(
                "invalid",
                f"dataset {project.name} has task type {project.task_type}: its labels are vector annotations",
                path="attributes.segmentation_bitmap",
            )
        return None
    url = named.get("url") if named else None
    if not isinstance(url, str):
        raise LoupeError(
            "invalid", "a segmentation label needs its bitmap's url (upload it with POST /assets/)", path=Bitmap.PATH
        )
    sample = await ask(request, subjects.GET_SAMPLE, ref)
    return Bitmap(await asset_bytes(request, url), sample.width, sample.height)


async def asset_bytes(request: web.Request, url: str) -> bytes:
    """The bytes behind an asset URL of this listener, or of an image link it gave out."""
    base = request.app[files.PUBLIC_URL]
    if url.startswith(f"{base}/assets/"):
        caller = await me(request)
        org_id, _, rest = url[len(base) + len("/assets/") :].partition("/")
        if org_id != caller.org_id:
            raise LoupeError("not_found", "this asset does not exist in your organisation", path=Bitmap.PATH)
        try:
            return await request.config_dict[RUNTIME].storage.get_bytes(
                "staging", f"{ASSET_PREFIX}/{org_id}/{rest.partition('/')[0]}"
            )
        except LookupError:
            raise LoupeError(
                "not_found", "the asset was never uploaded: POST its file first", path=Bitmap.PATH
            ) from None
    if url.startswith(f"{base}{files.PREFIX}images/"):
        return await files.fetched(request, files.unwrapped(request, url.rsplit("/", 1)[1]))
    raise LoupeError(
        "invalid", "give the url of an asset uploaded here (POST /assets/, the SDK's upload_asset)", path=Bitmap.PATH
    )


async def delete_label(request: web.Request) -> web.Response:
    ref = await locate_sample(request, request.match_info["sample"], "labeler")
    await ask(request, subjects.DELETE_LABEL, label_ref(request, ref), project_id=ref.project_id, role="labeler")
    return web.Response(status=204)


# -- assets ---------------------------------------------------------------------------------------


class AssetBody(msgspec.Struct, kw_only=True):
    filename: str = "label.png"


def content_type_of(filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower()
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}.get(
        suffix, "application/octet-stream"
    )


async def create_asset(request: web.Request) -> web.Response:
    caller = await me(request)
    body = await body_of(request, AssetBody)
    filename = body.filename.replace("/", "_") or "file"
    asset_id = str(uuid.uuid4())
    settings = request.config_dict[RUNTIME].settings
    now = datetime.now(UTC)
    base = request.app[files.PUBLIC_URL]
    fields = policy.post_fields(
        settings.secrets_key,
        f"{caller.org_id}/{asset_id}/{filename}",
        content_type_of(filename),
        settings.ingest_max_file_bytes,
        now,
    )
    return reply(
        {
            "uuid": asset_id,
            "filename": filename,
            "url": f"{base}/assets/{caller.org_id}/{asset_id}/{filename}",
            "created_at": iso(now),
            "presignedPostFields": {"url": f"{base}/assets/upload", "fields": fields},
        },
        status=201,
    )


async def upload_asset(request: web.Request) -> web.Response:
    """The S3-style POST the SDK sends without an API key: the policy is checked, then the bytes kept."""
    rt = request.config_dict[RUNTIME]
    limit = rt.settings.ingest_max_file_bytes + FORM_OVERHEAD
    if (request.content_length or 0) > limit:
        raise LoupeError("too_large", f"an asset is at most {rt.settings.ingest_max_file_bytes} bytes", path="file")
    form: dict[str, str] = {}
    data: bytes | None = None
    reader = await form_step(rt.settings.request_timeout_s, request.multipart())
    while (part := await form_step(rt.settings.request_timeout_s, reader.next())) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        read = bytearray()
        while chunk := await form_step(rt.settings.request_timeout_s, part.read_chunk(1 << 16)):
            read += chunk
            if len(read) > limit:
                raise LoupeError(
                    "too_large", f"an asset is at most {rt.settings.ingest_max_file_bytes} bytes", path="file"
                )
        if part.name == "file":
            data = bytes(read)
        else:
            form[part.name or ""] = read.decode(errors="replace")
    if data is None:
        raise LoupeError("invalid", "the form has no `file` part", path="file")
    policy.check(rt.settings.secrets_key, form, len(data), datetime.now(UTC))
    org_id, asset_id, _ = form["key"].split("/", 2)
    await rt.storage.put_bytes("staging", f"{ASSET_PREFIX}/{org_id}/{asset_id}", data, form["Content-Type"])
    return web.Response(status=204)


async def get_asset(request: web.Request) -> web.Response:
    """An asset's bytes without an API key, as Segments' asset URLs are; its uuid is the secret."""
    org_id, asset_id = request.match_info["org"], request.match_info["asset"]
    try:
        uuid.UUID(org_id), uuid.UUID(asset_id)
    except ValueError:
        raise LoupeError("not_found", "asset not found") from None
    storage = request.config_dict[RUNTIME].storage
    raise web.HTTPFound(storage.presigned_get("staging", f"{ASSET_PREFIX}/{org_id}/{asset_id}", 3600))
