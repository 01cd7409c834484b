"""Answers at once: one image's predictions, samples like an uploaded image, the heuristics, and the status
of each tag group."""

from __future__ import annotations

import numpy as np

from proto import subjects
from proto.common import Caller, Empty
from proto.embeddings import FindSimilar, FindSimilarRequest, SimilarSamples
from proto.inference import (
    HeuristicInfo,
    HeuristicList,
    Predict,
    Predictions,
    PredictRequest,
    SimilarToImageRequest,
    TaggingScope,
    TagGroupStatus,
    TagStatusList,
    Thresholds,
)
from proto.samples import SampleRef
from proto.schema import GetSchema
from proto.training import ListTrainingRuns, ListTrainingRunsRequest, Model, ModelVersion, VersionRef
from proto.training import ProjectScope as TrainingScope
from services.inference import heuristics, shapes
from services.inference.state import DECODER, TRITON
from services.inference.versions import ServedVersion, resolve
from shared import fetch, object_keys
from shared.bus import RequestContext
from shared.errors import conflict, invalid
from shared.predictions import Prediction, decode
from shared.service import Answers, Runtime
from shared.storage import ObjectMissing

ANSWERS = Answers()


async def predict_one(
    rt: Runtime, served: ServedVersion, data: bytes, thresholds: Thresholds, path: str = "$.image"
) -> tuple[Prediction, tuple[int, int]]:
    """One image, which the request names at `path`, through Triton: its decoded prediction and its
    (height, width)."""
    pixels, original = await rt.state[DECODER].one(data, served.image_size, path)
    outputs = await rt.state[TRITON].infer(served.triton_model, served.version, served.image_size, pixels[None])
    [prediction] = decode(
        served.spec,
        outputs,
        served.image_size,
        [original],
        min_score=thresholds.confidence,
        max_detections=thresholds.max_detections,
        min_size=thresholds.min_size,
        mask_threshold=thresholds.mask_threshold,
    )
    return prediction, original


async def sample_image(rt: Runtime, project_id: str, sample_id: str, caller: Caller) -> bytes:
    sample = await rt.nats.request(
        subjects.GET_SAMPLE, SampleRef(project_id=project_id, sample_id=sample_id), caller=caller
    )
    if sample.content_hash is None:
        raise invalid(
            "the sample's image is kept outside Loupe (media_url): send its bytes as `image` instead",
            path="$.sample_id",
        )
    try:
        return await rt.storage.get_bytes("media", object_keys.original(sample.content_hash))
    except ObjectMissing:
        raise conflict("the sample's image is no longer in storage", path="$.sample_id") from None


async def url_image(rt: Runtime, url: str) -> bytes:
    """The image at `url`, fetched as URL imports fetch, within half the request timeout: the other half is
    left to predict and answer before the gateway stops waiting."""
    try:
        return (await fetch.download(rt, url, timeout_s=rt.settings.request_timeout_s / 2)).data
    except fetch.FetchError as error:
        raise invalid(error.message, path="$.url", fetch_error=error.code) from None


async def image_of(rt: Runtime, project_id: str, body: Predict, caller: Caller) -> tuple[bytes, str]:
    """The bytes of the one image `body` names, and the path of the field that names it."""
    if body.image is not None:
        return body.image, "$.image"
    if body.url is not None:
        return await url_image(rt, body.url), "$.url"
    return await sample_image(rt, project_id, body.sample_id or "", caller), "$.sample_id"


