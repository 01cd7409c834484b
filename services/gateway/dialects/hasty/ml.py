"""Hasty's ML endpoints on Loupe's inference jobs: automated labeling ("Finish Him") runs are auto-label jobs,
active-learning ranking sessions are ranking jobs. A Hasty experiment is a Loupe training run (its id), a
heuristic id is a fixed UUID derived from the heuristic's name and model family: nothing is kept here."""

from __future__ import annotations

import uuid
from typing import Any, get_args

import msgspec
from aiohttp import web

from proto import subjects
from proto.inference import (
    AutoLabel,
    CreateJobRequest,
    Heuristic,
    InferenceJob,
    JobKind,
    JobRef,
    ListJobs,
    ListJobsRequest,
    ModelChoice,
    Rank,
    ResultsPage,
    ResultsRequest,
    Selection,
    Thresholds,
)
from proto.search import LabelFilter, SampleFilter
from proto.training import Family, ModelRef, TrainingRunRef, VersionRef
from services.gateway.dialects.hasty.common import PROJECT, Routes, ask, json, page_of, timestamp
from services.gateway.dialects.native import ask_all
from services.gateway.dialects.requests import body, project_id, uuid_param
from shared.errors import LoupeError, invalid

AUTOMATED_LABELING = PROJECT + "/automated_labeling"
ACTIVE_LEARNING = PROJECT + "/active_learning"
HEURISTIC_NAMESPACE = uuid.UUID("6f1d3a52-0c41-4d0e-9a0e-4c3b9b1f7a10")

# Hasty's model families and Loupe's; Loupe's segmentor is semantic, so both of Hasty's segmentors map to it.
FAMILIES: dict[str, Family] = {
    "detector": "detection",
    "segmentor": "segmentation",
    "semantic-segmentor": "segmentation",
    "tagger": "tagging",
    "classifier": "classification",
}
HASTY_FAMILY: dict[Family, str] = {
    "detection": "detector",
    "segmentation": "semantic-segmentor",
    "tagging": "tagger",
    "classification": "classifier",
}
HEURISTIC_NAMES: dict[str, str] = {
    "least-confidence": "Least confidence",
    "margin": "Margin",
    "entropy": "Entropy",
    "core-set": "Core-set",
    "random": "Random",
}
# Hasty's job statuses; a ranking session starts as INIT.
STATUS = {"QUEUED": "PENDING", "RUNNING": "RUNNING", "SUCCEEDED": "DONE", "FAILED": "FAILED", "CANCELLED": "CANCELLED"}


def heuristic_id(heuristic: str, family: str) -> str:
    return str(uuid.uuid5(HEURISTIC_NAMESPACE, f"{heuristic}/{family}"))


HEURISTICS: dict[str, tuple[Heuristic, str]] = {
    heuristic_id(heuristic, family): (heuristic, family) for heuristic in get_args(Heuristic) for family in FAMILIES
}


class NewAutomatedLabeling(msgspec.Struct, frozen=True, kw_only=True):
    experiment_id: str
    confidence_threshold: float = 0.8
    max_detections_per_image: int = 100
    num_images: int = 0  # 0: every image
    masker_threshold: float = 0.5
    min_size: float = 0.0
    dataset_id: str | None = None


class NewRankingSession(msgspec.Struct, frozen=True, kw_only=True):
    heuristic_id: str
    model_family: str | None = None
    num_images: int = 100
    dataset_ids: list[str] = []
    session_name: str | None = None


def progress(job: InferenceJob) -> float:
    if job.state == "SUCCEEDED":
        return 1.0
    return job.done / job.total if job.total else 0.0


async def experiments(request: web.Request, jobs: list[InferenceJob]) -> dict[tuple[str, int], str | None]:
    """The training run (Hasty's experiment) of each model version the jobs used, asked once per version;
    None where the version is gone."""
    runs: dict[tuple[str, int], str | None] = {}
    for found in jobs:
        if (found.model, found.version) not in runs:
            ref = VersionRef(project_id=found.project_id, model=found.model, version=str(found.version))
            try:
                runs[(found.model, found.version)] = str((await ask(request, subjects.GET_MODEL_VERSION, ref)).run_id)
            except LoupeError as error:
                if error.code != "not_found":
                    raise
                runs[(found.model, found.version)] = None
    return runs


async def automated_labeling_jobs(request: web.Request, jobs: list[InferenceJob]) -> list[dict[str, Any]]:
    runs = await experiments(request, jobs)
    return [automated_labeling_job(found, runs[(found.model, found.version)]) for found in jobs]


