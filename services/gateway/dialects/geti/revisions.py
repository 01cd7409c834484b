"""Geti Tune: dataset revisions, Geti's training datasets, which are the native releases training runs learnt
from (immutable snapshots of the samples and their labels; each run cuts or names one). The revision shown is
the one `?revision_id=` names (any release id), or the one the model `?model_id=` was trained on, else the
newest training run's. Its items are read from the release's native export (made the first time, then reused);
their images are the samples' own, so the image of an item since deleted from the dataset is gone. Releases
cut for other ends (a Segments.ai release, an export) are no dataset revisions: deleting revisions leaves them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from aiohttp import web

from proto import annotation, releases, samples, subjects
from proto.annotation import GROUND_TRUTH
from services.gateway.dialects.geti.annotating import annotation_info
from services.gateway.dialects.geti.common import (
    PROJECT,
    Route,
    answer,
    authorized,
    no_content,
    paginated,
    query_bool,
    query_uuid,
)
from services.gateway.dialects.geti.datasets import media, page_query, subset
from services.gateway.dialects.geti.models import one_version, training_runs
from services.gateway.dialects.geti.task import task_of
from services.gateway.dialects.native import ask
from services.gateway.dialects.requests import uuid_param
from services.gateway.uploads import HTTP_CLIENT
from shared.errors import LoupeError
from shared.service import RUNTIME

REVISIONS = PROJECT + "/dataset_revisions"
REVISION_ITEM = REVISIONS + "/items/{item_id}"


class Revision(msgspec.Struct, kw_only=True):
    release: releases.Release
    header: releases.ReleaseHeader
    samples: list[releases.ReleaseSample]


async def existing_release(request: web.Request, pid: str, release_id: str) -> releases.Release | None:
    try:
        return await ask(request, subjects.GET_RELEASE, releases.ReleaseRef(project_id=pid, release_id=release_id))
    except LoupeError as error:
        if error.code != "not_found":
            raise
        return None


async def training_releases(request: web.Request, pid: str) -> list[releases.Release]:
    """The releases the project's training runs learnt from, the newest run's first, those still there."""
    release_ids = dict.fromkeys(run.release_id for run in (await training_runs(request, pid)).values())
    found = await asyncio.gather(*(existing_release(request, pid, release_id) for release_id in release_ids))
    return [release for release in found if release is not None]


async def chosen_release(request: web.Request, pid: str) -> releases.Release:
    if revision_id := query_uuid(request, "revision_id"):
        return await ask(request, subjects.GET_RELEASE, releases.ReleaseRef(project_id=pid, release_id=revision_id))
    if model_id := query_uuid(request, "model_id"):
        version = await one_version(request, pid, model_id)
        if trained_on := await existing_release(request, pid, version.release_id):
            return trained_on
        raise LoupeError(
            "not_found", f"the dataset revision model {model_id} was trained on was deleted", path="model_id"
        )
    for release in await training_releases(request, pid):
        if release.state == "SUCCEEDED":
            return release
    raise LoupeError("not_found", "the project has no dataset revision yet: one is made when a model is trained")


async def native_export(request: web.Request, release: releases.Release) -> releases.Export:
    """The release's native export, finished: one made before, else a new one."""
    ref = releases.ListExportsRequest(project_id=release.project_id, release_id=release.id)
    exports: releases.ExportList = await ask(request, subjects.LIST_EXPORTS, ref)
    usable = [
        export
        for export in exports.items
        if export.format == "native"
        and export.filter == releases.ExportFilter()
        and not export.archive
        and export.state != "FAILED"
    ]
    export = (
        usable[0]
        if usable
        else await ask(
            request,
            subjects.CREATE_EXPORT,
            releases.CreateExportRequest(
                project_id=release.project_id, release_id=release.id, export=releases.CreateExport(format="native")
            ),
        )
    )
    deadline = time.monotonic() + request.config_dict[RUNTIME].settings.request_timeout_s
    while export.state != "SUCCEEDED":
        if export.state == "FAILED":
            raise LoupeError("unavailable", f"the dataset revision could not be read: {export.error}")
        if time.monotonic() > deadline:
            raise LoupeError("unavailable", "the dataset revision is still being prepared; try again in a moment")
        await asyncio.sleep(0.1)
        export = await ask(
            request, subjects.GET_EXPORT, releases.ExportRef(project_id=release.project_id, export_id=export.id)
        )
    return export