@ANSWERS(subjects.PREDICT)
async def predict(rt: Runtime, request: PredictRequest, ctx: RequestContext) -> Predictions:
    caller = ctx.require_caller()
    body = request.body
    given = [f"`{name}`" for name in ("image", "sample_id", "url") if getattr(body, name) is not None]
    if len(given) != 1:
        raise invalid(
            "send exactly one of `image` (the image's bytes, base64 in JSON), `sample_id` or `url`; "
            f"this request has {' and '.join(given) or 'none'}",
            path="$",
        )
    served = await resolve(rt, request.project_id, body.model, caller)
    data, path = await image_of(rt, request.project_id, body, caller)
    prediction, original = await predict_one(rt, served, data, body.thresholds, path)
    schema = await rt.nats.request(subjects.GET_LABEL_SCHEMA, GetSchema(project_id=request.project_id), caller=caller)
    return shapes.predictions(served, prediction, original, shapes.Vocabulary.of(schema), body.thresholds)


@ANSWERS(subjects.SIMILAR_TO_IMAGE)
async def similar_to_image(rt: Runtime, request: SimilarToImageRequest, ctx: RequestContext) -> SimilarSamples:
    """Embed the image with the version, then ask the catalog for the nearest samples in its space."""
    caller = ctx.require_caller()
    body = request.body
    served = await resolve(rt, request.project_id, body.model, caller)
    prediction, _ = await predict_one(rt, served, body.image, Thresholds())
    if prediction.embedding is None:
        raise conflict(f"version {served.version} of {served.model!r} has no embedding output", path="$.model")
    query = FindSimilar(
        space=served.space,
        vector=np.asarray(prediction.embedding, np.float64).tolist(),
        limit=body.limit,
        filter=body.filter,
    )
    return await rt.nats.request(
        subjects.FIND_SIMILAR, FindSimilarRequest(project_id=request.project_id, query=query), caller=caller
    )


@ANSWERS(subjects.LIST_HEURISTICS)
async def list_heuristics(rt: Runtime, request: Empty, ctx: RequestContext) -> HeuristicList:
    return HeuristicList(
        items=[
            HeuristicInfo(id=h.id, description=h.description, families=list(h.families)) for h in heuristics.HEURISTICS
        ]
    )


@ANSWERS(subjects.TAG_STATUS)
async def tag_status(rt: Runtime, request: TaggingScope, ctx: RequestContext) -> TagStatusList:
    """Live: the active tagging version predicts the group. Training: a tagging run is queued or running
    (it learns every active tag group). Queued: neither."""
    caller = ctx.require_caller()
    project_id = request.project_id
    schema = await rt.nats.request(subjects.GET_LABEL_SCHEMA, GetSchema(project_id=project_id), caller=caller)
    models: list[Model] = (
        await rt.nats.request(subjects.LIST_MODELS, TrainingScope(project_id=project_id), caller=caller)
    ).items
    live: ModelVersion | None = None
    for model in models:
        if model.family == "tagging" and model.active_version is not None:
            live = await rt.nats.request(
                subjects.GET_MODEL_VERSION,
                VersionRef(project_id=project_id, model=model.name, version=str(model.active_version)),
                caller=caller,
            )
    training = [
        run
        for state in ("RUNNING", "QUEUED")
        for run in (
            await rt.nats.request(
                subjects.LIST_TRAINING_RUNS,
                ListTrainingRunsRequest(project_id=project_id, query=ListTrainingRuns(state=state)),
                caller=caller,
            )
        ).items
        if run.family == "tagging"
    ]
    predicted = {group.name for group in live.tag_groups} if live is not None else set()
    items = []
    for group in schema.tag_groups:
        if group.archived:
            continue
        if group.name in predicted and live is not None:
            items.append(
                TagGroupStatus(
                    group_id=group.id,
                    group=group.name,
                    status="live",
                    model=live.model,
                    version=live.version,
                    run_id=live.run_id,
                )
            )
        elif training:
            run = training[0]
            items.append(
                TagGroupStatus(
                    group_id=group.id, group=group.name, status="training", model=run.model, version=None, run_id=run.id
                )
            )
        else:
            items.append(
                TagGroupStatus(
                    group_id=group.id, group=group.name, status="queued", model=None, version=None, run_id=None
                )
            )
    return TagStatusList(items=items)
