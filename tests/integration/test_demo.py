"""`loupe demo` against the real stack, at a small size: everything it says it made is there, and it says
where; an API error ends it with the problem's detail. Also synth.upload_unlabelled, which it uses."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import pytest

from loupe import synth
from loupe.cli import main
from loupe.stack import Stack
from tests.helpers import call, eventually

# 60 labelled images, 30 new ones and 3 shifted, 2 epochs: under a minute of the stack's time on 2 cores.
pytestmark = pytest.mark.timeout(600)  # the stack trains one run at a time: other tests' runs may come first

SMALL = ["--images", "60", "--new", "30", "--epochs", "2"]
INCOMING = 33


async def test_the_demo_trains_labels_ranks_and_embeds_and_says_where_to_look(
    api: aiohttp.ClientSession, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command runs its own event loop, as from a shell; a thread keeps it off the tests' loop.
    argv = ["demo", *SMALL, "--url", stack.gateway_url, "--token", stack.admin_key]
    assert await asyncio.to_thread(main, argv) == 0
    out, err = capsys.readouterr()
    assert "failed" not in err
    found = re.search(r"^Done in .+: project (\S+)$", out, re.MULTILINE)
    assert found, out
    project = f"/v1/projects/{found.group(1)}"
    # Progress as it went: each step, each epoch of both runs, and the jobs.
    for line in (
        "1/5",
        "2/5",
        "3/5",
        "4/5",
        "5/5",
        "detector: epoch 2/2",
        "tagger: epoch 2/2",
        "ranking (detector v1)",
    ):
        assert line in out, (line, out)

    tagger = await call(api, "GET", f"{project}/models/tagger/versions/1")
    assert tagger["pretrained"] == {"model": "detector", "version": 1}
    detector = await call(api, "GET", f"{project}/models/detector/versions/1")
    assert detector["family"] == "detection"

    jobs = (await call(api, "GET", f"{project}/inference/jobs"))["items"]
    assert sorted(job["kind"] for job in jobs) == ["autolabel", "autolabel", "embeddings", "ranking"]
    assert all(job["state"] == "SUCCEEDED" and job["done"] == INCOMING for job in jobs), jobs
    datasets = (await call(api, "GET", f"{project}/datasets"))["items"]
    incoming = next(d["id"] for d in datasets if d["name"] == "incoming")
    count = await call(
        api, "POST", f"{project}/samples/count", json={"dataset_ids": [incoming], "statuses": ["AUTO_LABELLED"]}
    )
    assert count["count"] == INCOMING
    # Boxes in `predictions`, tags as pre-labels in ground truth: one job does not undo the other.
    sample_id = (await call(api, "GET", f"{project}/samples", params={"dataset_id": incoming, "limit": 1}))["items"][0][
        "id"
    ]
    predictions = await call(api, "GET", f"{project}/samples/{sample_id}/labels/predictions")
    assert predictions["status"] == "PRELABELED"
    tags = await call(api, "GET", f"{project}/samples/{sample_id}/labels/ground-truth")
    assert tags["status"] == "PRELABELED" and tags["tag_class_ids"], tags

    ranking = next(job for job in jobs if job["kind"] == "ranking")
    assert (await call(api, "GET", f"{project}/views/{ranking['view_id']}"))["item_count"] == 3
    spaces = (await call(api, "GET", f"{project}/embeddings"))["items"]
    assert {s["space"]: s["count"] for s in spaces} == {"detector:1": INCOMING}
    status = (await call(api, "GET", f"{project}/tagging/status"))["items"]
    assert {s["status"] for s in status} == {"live"}

    where = stack.gateway_url + project
    for url in (
        f"{where}/models/detector/versions/1",
        f"{where}/models/tagger/versions/1",
        *(f"{where}/inference/jobs/{job['id']}" for job in jobs),
        f"{where}/views/{ranking['view_id']}/samples",
        f"{where}/labelsets/predictions/objects",
        f"{where}/tagging/status",
        f"{stack.gateway_url}/docs",
    ):
        assert url in out, (url, out)


async def test_an_api_error_ends_the_demo_with_the_problems_detail(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["demo", *SMALL, "--url", stack.gateway_url, "--token", "lp_not-a-key", "--quiet"]
    assert await asyncio.to_thread(main, argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "loupe demo failed: POST /v1/projects answered 401: the API key is unknown" in err


async def test_a_ctrl_c_cancels_the_training_run_it_was_following(api: aiohttp.ClientSession, stack: Stack) -> None:
    demo = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "loupe.cli", "demo", "--images", "20", "--epochs", "200"),
        *("--url", stack.gateway_url, "--token", stack.admin_key),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # As from a terminal, even when the tests run where SIGINT is ignored (in the background).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert demo.stdout is not None
    project = None
    async with asyncio.timeout(300):
        while not (line := (await demo.stdout.readline()).decode()).startswith("     detector: "):
            assert line, "the demo ended before training"
            project = project or (found.group(1) if (found := re.search(r"project (\S+):", line)) else None)
    assert project, "the demo did not say its project"
    demo.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(demo.communicate(), 30)
    assert demo.returncode == 130
    assert "loupe demo interrupted" in err.decode()

    async def cancelled() -> bool:
        runs = (await call(api, "GET", f"/v1/projects/{project}/training/runs"))["items"]
        assert [(run["model"], run["state"]) for run in runs] == [("detector", "CANCELLED")]
        return True

    await eventually(cancelled, timeout=60, interval=0.5)


async def test_unlabelled_images_are_uploaded_into_a_dataset_in_order(api: aiohttp.ClientSession, stack: Stack) -> None:
    loaded = await synth.load(
        synth.generate(5, seed=31), stack.gateway_url, stack.admin_key, name="unlabelled", progress=False
    )
    images = list(synth.generate(4, seed=32))
    first = await synth.upload_unlabelled(
        images[:3], stack.gateway_url, stack.admin_key, project=loaded.project_id, dataset="new", progress=False
    )
    second = await synth.upload_unlabelled(
        images[3:], stack.gateway_url, stack.admin_key, project=loaded.project_id, dataset="new", progress=False
    )
    assert first.dataset_id == second.dataset_id  # made once, then reused
    project = f"/v1/projects/{loaded.project_id}"
    for image, sample_id in zip(images, first.sample_ids + second.sample_ids, strict=True):
        assert (await call(api, "GET", f"{project}/samples/{sample_id}"))["name"] == image.name
        label = await call(api, "GET", f"{project}/samples/{sample_id}/labels/ground-truth")
        assert label["status"] == "UNLABELED" and not label["objects"], label