async def revision(request: web.Request, pid: str) -> Revision:
    release = await chosen_release(request, pid)
    export = await native_export(request, release)
    where = await ask(request, subjects.LOCATE_EXPORT, releases.ExportRef(project_id=pid, export_id=export.id))
    async with request.config_dict[HTTP_CLIENT].get(where.url) as response:
        if response.status != 200:
            raise LoupeError("unavailable", f"object storage answered {response.status} for the revision; retry")
        lines = (await response.read()).splitlines()
    header = msgspec.json.decode(lines[0], type=releases.ReleaseHeader)
    found = [msgspec.json.decode(line, type=releases.ReleaseSample) for line in lines[1:] if line]
    return Revision(release=release, header=header, samples=found)


def revision_item(pid: str, rev: Revision, sample: releases.ReleaseSample, annotated: bool) -> dict[str, Any]:
    datasets = {dataset.id: dataset.name for dataset in rev.header.datasets}
    item: dict[str, Any] = {
        "id": sample.id,
        "name": sample.name,
        "width": sample.width,
        "height": sample.height,
        "subset": subset(datasets.get(sample.dataset_id, "")),
        "dataset_revision_id": rev.release.id,
    }
    if annotated:
        item["annotation"] = annotation_info(
            # The release keeps the schema it was cut with: its labels are the ones its annotations name.
            task_of(rev.header.project.task_type, rev.header.label_schema),
            revision_label(pid, sample),
        )
    return item


def revision_label(pid: str, sample: releases.ReleaseSample) -> annotation.Label | None:
    label = sample.labels.get(GROUND_TRUTH)
    if label is None:
        return None
    return annotation.Label(
        project_id=pid,
        sample_id=sample.id,
        labelset=GROUND_TRUTH,
        status=label.status,
        score=label.score,
        objects=label.objects,
        tag_class_ids=label.tag_class_ids,
    )


async def list_revision_items(request: web.Request) -> web.Response:
    pid = await authorized(request, "viewer")
    limit, offset = page_query(request)
    rev = await revision(request, pid)
    annotated = query_bool(request, "with_annotations")
    shown = [revision_item(pid, rev, sample, annotated) for sample in rev.samples[offset : offset + limit]]
    return paginated(shown, limit, offset, len(rev.samples))


async def revision_sample(request: web.Request) -> tuple[str, Revision, releases.ReleaseSample]:
    pid, item_id = await authorized(request, "viewer"), uuid_param(request, "item_id")
    rev = await revision(request, pid)
    for sample in rev.samples:
        if sample.id == item_id:
            return pid, rev, sample
    raise LoupeError("not_found", f"item {item_id} is not in dataset revision {rev.release.id}", path="item_id")


async def get_revision_item(request: web.Request) -> web.Response:
    pid, rev, sample = await revision_sample(request)
    return answer(revision_item(pid, rev, sample, annotated=True))


async def revision_media(request: web.Request, variant: samples.MediaVariant) -> web.Response:
    pid, _, sample = await revision_sample(request)
    try:
        await ask(request, subjects.GET_SAMPLE, samples.SampleRef(project_id=pid, sample_id=sample.id))
    except LoupeError as error:
        if error.code != "not_found":
            raise
        raise LoupeError("not_found", f"item {sample.id} was deleted from the dataset, and its image with it") from None
    return await media(request, pid, sample.id, variant)


async def revision_binary(request: web.Request) -> web.Response:
    return await revision_media(request, "original")


async def revision_thumbnail(request: web.Request) -> web.Response:
    return await revision_media(request, "thumbnail")


async def delete_revisions(request: web.Request) -> web.Response:
    """Deletes the revision `?revision_id=` names, else every revision of the project (the releases its training
    runs learnt from); models trained on them keep their records, their `dataset_revision_id` then names a
    deleted revision."""
    pid = await authorized(request, "manager")
    if revision_id := query_uuid(request, "revision_id"):
        chosen = [await ask(request, subjects.GET_RELEASE, releases.ReleaseRef(project_id=pid, release_id=revision_id))]
    else:
        chosen = await training_releases(request, pid)
    for release in chosen:
        await ask(request, subjects.DELETE_RELEASE, releases.ReleaseRef(project_id=pid, release_id=release.id))
    return no_content()


ROUTES: list[Route] = [
    ("GET", REVISIONS + "/items", list_revision_items),
    ("GET", REVISION_ITEM, get_revision_item),
    ("GET", REVISION_ITEM + "/binary", revision_binary),
    ("GET", REVISION_ITEM + "/thumbnail", revision_thumbnail),
    ("DELETE", REVISIONS, delete_revisions),
]
