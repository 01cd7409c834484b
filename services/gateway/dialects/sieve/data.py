"""Submitting and querying data. `push_data` is a URL import (a Sieve job id is the import run's id) into the
project's dataset `train` or `tag`; training data's tag values (the `metadata` extension) become its
ground-truth tags and a tagging run starts; other images are tagged by an auto-label job of the live tagger.
Queries read an image's tag values from its ground truth, else from the tagger's predictions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import msgspec
from aiohttp import web

from proto import subjects
from proto.annotation import GetLabels, GetLabelsRequest, LabelInput, LabelItem, PutLabels, PutLabelsRequest
from proto.inference import (
    PREDICTIONS_LABELSET,
    AutoLabel,
    CreateJobRequest,
    ModelChoice,
    Selection,
    TaggingScope,
    Thresholds,
)
from proto.ingest import ImportUrls, ImportUrlsRequest, ListRunItems, ListRunItemsRequest, Run, RunRef, UrlItem
from proto.samples import Sample, SampleUpdate, UpdateSamples, UpdateSamplesRequest
from proto.schema import CreateSchemaItem, CreateTagClass, TagGroup
from proto.search import SampleFilter, SearchQuery, SearchSamples, Sort
from proto.training import CreateTrainingRun, CreateTrainingRunRequest
from services.gateway.dialects.native import catalogued
from services.gateway.dialects.sieve.common import (
    TAG_DATASET,
    TRAIN_DATASET,
    ProjectName,
    ask,
    ask_all,
    body,
    dataset_id,
    project_named,
    successful,
    tag_groups,
)
from shared.errors import LoupeError, invalid

GROUND_TRUTH = "ground-truth"
IMPORT_WITHIN_S = 120.0  # push_data answers with the image ids, so it waits for the import
POLL_S = 0.2
OLDEST_FIRST: Sort = "created_at"
CHUNK = 1000  # labels per bulk read or write
# Sample metadata the dialect records: the URL an image came from, and the run (the Sieve job) that last
# pushed it. Both are the sample's own metadata, seen natively too.
URL_KEY = "sieve_url"
JOB_KEY = "sieve_job_id"
TagValue = str | int | float | bool


class PushData(msgspec.Struct, frozen=True, kw_only=True):
    project_name: ProjectName
    urls: Annotated[list[str], msgspec.Meta(min_length=1, max_length=1000)]
    train: bool = False
    # Loupe's extension: with `train`, one object of tag values per URL (`{"weather": "rainy", "glare": 2}`).
    metadata: list[dict[str, TagValue]] | None = None


class ByJobId(msgspec.Struct, frozen=True, kw_only=True):
    project_name: ProjectName
    job_id: str


class ByImageIds(msgspec.Struct, frozen=True, kw_only=True):
    project_name: ProjectName
    image_ids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=10_000)]


class BySubset(msgspec.Struct, frozen=True, kw_only=True):
    project_name: ProjectName
    tags: dict[str, list[TagValue]]


def text(value: TagValue) -> str:
    """A tag value as Sieve shows it: a string (`2` and `"2"` are the same value)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    return (items[start : start + CHUNK] for start in range(0, len(items), CHUNK))


