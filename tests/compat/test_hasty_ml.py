"""Hasty's ML endpoints on Loupe's inference jobs: the SDK's automated labeling ("Finish Him") with a tiny
trained detector, and active-learning heuristics and ranking sessions over plain HTTP (the SDK has none)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from loupe import synth
from loupe.stack import Stack
from tests.compat.sdk import flow_env, run_flow
from tests.compat.test_hasty import hasty_call
from tests.helpers import call, eventually, train

pytestmark = pytest.mark.timeout(400)


@dataclass(frozen=True)
class Trained:
    project_id: str
    run_id: str
    incoming: str  # a dataset of 10 unlabelled images


@pytest.fixture(scope="module")
async def trained(stack: Stack, api: aiohttp.ClientSession) -> Trained:
    """A tiny detector trained in seconds, as the console's tests train theirs, and 10 unlabelled images."""
    loaded = await synth.load(
        synth.generate(40, size=32, seed=5),
        stack.gateway_url,
        stack.admin_key,
        name=f"hasty ml {uuid.uuid4().hex[:8]}",
        progress=False,
    )
    run = await train(api, loaded.project_id)
    incoming = await synth.upload_unlabelled(
        synth.generate(10, size=32, seed=6),
        stack.gateway_url,
        stack.admin_key,
        project=loaded.project_id,
        progress=False,
    )
    return Trained(loaded.project_id, run["id"], incoming.dataset_id)


@pytest.fixture(scope="module")
async def hasty(stack: Stack) -> Any:
    async with aiohttp.ClientSession(f"{stack.gateway_url}/hasty/", headers={"X-Api-Key": stack.admin_key}) as session:
        yield session


async def test_the_sdks_automated_labeling_runs_an_autolabel_job(
    stack: Stack, sdk_python: Path, api: aiohttp.ClientSession, trained: Trained
) -> None:
    env = {
        **flow_env(stack.gateway_url, stack.segments_url, stack.admin_key)["hasty_flow"],
        "HASTY_PROJECT_ID": trained.project_id,
        "HASTY_EXPERIMENT_ID": trained.run_id,
        "HASTY_DATASET_ID": trained.incoming,
    }
    seen = await asyncio.to_thread(run_flow, sdk_python, "hasty_ml_flow", env)
    assert seen["experiment_id"] == trained.run_id and seen["created"] in ("PENDING", "RUNNING", "DONE")
    assert (seen["status"], seen["progress"]) == ("DONE", 1.0), seen
    assert seen["id"] in seen["listed"]
    # The native job is the same one: an auto-label job of the tiny detector into ground truth.
    job = await call(api, "GET", f"/v1/projects/{trained.project_id}/inference/jobs/{seen['id']}")
    assert (job["kind"], job["model"], job["spec"]["target"], job["total"]) == ("autolabel", "tiny", "ground-truth", 10)


async def test_a_ranking_session_ranks_with_the_heuristic_and_model_family(
    hasty: aiohttp.ClientSession, api: aiohttp.ClientSession, trained: Trained
) -> None:
    project = f"v1/projects/{trained.project_id}"
    heuristics = await hasty_call(hasty, "GET", f"{project}/active_learning/heuristics")
    entropy = next(h for h in heuristics["items"] if (h["name"], h["model_family"]) == ("Entropy", "detector"))
    assert heuristics["meta"]["total"] == len(heuristics["items"]) == 25

    session = await hasty_call(
        hasty,
        "POST",
        f"{project}/active_learning/ranking_sessions",
        json={
            "heuristic_id": entropy["id"],
            "model_family": "detector",
            "num_images": 3,
            "dataset_ids": [trained.incoming],
            "session_name": "My ranking session",
        },
    )
    assert (session["heuristic_id"], session["heuristic_name"], session["session_name"]) == (
        entropy["id"],
        "Entropy",
        "My ranking session",
    )

    async def done() -> dict:
        got = await hasty_call(hasty, "GET", f"{project}/active_learning/ranking_session/{session['session_id']}")
        assert got["status"] not in ("FAILED", "CANCELLED"), got
        return got if got["status"] == "DONE" else {}

    await eventually(done, timeout=120, interval=0.5)
    ranked = await hasty_call(
        hasty, "GET", f"{project}/active_learning/ranking_sessions/{session['session_id']}/images"
    )
    assert [r["rank"] for r in ranked["items"]] == [1, 2, 3] and ranked["meta"]["total"] == 3
    listed = await hasty_call(hasty, "GET", f"{project}/active_learning/ranking_sessions")
    assert session["session_id"] in [s["session_id"] for s in listed["items"]]
    native = await call(api, "GET", f"/v1/projects/{trained.project_id}/inference/jobs/{session['session_id']}")
    assert (native["kind"], native["spec"]["heuristic"], native["family"]) == ("ranking", "entropy", "detection")


async def test_bad_ml_requests_answer_400_or_404(hasty: aiohttp.ClientSession, trained: Trained) -> None:
    project = f"v1/projects/{trained.project_id}"
    for path, body, status in (
        ("automated_labeling", {"experiment_id": "not a run"}, 400),
        ("automated_labeling", {"experiment_id": str(uuid.uuid4())}, 404),
        ("active_learning/ranking_sessions", {"heuristic_id": str(uuid.uuid4())}, 400),
    ):
        async with hasty.post(f"{project}/{path}", json=body) as response:
            assert response.status == status, (path, await response.text())
            assert (await response.json())["message"]
    async with hasty.get(f"{project}/automated_labeling/{uuid.uuid4()}") as response:
        assert response.status == 404
