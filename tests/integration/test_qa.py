"""Label QA end to end: a run compares a `model` labelset with ground truth as a job; its findings are
listed, filtered, resolved and reopened through the gateway."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import aiohttp
import msgspec
import pytest
from nats.js.api import DeliverPolicy

from proto import subjects
from proto.common import EventEnvelope
from shared.bus import Bus
from tests.helpers import Project, call, finished, make_project


@dataclass
class Labelled:
    """A project with ground truth and `model` predictions, and the findings they make on sample 0."""

    project: Project
    expected: list[tuple[str, str | None, str | None]]  # (kind, ground truth object, prediction object)


async def put(project: Project, sample: str, labelset: str, objects: list[dict], tags: list[str]) -> list[str]:
    label = await call(project.api, "PUT", project.label(sample, labelset),
                       json={"objects": objects, "tag_class_ids": tags})
    return [o["id"] for o in label["objects"]]


@pytest.fixture
async def labelled(api: aiohttp.ClientSession, unique: str) -> Labelled:
    project = await make_project(api, unique, samples=3)
    await call(api, "POST", f"{project.path}/labelsets", 201, json={"name": "model"})
    occlusion = project.attribute
    day, night = project.tags["day"], project.tags["night"]
    truth = await put(project, project.samples[0], "ground-truth", [
        project.box(10, 10, 110, 110, attributes={occlusion: 1}),
        project.box(300, 300, 400, 400),
        project.box(500, 10, 600, 110),  # nothing predicts it
        project.box(200, 10, 260, 100, cls="person"),
    ], [day])
    predicted = await put(project, project.samples[0], "model", [
        project.box(10, 10, 110, 110, attributes={occlusion: 2}, confidence=0.9),
        project.box(300, 300, 345, 400, confidence=0.8),  # IoU 0.45
        project.box(200, 10, 260, 100, confidence=0.9),
        project.box(10, 300, 100, 400, confidence=0.95),  # ground truth lacks it
        project.box(500, 200, 560, 260, confidence=0.2),  # too unsure to count
    ], [night])
    expected = [
        ("ATTR_MISCLASSIFICATION", truth[0], predicted[0]), ("MISCLASSIFICATION", truth[3], predicted[2]),
        ("LOW_IOU", truth[1], predicted[1]), ("MISSING_LABEL", None, predicted[3]), ("EXTRA_LABEL", truth[2], None),
        ("TAG_MISCLASSIFICATION", None, None)]
    same = [project.box(50, 50, 150, 150)]
    await put(project, project.samples[1], "ground-truth", same, [day])
    await put(project, project.samples[1], "model", same, [day])
    await put(project, project.samples[2], "ground-truth", same, [])  # no predictions: not compared
    return Labelled(project, expected)


async def test_a_run_finds_each_kind_where_expected(api: aiohttp.ClientSession, labelled: Labelled,
                                                     bus: Bus) -> None:
    project = labelled.project
    announced: asyncio.Queue[EventEnvelope] = asyncio.Queue()

    async def put_event(msg) -> None:
        announced.put_nowait(msgspec.json.decode(msg.data, type=EventEnvelope))

    subscription = await bus.js.subscribe(subjects.QA_RUN_FINISHED.subject, cb=put_event, ordered_consumer=True,
                                          deliver_policy=DeliverPolicy.NEW)
    run = await call(api, "POST", f"{project.path}/qa-runs", 201, json={"predictions": "model"})
    assert run["state"] == "PENDING" and run["ground_truth"] == "ground-truth" and run["options"]["iou_threshold"] == 0.5
    run = await finished(api, f"{project.path}/qa-runs/{run['id']}")
    assert run["state"] == "SUCCEEDED" and run["error"] is None and run["finished_at"]
    assert run["samples"] == 2 and run["findings"] == 6
    assert run["counts"] == {kind: 1 for kind, _, _ in labelled.expected}
    page = await call(api, "GET", f"{project.path}/qa-runs/{run['id']}/findings")
    assert page["total"] == 6
    found = [(f["kind"], f.get("ground_truth_object_id"), f.get("prediction_object_id")) for f in page["items"]]
    assert found == labelled.expected
    assert {f["sample_id"] for f in page["items"]} == {project.samples[0]}
    low_iou = page["items"][2]
    assert low_iou["iou"] == pytest.approx(0.45, abs=0.01) and low_iou["confidence"] == 0.8
    assert low_iou["class_id"] == project.classes["car"]
    misclassified = page["items"][1]
    assert (misclassified["class_id"], misclassified["predicted_class_id"]) == (project.classes["person"],
                                                                                project.classes["car"])
    tag = page["items"][5]
    assert (tag["tag_class_id"], tag["predicted_class_id"]) == (project.tags["day"], project.tags["night"])
    assert page["items"][0]["attribute_id"] == project.attribute
    listed = await call(api, "GET", f"{project.path}/qa-runs")
    assert listed["items"] == [run]
    envelope = await asyncio.wait_for(announced.get(), 10)
    await subscription.unsubscribe()
    assert envelope.project == project.id and msgspec.to_builtins(envelope.data) == run


async def test_findings_filter_resolve_and_reopen(api: aiohttp.ClientSession, labelled: Labelled,
                                                  user_client) -> None:
    project = labelled.project
    run = await call(api, "POST", f"{project.path}/qa-runs", 201, json={"predictions": "model"})
    run = await finished(api, f"{project.path}/qa-runs/{run['id']}")
    findings = f"{project.path}/qa-runs/{run['id']}/findings"
    low = await call(api, "GET", findings, params={"kind": "LOW_IOU"})
    assert low["total"] == 1 and [f["kind"] for f in low["items"]] == ["LOW_IOU"]
    assert (await call(api, "GET", findings, params={"sample_id": project.samples[1]})) == {"items": [], "total": 0}
    second_page = await call(api, "GET", findings, params={"offset": 4, "limit": 5})
    assert [f["kind"] for f in second_page["items"]] == ["EXTRA_LABEL", "TAG_MISCLASSIFICATION"]
    assert second_page["total"] == 6

    reviewer_id, reviewer = await user_client(project.id, "reviewer")
    _, viewer = await user_client(project.id, "viewer")
    target = f"{project.path}/findings/{low['items'][0]['id']}"
    await call(viewer, "PATCH", target, 403, json={"resolution": "FIXED"})
    resolved = await call(reviewer, "PATCH", target, json={"resolution": "NOT_AN_ERROR"})
    assert resolved["resolution"] == "NOT_AN_ERROR" and resolved["resolved_by"] == reviewer_id
    assert resolved["resolved_at"]
    done = await call(viewer, "GET", findings, params={"resolved": "true"})
    assert [f["id"] for f in done["items"]] == [resolved["id"]]
    assert (await call(viewer, "GET", findings, params={"resolved": "false"}))["total"] == 5
    reopened = await call(reviewer, "PATCH", target, json={"resolution": None})
    assert reopened["resolution"] is None and reopened.get("resolved_by") is None
    assert (await call(api, "GET", findings, params={"resolved": "true"}))["total"] == 0


async def test_bad_runs_are_refused(api: aiohttp.ClientSession, labelled: Labelled, user_client) -> None:
    project = labelled.project
    runs = f"{project.path}/qa-runs"
    missing = await call(api, "POST", runs, 404, json={"predictions": "nope"})
    assert missing["path"] == "$.predictions" and "nope" in missing["detail"]
    missing = await call(api, "POST", runs, 404, json={"predictions": "model", "ground_truth": "gone"})
    assert missing["path"] == "$.ground_truth" and "gone" in missing["detail"]
    same = await call(api, "POST", runs, 422, json={"predictions": "ground-truth"})
    assert same["path"] == "$.predictions"
    await call(api, "POST", runs, 422, json={"predictions": "model", "options": {"iou_threshold": 0}})
    bad = await call(api, "POST", runs, 422, json={"predictions": "model", "dataset_id": "train"})
    assert bad["path"] == "$.dataset_id"
    await call(api, "POST", runs, 404, json={"predictions": "model", "dataset_id": str(uuid.uuid4())})
    _, viewer = await user_client(project.id, "viewer")
    await call(viewer, "POST", runs, 403, json={"predictions": "model"})
    assert (await call(viewer, "GET", runs))["items"] == []
    await call(api, "GET", f"{runs}/{uuid.uuid4()}", 404)
    await call(api, "GET", f"{runs}/{uuid.uuid4()}/findings", 404)
    await call(api, "PATCH", f"{project.path}/findings/{uuid.uuid4()}", 404, json={"resolution": "FIXED"})