def uuid_field(value: str, path: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid(f"{value!r} is not an id Sieve gave out (a UUID)", path=path) from None


# -- push_data -----------------------------------------------------------------------------------------


def checked_metadata(push: PushData, groups: list[TagGroup]) -> list[dict[str, str]]:
    """The training images' tag values, each tag one of the project's."""
    if push.metadata is None:
        return [{} for _ in push.urls]
    if not push.train:
        raise invalid("`metadata` gives training images their tags: send it with `train: true`", path="metadata")
    if len(push.metadata) != len(push.urls):
        raise invalid(
            f"`metadata` needs one object per URL ({len(push.urls)}), not {len(push.metadata)}", path="metadata"
        )
    names = {group.name.lower(): group.name for group in groups}
    checked = []
    for index, values in enumerate(push.metadata):
        for tag in values:
            if tag.lower() not in names:
                raise invalid(
                    f"the project has no tag {tag!r}: add it with add_tags first", path=f"metadata[{index}].{tag}"
                )
        checked.append({names[tag.lower()]: text(value) for tag, value in values.items()})
    return checked


async def imported(request: web.Request, project_id: str, dataset: str, urls: list[str]) -> Run:
    """The finished URL import of `urls` into `dataset`."""
    items = [UrlItem(url=url, metadata={URL_KEY: url}) for url in urls]
    run = await ask(
        request,
        subjects.IMPORT_URLS,
        ImportUrlsRequest(project_id=project_id, dataset_id=dataset, urls=ImportUrls(items=items)),
        project_id=project_id,
        role="manager",
    )
    deadline = time.monotonic() + IMPORT_WITHIN_S
    while run.state in ("WAITING", "RUNNING"):
        if time.monotonic() > deadline:
            raise LoupeError(
                "unavailable",
                f"the import {run.id} did not finish within {IMPORT_WITHIN_S:.0f} s; query it by its job id later",
                path="urls",
            )
        await asyncio.sleep(POLL_S)
        run = await ask(request, subjects.GET_RUN, RunRef(project_id=project_id, id=run.id))
    return run


async def run_samples(request: web.Request, project_id: str, run_id: str) -> list[tuple[str, str | None, str | None]]:
    """Each item of an import run: (url, its sample id or None, why it failed or None), in the order pushed."""
    found: list[tuple[str, str | None, str | None]] = []
    after = -1
    while True:
        page = await ask(
            request,
            subjects.LIST_RUN_ITEMS,
            ListRunItemsRequest(project_id=project_id, id=run_id, query=ListRunItems(after=after, limit=1000)),
            project_id=project_id,
            role="viewer",
        )
        found += [(item.source, item.sample_id, item.error) for item in page.items]
        if page.next_after is None or not page.items:
            return found
        after = page.next_after


async def tag_class_ids(
    request: web.Request, project_id: str, groups: list[TagGroup], values: list[dict[str, str]]
) -> list[list[uuid.UUID]]:
    """Each image's tag class ids; a value the tag has never had becomes a new tag class of its group (tag
    names are unique in their group whatever their case, so `Fog` is the value `fog` already has)."""
    ids = {(group.name, tag.name.lower()): tag.id for group in groups for tag in group.tags}
    group_ids = {group.name: group.id for group in groups}
    for image in values:
        for group, value in image.items():
            if (group, value.lower()) not in ids:
                made = await ask(
                    request,
                    subjects.TAG_CLASS.create,
                    CreateSchemaItem(project_id=project_id, item=CreateTagClass(group_id=group_ids[group], name=value)),
                    project_id=project_id,
                    role="manager",
                )
                ids[(group, value.lower())] = made.id
    return [[uuid.UUID(ids[(group, value.lower())]) for group, value in image.items()] for image in values]


async def label_and_train(
    request: web.Request, project_id: str, pushed: list[tuple[str, dict[str, str]]], groups: list[TagGroup]
) -> str:
    """Training images' tags as their ground truth, then a tagging run that learns from them: its id."""
    labelled = [(sample, image) for sample, image in pushed if image]
    tags = await tag_class_ids(request, project_id, groups, [image for _, image in labelled])
    items = [
        LabelItem(sample_id=uuid.UUID(sample), label=LabelInput(tag_class_ids=ids))
        for (sample, _), ids in zip(labelled, tags, strict=True)
    ]
    for start in range(0, len(items), CHUNK):
        reply = await ask(
            request,
            subjects.PUT_LABELS,
            PutLabelsRequest(
                project_id=project_id, labelset=GROUND_TRUTH, body=PutLabels(items=items[start : start + CHUNK])
            ),
            project_id=project_id,
            role="labeler",
        )
        for result in reply.items:
            if result.outcome != "written":
                raise LoupeError(
                    "conflict",
                    f"the tags of image {result.sample_id} were not written: {result.error}",
                    path="metadata",
                )
    run = await ask(
        request,
        subjects.CREATE_TRAINING_RUN,
        CreateTrainingRunRequest(project_id=project_id, run=CreateTrainingRun(family="tagging")),
        project_id=project_id,
        role="manager",
    )
    return str(run.id)


async def tag_waiting_images(request: web.Request, project_id: str, dataset: str) -> str | None:
    """An auto-label job of the live tagger over the `tag` dataset's untagged images (those pushed before it was
    live too); None while some tag is not live yet."""
    statuses = await ask(request, subjects.TAG_STATUS, TaggingScope(project_id=project_id))
    if not statuses.items or any(item.status != "live" for item in statuses.items):
        return None
    job = AutoLabel(
        model=ModelChoice(family="tagging"),
        selection=Selection(filter=SampleFilter(dataset_ids=[dataset])),
        thresholds=Thresholds(confidence=0.0),  # Sieve gives every image a value of every tag
        replace=False,
    )
    made = await ask(
        request,
        subjects.CREATE_INFERENCE_JOB,
        CreateJobRequest(project_id=project_id, job=job),
        project_id=project_id,
        role="manager",
    )
    return str(made.id)


async def push_data(request: web.Request) -> web.Response:
    push = await body(request, PushData)
    project = await project_named(request, push.project_name)
    groups = await tag_groups(request, project.id)
    values = checked_metadata(push, groups)
    dataset = await dataset_id(request, project.id, TRAIN_DATASET if push.train else TAG_DATASET)
    run = await imported(request, project.id, dataset, push.urls)
    # Ingest fetches a URL given twice once: the answer is by URL, parallel to `urls`.
    outcome = {url: (sample, error) for url, sample, error in await run_samples(request, project.id, run.id)}
    sample_of = {url: sample for url, (sample, _) in outcome.items() if sample}
    pushed = [(sample_of[url], image) for url, image in zip(push.urls, values, strict=True) if url in sample_of]
    samples = [sample for sample, _ in pushed]
    if samples:
        await catalogued(request, project.id, samples, IMPORT_WITHIN_S)
        updates = [
            SampleUpdate(id=uuid.UUID(sample), metadata_patch={JOB_KEY: run.id}) for sample in dict.fromkeys(samples)
        ]
        await ask(
            request,
            subjects.UPDATE_SAMPLES,
            UpdateSamplesRequest(project_id=project.id, body=UpdateSamples(items=updates)),
            project_id=project.id,
            role="labeler",
        )
    extra: dict[str, Any] = {}
    failed = [{"url": url, "error": error} for url, (sample, error) in outcome.items() if not sample]
    if failed:
        extra["failed"] = failed  # Loupe's addition: the URLs that could not be imported, and why
    if push.train:
        if any(image for _, image in pushed):
            extra["training_run_id"] = await label_and_train(request, project.id, pushed, groups)
    else:
        extra["tagging_job_id"] = await tag_waiting_images(request, project.id, dataset)
    return successful(image_ids=samples, job_id=run.id, **extra)


# -- queries -------------------------------------------------------------------------------------------


async def samples_of(
    request: web.Request, project_id: str, *, sample_ids: list[str] | None = None, dataset_ids: list[str] | None = None
) -> list[Sample]:
    """The samples a filter of `sample_ids` or `dataset_ids` matches, oldest first."""
    return await ask_all(
        request,
        subjects.SEARCH_SAMPLES,
        lambda cursor: SearchSamples(
            project_id=project_id,
            query=SearchQuery(
                sample_ids=sample_ids, dataset_ids=dataset_ids, sort=OLDEST_FIRST, limit=500, cursor=cursor
            ),
        ),
        project_id=project_id,
        role="viewer",
    )


async def labels(
    request: web.Request, project_id: str, labelset: str, sample_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Each sample's tag class ids in the labelset; none while the labelset does not exist (`predictions`
    before the first tagging job)."""
    found: dict[str, list[str]] = {}
    for chunk in chunks(sample_ids):
        request_labels = GetLabelsRequest(
            project_id=project_id, labelset=labelset, body=GetLabels(sample_ids=[uuid.UUID(s) for s in chunk])
        )
        try:
            reply = await ask(request, subjects.GET_LABELS, request_labels, project_id=project_id, role="viewer")
        except LoupeError as error:
            if error.code == "not_found":
                return {}
            raise
        found.update((label.sample_id, label.tag_class_ids) for label in reply.items)
    return found


async def metadata_rows(request: web.Request, project_id: str, samples: list[Sample]) -> list[dict[str, Any]]:
    """Sieve's row per image: its ids, URL and a value per tag, from its ground truth (training images), else
    from the tagger's predictions. A tag without a value yet is left out of the row."""
    groups = await tag_groups(request, project_id)
    values = {tag.id: (group.name, tag.name) for group in groups for tag in group.tags}
    ids = [sample.id for sample in samples]
    truth = await labels(request, project_id, GROUND_TRUTH, ids)
    predicted = await labels(request, project_id, PREDICTIONS_LABELSET, ids)
    rows = []
    for sample in samples:
        row: dict[str, Any] = {
            "image_id": sample.id,
            "job_id": sample.metadata.get(JOB_KEY),
            "url": sample.metadata.get(URL_KEY),
        }
        for tag_ids in (predicted.get(sample.id, []), truth.get(sample.id, [])):  # ground truth wins
            row.update(values[tag] for tag in tag_ids if tag in values)
        rows.append(row)
    return rows


async def by_job_id(request: web.Request) -> web.Response:
    query = await body(request, ByJobId)
    project = await project_named(request, query.project_name)
    run_id = uuid_field(query.job_id, "job_id")
    await ask(request, subjects.GET_RUN, RunRef(project_id=project.id, id=run_id), project_id=project.id, role="viewer")
    samples = list(dict.fromkeys(sample for _, sample, _ in await run_samples(request, project.id, run_id) if sample))
    found = await samples_of(request, project.id, sample_ids=samples) if samples else []
    order = {sample: index for index, sample in enumerate(samples)}
    found.sort(key=lambda sample: order[sample.id])
    return successful(metadata=await metadata_rows(request, project.id, found))


async def by_image_ids(request: web.Request) -> web.Response:
    """Ids the project does not have are left out of the answer."""
    query = await body(request, ByImageIds)
    project = await project_named(request, query.project_name)
    wanted = list(dict.fromkeys(uuid_field(value, f"image_ids[{i}]") for i, value in enumerate(query.image_ids)))
    found = {sample.id: sample for sample in await samples_of(request, project.id, sample_ids=wanted)}
    rows = await metadata_rows(request, project.id, [found[sample] for sample in wanted if sample in found])
    return successful(metadata=rows)


async def by_subset(request: web.Request) -> web.Response:
    """Images whose value of every tag asked about is one of the values listed for it (OR within a tag, AND
    across tags), oldest first."""
    query = await body(request, BySubset)
    project = await project_named(request, query.project_name)
    names = {group.name.lower(): group.name for group in await tag_groups(request, project.id)}
    wanted: dict[str, set[str]] = {}
    for tag, allowed in query.tags.items():
        if tag.lower() not in names:
            raise invalid(f"the project has no tag {tag!r}", path=f"tags.{tag}")
        wanted[names[tag.lower()]] = {text(value) for value in allowed}
    sieve_data = await dataset_ids(request, project.id)
    rows = await metadata_rows(request, project.id, await samples_of(request, project.id, dataset_ids=sieve_data))
    return successful(metadata=[row for row in rows if all(row.get(tag) in values for tag, values in wanted.items())])


async def dataset_ids(request: web.Request, project_id: str) -> list[str]:
    return [await dataset_id(request, project_id, name) for name in (TRAIN_DATASET, TAG_DATASET)]
