"""Hasty's model inference on Loupe's PREDICT: the object detector is the project's active detection version,
the semantic segmentor its active segmentation version; `model_id` is the Loupe model version's id.

An image comes as `image_url` (fetched by the inference service under the rules of URL imports) or as
`upload_id`, an upload made with the SDK's signed URL: in this dialect a one-slot ingest upload run, whose
staged bytes are read here and sent to PREDICT as the image. The upload is never completed, so predicting
makes no sample."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from proto import ingest, subjects
from proto.inference import ModelChoice, Predict, PredictedObject, PredictRequest, Thresholds
from proto.training import Family, ModelRef, ProjectScope, VersionRef
from services.gateway.dialects.hasty.common import PROJECT, Routes, ask, json, not_implemented
from services.gateway.dialects.hasty.labels import geometry
from services.gateway.dialects.requests import body, project_id
from shared import object_keys
from shared.errors import LoupeError, invalid
from shared.service import RUNTIME
from shared.storage import ObjectMissing

# Loupe's segmentation family predicts one mask per class present (semantic), never one per object.
NO_INSTANCES = (
    "Loupe's segmentation models are semantic: they predict one mask per class, not one per object, so there is "
    "no instance segmentor; use semantic_segmentor / semantic_segmentation for masks, or object_detector / "
    "object_detection for one box per object"
)
NO_ATTRIBUTER = (
    "Loupe has no attribute-prediction model; its models are detection (object_detector), semantic segmentation "
    "(semantic_segmentor), and image-level tagging and classification (POST /v1/projects/{project_id}/inference/"
    "predict with family `tagging` or `classification`)"
)


class PredictBody(msgspec.Struct, kw_only=True):
    """What the SDK's detector and semantic segmentor send; each sends only its own thresholds, and one left
    out is the native default."""

    model_id: str | None = None
    image_url: str | None = None
    upload_id: str | None = None
    confidence_threshold: float | None = None
    max_detections_per_image: int | None = None
    min_size: float = 0.0  # detector: a box's narrower side, segmentor: a mask's area, in pixels


def thresholds(asked: PredictBody, family: Family) -> Thresholds:
    given: dict[str, Any] = {"confidence": asked.confidence_threshold, "max_detections": asked.max_detections_per_image}
    if family == "detection":
        given["min_size"] = asked.min_size
    return Thresholds(**{name: value for name, value in given.items() if value is not None})


def prediction_json(obj: PredictedObject, family: Family) -> dict[str, Any]:
    """A box (detector) or a class's mask (semantic segmentor: no score) as the SDK documents them."""
    shape = geometry(obj.shape, None)
    found = {"bbox": shape["bbox"], "score": obj.confidence, "class_id": obj.class_id, "class_name": obj.class_name}
    return found if family == "detection" else {**found, "mask": shape["mask"]}


def area(prediction: dict[str, Any]) -> int:
    """The pixels of a Hasty mask: the lengths of its [start, length] runs."""
    return sum(prediction["mask"][1::2]) if prediction["mask"] else 0


async def discover(request: web.Request, family: Family) -> web.Response:
    """The family's active version, as the SDK's model discovery reads it; Triton loads it on first use."""
    pid = project_id(request)
    models = await ask(request, subjects.LIST_MODELS, ProjectScope(project_id=pid), project_id=pid, role="viewer")
    for model in models.items:
        if model.family == family and model.active_version is not None:
            version = await ask(
                request,
                subjects.GET_MODEL_VERSION,
                VersionRef(project_id=pid, model=model.name, version=str(model.active_version)),
            )
            return json({"model_id": version.id, "status": "LOADED", "project_id": pid})
    raise LoupeError(
        "not_found",
        f"the project has no active {family} model: train one (POST /v1/projects/{pid}/training/runs) "
        "or activate a version",
        path="project_id",
    )