async def one_automated_labeling_job(request: web.Request, job: InferenceJob) -> web.Response:
    return json((await automated_labeling_jobs(request, [job]))[0])


def automated_labeling_job(job: InferenceJob, experiment_id: str | None) -> dict[str, Any]:
    assert isinstance(job.spec, AutoLabel)
    thresholds = job.spec.thresholds
    return {
        "id": job.id,
        "project_id": job.project_id,
        "status": STATUS[job.state],
        "progress": progress(job),
        "started_on": timestamp(job.started_at),
        "completed_on": timestamp(job.finished_at),
        "images_processed": job.done,
        "experiment_id": experiment_id,
        "user_id": job.created_by,
        "confidence_threshold": thresholds.confidence,
        "max_detections_per_image": thresholds.max_detections,
        "num_images": job.spec.selection.limit or 0,
        "masker_threshold": thresholds.mask_threshold,
        "min_size": thresholds.min_size,
        "update_no_predictions": False,
        "run_name": None,
    }


def ranking_session(job: InferenceJob, session_name: str | None = None) -> dict[str, Any]:
    assert isinstance(job.spec, Rank)
    family = HASTY_FAMILY[job.family]
    return {
        "session_id": job.id,
        "heuristic_id": heuristic_id(job.spec.heuristic, family),
        "model_family": family,
        "status": "INIT" if job.state == "QUEUED" else STATUS[job.state],
        "heuristic_name": HEURISTIC_NAMES[job.spec.heuristic],
        "session_name": session_name,
        "progress": progress(job),
        "num_images": job.spec.count,
        "view_id": job.view_id,
    }


async def jobs(request: web.Request, kind: JobKind) -> list[InferenceJob]:
    pid = project_id(request)
    reply = await ask(
        request,
        subjects.LIST_INFERENCE_JOBS,
        ListJobsRequest(project_id=pid, query=ListJobs(kind=kind, limit=500)),
        project_id=pid,
        role="viewer",
    )
    return list(reply.items)


async def job(request: web.Request, name: str, kind: JobKind) -> InferenceJob:
    pid = project_id(request)
    found = await ask(
        request,
        subjects.GET_INFERENCE_JOB,
        JobRef(project_id=pid, job_id=uuid_param(request, name)),
        project_id=pid,
        role="viewer",
    )
    if found.kind != kind:
        raise LoupeError("not_found", f"{found.id} is not a {kind} job of this project", path=name)
    return found


async def start(request: web.Request, spec: AutoLabel | Rank) -> InferenceJob:
    pid = project_id(request)
    return await ask(
        request,
        subjects.CREATE_INFERENCE_JOB,
        CreateJobRequest(project_id=pid, job=spec),
        project_id=pid,
        role="manager",
    )


# -- automated labeling ------------------------------------------------------------------------------


async def list_automated_labeling(request: web.Request) -> web.Response:
    return page_of(request, await automated_labeling_jobs(request, await jobs(request, "autolabel")))


async def experiment_model(request: web.Request, experiment_id: str) -> ModelChoice:
    """The model version a training run (a Hasty experiment) made."""
    pid = project_id(request)
    try:
        run_id = str(uuid.UUID(experiment_id))
    except ValueError:
        raise invalid("experiment_id must be the id of a Loupe training run", path="experiment_id") from None
    run = await ask(
        request, subjects.GET_TRAINING_RUN, TrainingRunRef(project_id=pid, run_id=run_id), project_id=pid, role="viewer"
    )
    versions = await ask(request, subjects.LIST_MODEL_VERSIONS, ModelRef(project_id=pid, model=run.model))
    for version in versions.items:
        if version.id == run.version_id:
            return ModelChoice(family=run.family, model=run.model, version=version.version)
    raise LoupeError(
        "conflict", f"training run {run_id} made no model version (it is {run.state})", path="experiment_id"
    )


async def create_automated_labeling(request: web.Request) -> web.Response:
    new = await body(request, NewAutomatedLabeling)
    thresholds = Thresholds(
        confidence=new.confidence_threshold,
        max_detections=new.max_detections_per_image,
        mask_threshold=new.masker_threshold,
        min_size=new.min_size,
    )
    selection = Selection(
        filter=SampleFilter(dataset_ids=[new.dataset_id]) if new.dataset_id else None,
        limit=new.num_images or None,
    )
    # Finish Him writes into the annotations people correct: PRELABELED ground truth, never over theirs.
    spec = AutoLabel(
        model=await experiment_model(request, new.experiment_id),
        selection=selection,
        thresholds=thresholds,
        target="ground-truth",
    )
    return await one_automated_labeling_job(request, await start(request, spec))


