"""The error finder: Loupe's label QA runs, which compare a predictions labelset with the ground truth,
and their findings (Hasty's errors). A run's id and a finding's id are Loupe's."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from proto import review, subjects
from services.gateway.dialects.hasty.common import PROJECT, Routes, ask, json, page, page_of, paging, timestamp
from services.gateway.dialects.requests import body, project_id, uuid_param
from shared.errors import invalid

RUNS = PROJECT + "/error_finder/runs"
STATES = {"PENDING": "PENDING", "RUNNING": "RUNNING", "SUCCEEDED": "DONE", "FAILED": "FAILED"}
USER_ACTIONS = {"ALL": None, "RESOLVED": True, "UNRESOLVED": False}
MAX_FINDINGS = 1000  # a page of the native listing


class NewRun(msgspec.Struct, kw_only=True):
    predictions: str  # the labelset whose objects judge the ground truth
    dataset_id: str | None = None
    iou_threshold: float | None = None
    min_confidence: float | None = None


class Resolution(msgspec.Struct, kw_only=True):
    # NOT_AN_ERROR or FIXED; null reopens the error
    resolution: review.Resolution | None = None


def run_json(run: review.QaRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "project_id": run.project_id,
        "status": STATES[run.state],
        "predictions": run.predictions,
        "dataset_id": run.dataset_id,
        "images_processed": run.samples,
        "errors": run.findings,
        "error_counts": run.counts,
        "started_on": timestamp(run.created_at),
        "completed_on": timestamp(run.finished_at),
        "error": run.error,
    }


def finding_json(finding: review.Finding) -> dict[str, Any]:
    return {
        "id": finding.id,
        "run_id": finding.run_id,
        "image_id": finding.sample_id,
        "error_type": finding.kind,
        "label_id": finding.ground_truth_object_id,
        "predicted_label_id": finding.prediction_object_id,
        "class_id": finding.class_id,
        "predicted_class_id": finding.predicted_class_id,
        "tag_class_id": finding.tag_class_id,
        "attribute_id": finding.attribute_id,
        "iou": finding.iou,
        "confidence": finding.confidence,
        "user_action": "RESOLVED" if finding.resolution else "UNRESOLVED",
        "resolution": finding.resolution,
        "resolved_by": finding.resolved_by,
    }


async def list_runs(request: web.Request) -> web.Response:
    pid = project_id(request)
    runs = await ask(
        request, subjects.LIST_QA_RUNS, review.ListQaRunsRequest(project_id=pid), project_id=pid, role="viewer"
    )
    return page_of(request, [run_json(run) for run in runs.items])


async def create_run(request: web.Request) -> web.Response:
    pid = project_id(request)
    new = await body(request, NewRun)
    defaults = review.QaOptions()
    options = review.QaOptions(
        iou_threshold=defaults.iou_threshold if new.iou_threshold is None else new.iou_threshold,
        min_confidence=defaults.min_confidence if new.min_confidence is None else new.min_confidence,
    )
    run = await ask(
        request,
        subjects.CREATE_QA_RUN,
        review.CreateQaRunRequest(
            project_id=pid,
            run=review.CreateQaRun(predictions=new.predictions, dataset_id=new.dataset_id, options=options),
        ),
        project_id=pid,
        role="reviewer",
    )
    return json(run_json(run), status=201)


async def get_run(request: web.Request) -> web.Response:
    pid = project_id(request)
    run = await ask(
        request,
        subjects.GET_QA_RUN,
        review.QaRunRef(project_id=pid, run_id=uuid_param(request, "run_id")),
        project_id=pid,
        role="viewer",
    )
    return json(run_json(run))


def findings_query(request: web.Request, offset: int, limit: int) -> review.ListFindings:
    """The native query of a findings listing filtered by Hasty's `ef_error_type` and `ef_user_action`."""
    kind = request.query.get("ef_error_type") or request.query.get("error_type") or None
    if kind is not None and kind not in review.FINDING_KINDS:
        raise invalid(f"error type {kind!r} is not one of {', '.join(review.FINDING_KINDS)}", path="ef_error_type")
    action = request.query.get("ef_user_action") or request.query.get("user_action") or "ALL"
    if action not in USER_ACTIONS:
        raise invalid(f"user action {action!r} is not one of ALL, RESOLVED, UNRESOLVED", path="ef_user_action")
    return review.ListFindings(kind=kind, resolved=USER_ACTIONS[action], offset=offset, limit=limit)


async def findings_page(request: web.Request, pid: str, run_id: str, query: review.ListFindings) -> review.FindingPage:
    return await ask(
        request,
        subjects.LIST_FINDINGS,
        review.ListFindingsRequest(project_id=pid, run_id=run_id, query=query),
        project_id=pid,
        role="viewer",
    )


async def list_findings(request: web.Request) -> web.Response:
    pid = project_id(request)
    offset, limit = paging(request)
    found = await findings_page(
        request, pid, uuid_param(request, "run_id"), findings_query(request, offset, max(1, min(limit, MAX_FINDINGS)))
    )
    return page([finding_json(f) for f in found.items] if limit else [], found.total, offset, limit)


async def images_with_findings(request: web.Request, pid: str, run_ids: list[str]) -> list[str]:
    """The images that findings of these runs name, for the images listing's `ef_*` filters."""
    sample_ids: dict[str, None] = {}
    for run_id in run_ids:
        offset = 0
        while True:
            found = await findings_page(request, pid, run_id, findings_query(request, offset, MAX_FINDINGS))
            sample_ids.update(dict.fromkeys(f.sample_id for f in found.items))
            offset += len(found.items)
            if not found.items or offset >= found.total:
                break
    return list(sample_ids)


async def resolve(request: web.Request) -> web.Response:
    pid = project_id(request)
    wanted = await body(request, Resolution)
    finding = await ask(
        request,
        subjects.RESOLVE_FINDING,
        review.ResolveFindingRequest(
            project_id=pid,
            finding_id=uuid_param(request, "error_id"),
            body=review.ResolveFinding(resolution=wanted.resolution),
        ),
        project_id=pid,
        role="reviewer",
    )
    return json(finding_json(finding))


ROUTES: Routes = [
    ("GET", RUNS, list_runs),
    ("POST", RUNS, create_run),
    ("GET", RUNS + "/{run_id}", get_run),
    ("GET", RUNS + "/{run_id}/errors", list_findings),
    ("PATCH", PROJECT + "/error_finder/errors/{error_id}", resolve),
    ("PUT", PROJECT + "/error_finder/errors/{error_id}", resolve),
]