async def model_choice(request: web.Request, pid: str, family: Family, model_id: str | None) -> ModelChoice:
    """The version `model_id` names among the project's models of `family`; without one, the active version."""
    if model_id is None:
        return ModelChoice(family=family)
    models = await ask(request, subjects.LIST_MODELS, ProjectScope(project_id=pid), project_id=pid, role="viewer")
    for model in models.items:
        if model.family == family:
            versions = await ask(request, subjects.LIST_MODEL_VERSIONS, ModelRef(project_id=pid, model=model.name))
            for version in versions.items:
                if version.id == model_id:
                    return ModelChoice(family=family, model=model.name, version=version.version)
    raise LoupeError(
        "not_found", f"model_id {model_id!r} names no {family} model version of this project", path="model_id"
    )


async def uploaded_image(request: web.Request, pid: str, upload_id: str) -> bytes:
    """The bytes PUT to the upload's signed URL, read from ingest's staging bucket as the upload left them."""
    try:
        upload_id = str(uuid.UUID(upload_id))
    except ValueError:
        raise invalid("upload_id must be the `id` of a signed upload (a UUID)", path="upload_id") from None
    run: ingest.Run = await ask(
        request, subjects.GET_RUN, ingest.RunRef(project_id=pid, id=upload_id), project_id=pid, role="viewer"
    )
    if run.kind != "upload" or run.state != "WAITING":
        raise invalid(
            f"upload_id {upload_id} is not an open upload of this project (it is a {run.kind} run, {run.state}): "
            "make a new upload with the SDK's signed URL",
            path="upload_id",
        )
    rt = request.config_dict[RUNTIME]
    try:
        data = await rt.storage.get_bytes("staging", object_keys.upload_slot(upload_id, 0))
    except ObjectMissing:
        raise invalid(f"nothing was PUT to the URL of upload {upload_id} yet", path="upload_id") from None
    if len(data) > rt.settings.ingest_max_file_bytes:
        raise LoupeError(
            "too_large", f"the uploaded image is over {rt.settings.ingest_max_file_bytes} bytes", path="upload_id"
        )
    return data


async def predictions(request: web.Request, family: Family) -> list[dict[str, Any]]:
    pid = project_id(request)
    asked = await body(request, PredictBody)
    if (asked.image_url is None) == (asked.upload_id is None):
        raise invalid("send exactly one of `image_url` and `upload_id`", path="image_url")
    image = None if asked.upload_id is None else await uploaded_image(request, pid, asked.upload_id)
    predict = Predict(
        model=await model_choice(request, pid, family, asked.model_id),
        image=image,
        url=asked.image_url,
        thresholds=thresholds(asked, family),
    )
    found = await ask(
        request, subjects.PREDICT, PredictRequest(project_id=pid, body=predict), project_id=pid, role="viewer"
    )
    answer = [prediction_json(obj, family) for obj in found.objects]
    # Native `min_size` measures boxes; Hasty's semantic segmentor drops masks of a smaller area.
    return answer if family == "detection" else [mask for mask in answer if area(mask) >= asked.min_size]


async def object_detector(request: web.Request) -> web.Response:
    return await discover(request, "detection")


async def object_detection(request: web.Request) -> web.Response:
    return json(await predictions(request, "detection"))


async def semantic_segmentor(request: web.Request) -> web.Response:
    return await discover(request, "segmentation")


async def semantic_segmentation(request: web.Request) -> web.Response:
    return json(await predictions(request, "segmentation"))


ROUTES: Routes = [
    ("GET", PROJECT + "/object_detector", object_detector),
    ("POST", PROJECT + "/object_detection", object_detection),
    ("GET", PROJECT + "/semantic_segmentor", semantic_segmentor),
    ("POST", PROJECT + "/semantic_segmentation", semantic_segmentation),
    *(
        ("*", f"{PROJECT}/{path}", not_implemented(message))
        for path, message in (
            ("instance_segmentor", NO_INSTANCES),
            ("instance_segmentation", NO_INSTANCES),
            ("attributer", NO_ATTRIBUTER),
            ("attribute_prediction", NO_ATTRIBUTER),
        )
    ),
]