async def get_automated_labeling(request: web.Request) -> web.Response:
    return await one_automated_labeling_job(request, await job(request, "job_id", "autolabel"))


async def cancel(request: web.Request, name: str, kind: JobKind) -> InferenceJob:
    pid = project_id(request)
    found = await job(request, name, kind)
    return await ask(
        request, subjects.CANCEL_INFERENCE_JOB, JobRef(project_id=pid, job_id=found.id), project_id=pid, role="manager"
    )


async def cancel_automated_labeling(request: web.Request) -> web.Response:
    return await one_automated_labeling_job(request, await cancel(request, "job_id", "autolabel"))


# -- active learning ---------------------------------------------------------------------------------


async def list_heuristics(request: web.Request) -> web.Response:
    items = [
        {
            "id": hid,
            "model_family": family,
            "name": HEURISTIC_NAMES[heuristic],
            "is_active": True,
            "wiki_url": None,
            "heuristic": heuristic,
        }
        for hid, (heuristic, family) in HEURISTICS.items()
    ]
    return page_of(request, items)


async def create_ranking_session(request: web.Request) -> web.Response:
    new = await body(request, NewRankingSession)
    if new.heuristic_id not in HEURISTICS:
        raise invalid(
            "heuristic_id names no heuristic: GET .../active_learning/heuristics lists them", path="heuristic_id"
        )
    heuristic, default_family = HEURISTICS[new.heuristic_id]
    family = new.model_family or default_family
    if family not in FAMILIES:
        raise invalid(f"model_family must be one of {', '.join(FAMILIES)}", path="model_family")
    # Rank's own default selection: samples without a person's ground truth, here within the datasets given.
    selection = Selection(
        filter=SampleFilter(dataset_ids=new.dataset_ids or None, labels=LabelFilter(status=["UNLABELED", "PRELABELED"]))
    )
    spec = Rank(
        model=ModelChoice(family=FAMILIES[family]), heuristic=heuristic, count=new.num_images, selection=selection
    )
    return json(ranking_session(await start(request, spec), new.session_name))


async def list_ranking_sessions(request: web.Request) -> web.Response:
    return page_of(request, [ranking_session(found) for found in await jobs(request, "ranking")])


async def get_ranking_session(request: web.Request) -> web.Response:
    return json(ranking_session(await job(request, "session_id", "ranking")))


async def cancel_ranking_session(request: web.Request) -> web.Response:
    return json(ranking_session(await cancel(request, "session_id", "ranking")))


async def ranked_images(request: web.Request) -> web.Response:
    """The session's picks, best first, as Hasty pages them."""
    pid = project_id(request)
    found = await job(request, "session_id", "ranking")
    results = await ask_all(
        request,
        subjects.LIST_INFERENCE_RESULTS,
        lambda cursor: ResultsRequest(project_id=pid, job_id=found.id, query=ResultsPage(limit=1000, cursor=cursor)),
        project_id=pid,
        role="viewer",
    )
    return page_of(request, [{"image_id": r.sample_id, "rank": r.rank, "score": r.score} for r in results])


# The seed document shows a session's fields but not its paths: both spellings answer.
SESSIONS = ("ranking_sessions", "ranking_session")
ROUTES: Routes = [
    ("GET", AUTOMATED_LABELING, list_automated_labeling),
    ("POST", AUTOMATED_LABELING, create_automated_labeling),
    ("GET", AUTOMATED_LABELING + "/{job_id}", get_automated_labeling),
    ("POST", AUTOMATED_LABELING + "/{job_id}/cancel", cancel_automated_labeling),
    ("GET", ACTIVE_LEARNING + "/heuristics", list_heuristics),
    *(
        route
        for sessions in SESSIONS
        for route in (
            ("GET", f"{ACTIVE_LEARNING}/{sessions}", list_ranking_sessions),
            ("POST", f"{ACTIVE_LEARNING}/{sessions}", create_ranking_session),
            ("GET", f"{ACTIVE_LEARNING}/{sessions}/{{session_id}}", get_ranking_session),
            ("POST", f"{ACTIVE_LEARNING}/{sessions}/{{session_id}}/cancel", cancel_ranking_session),
            ("GET", f"{ACTIVE_LEARNING}/{sessions}/{{session_id}}/images", ranked_images),
        )
    ),
]
