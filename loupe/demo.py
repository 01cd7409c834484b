"""`loupe demo`: the five-minute tour of a running Loupe, through the same public REST calls any client
makes. It loads labelled synthetic images into a new project, trains a detector and a tagger on them,
uploads new unlabelled images (some from a shifted distribution), auto-labels and tags those through
Triton, ranks them for labelling and embeds them for similarity search, and ends with the URLs of
everything it made.

Every run makes a new project, so it can be run again at any time; an interrupted run leaves its project
as far as it got.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from loupe import synth
from shared.errors import LoupeError

# Different seeds, so the new images are not the training images again.
TRAIN_SEED, NEW_SEED, SHIFTED_SEED = 0, 1, 2
# One image from the shifted distribution for every this many new ones: what the ranking should find.
NEW_PER_SHIFTED = 10
# What reaches good accuracy in a few CPU epochs (bench/training.py's quick plans): the detector from
# scratch, the tagger from the detector's weights, as shapes are not learnt from image-level tags alone.
DETECTOR_LEARNING_RATE = 5e-3
TAGGER_LEARNING_RATE = 2e-3
POLL_S = 0.5
# Generous bounds on a run and a job, so that a stack that stopped working ends the demo with a message.
TRAINING_WITHIN_S = 3600.0
JOB_WITHIN_S = 1800.0
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")

Say = Callable[[str], None]


@dataclass(frozen=True)
class Tour:
    """What the demo made."""

    project_id: str
    versions: list[dict[str, Any]]  # the detector's and the tagger's model versions
    jobs: list[dict[str, Any]]  # the inference jobs, as they finished
    view_id: str  # the ranking's picks
    ranking: str  # how many of the picks are shifted images, in words


async def tour(url: str, token: str, *, images: int, new: int, epochs: int, say: Say, progress: bool) -> Tour:
    """The whole demo against the gateway at `url`; `say` hears each step and its progress."""
    shifted = max(1, new // NEW_PER_SHIFTED)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        api = synth.Api(http, url, token)

        say(f"1/5  a project of {images} labelled synthetic images (shapes, with boxes, polygons and tags)")
        project_id = await make_project(url, token, images, say, progress)
        project = f"/v1/projects/{project_id}"

        say(f"2/5  training a detector and a tagger on the CPU, {epochs} epochs each")
        detection = {"family": "detection", "model": "detector", "config": config(epochs, DETECTOR_LEARNING_RATE)}
        detector = await train(api, project, detection, say)
        tagging = {
            "family": "tagging",
            "model": "tagger",
            "config": config(epochs, TAGGER_LEARNING_RATE),
            "pretrained": {"model": detector["model"], "version": detector["version"]},
        }
        tagger = await train(api, project, tagging, say)

        say(f"3/5  {new} new unlabelled images and {shifted} from a shifted distribution into dataset incoming")
        uploaded = await upload_new(url, token, project_id, new, shifted, say, progress)
        incoming = {"filter": {"dataset_ids": [uploaded.dataset_id]}}
        autolabel = {"kind": "autolabel", "model": {"family": "detection"}, "selection": incoming}
        jobs = [
            await run_job(api, project, "auto-labelled with the detector into labelset predictions", autolabel, say)
        ]
        # Into ground truth, as pre-labels for people to confirm: a second auto-label job into `predictions`
        # would replace the detector's boxes there, as a job writes each label whole.
        tag = {"kind": "autolabel", "model": {"family": "tagging"}, "selection": incoming, "target": "ground-truth"}
        jobs.append(await run_job(api, project, "tagged with the tagger as pre-labels in ground-truth", tag, say))

        say("4/5  ranking incoming for labelling (entropy) and embedding it for similarity search")
        rank = {
            "kind": "ranking",
            "model": {"family": "detection"},
            "heuristic": "entropy",
            "count": shifted,
            "selection": incoming,
            "make_view": True,
            "set_priority": True,
        }
        what = f"ranked by entropy: the best {shifted} became a view and go first in the labelling queue"
        ranking = await run_job(api, project, what, rank, say)
        ranked = await shifted_among_picks(api, project, ranking, uploaded.sample_ids[new:], new + shifted)
        say(f"     {ranked}")
        embed = {"kind": "embeddings", "model": {"family": "detection"}, "selection": incoming}
        jobs += [ranking, await run_job(api, project, "embedded with the detector", embed, say)]

        say("5/5  tag status")
        status = (await api.call("GET", f"{project}/tagging/status"))["items"]
        say("     " + ", ".join(f"{item['group']} {item['status']}" for item in status))
    return Tour(project_id, [detector, tagger], jobs, ranking["view_id"], ranked)


async def make_project(url: str, token: str, images: int, say: Say, progress: bool) -> str:
    """A new project of labelled synthetic images in datasets train and val; its id."""
    began = time.monotonic()
    loaded = await synth.load(
        synth.generate(images, seed=TRAIN_SEED),
        url,
        token,
        name=f"loupe demo {time.strftime('%Y-%m-%d %H:%M:%S')}",
        total=images,
        progress=progress,
    )
    say(f"     project {loaded.project_id}: datasets train and val, {loaded.objects} objects ({seconds(began)})")
    return loaded.project_id


async def upload_new(
    url: str, token: str, project_id: str, new: int, shifted: int, say: Say, progress: bool
) -> synth.Uploaded:
    """`new` unlabelled images, then `shifted` ones of the shifted distribution, into dataset incoming."""
    began = time.monotonic()
    uploaded = await synth.upload_unlabelled(
        itertools.chain(synth.generate(new, seed=NEW_SEED), synth.generate(shifted, seed=SHIFTED_SEED, shift=True)),
        url,
        token,
        project=project_id,
        dataset="incoming",
        total=new + shifted,
        progress=progress,
    )
    say(f"     {len(uploaded.sample_ids)} images uploaded and ingested ({seconds(began)})")
    return uploaded


def config(epochs: int, learning_rate: float) -> dict[str, Any]:
    return {"epochs": epochs, "batch_size": 16, "image_size": 64, "learning_rate": learning_rate}


async def train(api: synth.Api, project: str, body: dict[str, Any], say: Say) -> dict[str, Any]:
    """Start a training run, follow it epoch by epoch, and return the model version it made."""
    began = time.monotonic()
    run = await api.call("POST", f"{project}/training/runs", body)
    path = f"{project}/training/runs/{run['id']}"
    name = run["model"]
    said = None
    deadline = began + TRAINING_WITHIN_S
    async with cancelled_when_interrupted(api, path):
        while True:
            progress = (run["state"], run["epoch"])
            if progress != said:
                said = progress
                say(f"     {name}: {describe_run(run)}")
            if run["state"] in FINISHED:
                break
            if time.monotonic() > deadline:
                raise LoupeError("unavailable", f"training run {path} did not finish within {TRAINING_WITHIN_S:.0f} s")
            await asyncio.sleep(POLL_S)
            run = await api.call("GET", path)
    if run["state"] != "SUCCEEDED":
        raise LoupeError("internal", f"training run {path} ended {run['state']}: {run['error']} (its log: {path}/log)")
    model = await api.call("GET", f"{project}/models/{name}")
    version = await api.call("GET", f"{project}/models/{name}/versions/{model['latest_version']}")
    say(
        f"     {name} version {version['version']}: {headline(version['metrics'])} on "
        f"{version['validation_samples']} validation images ({seconds(began)})"
    )
    return version


def describe_run(run: dict[str, Any]) -> str:
    if run["state"] != "RUNNING" or not run["epoch"]:
        return run["state"].lower()
    eta = f", {run['eta_s']:.0f} s to go" if run["eta_s"] is not None else ""
    return f"epoch {run['epoch']}/{run['epochs']}, loss {run['loss']:.3f}, {headline(run['metrics'])}{eta}"


def headline(metrics: dict[str, float]) -> str:
    """The overall metrics, without the per-group ones (`accuracy/shape`)."""
    return ", ".join(f"{name} {value:.3f}" for name, value in sorted(metrics.items()) if "/" not in name)


async def run_job(api: synth.Api, project: str, what: str, body: dict[str, Any], say: Say) -> dict[str, Any]:
    """Start an inference job, follow its progress to the end, and say `what` it did."""
    began = time.monotonic()
    job = await api.call("POST", f"{project}/inference/jobs", body)
    path = f"{project}/inference/jobs/{job['id']}"
    said = None
    deadline = began + JOB_WITHIN_S
    async with cancelled_when_interrupted(api, path):
        while job["state"] not in FINISHED:
            if time.monotonic() > deadline:
                raise LoupeError("unavailable", f"inference job {path} did not finish within {JOB_WITHIN_S:.0f} s")
            await asyncio.sleep(POLL_S)
            job = await api.call("GET", path)
            if job["done"] and job["done"] != said:
                said = job["done"]
                rate = f", {job['images_per_s']:.0f} images/s" if job["images_per_s"] else ""
                say(f"     {job['kind']} ({job['model']} v{job['version']}): {job['done']}/{job['total']}{rate}")
    if job["state"] != "SUCCEEDED":
        raise LoupeError("internal", f"inference job {path} ended {job['state']}: {job['error']}")
    failed = f", {job['failed']} unreadable" if job["failed"] else ""
    say(f"     {job['done']} images {what}{failed} ({seconds(began)})")
    return job


@contextlib.asynccontextmanager
async def cancelled_when_interrupted(api: synth.Api, path: str) -> AsyncIterator[None]:
    """A Ctrl-C while the demo follows a training run or a job cancels that too: nobody waits for it any more,
    and it would keep the CPU busy for the next run of the demo."""
    try:
        yield
    except asyncio.CancelledError:
        with contextlib.suppress(LoupeError, aiohttp.ClientError, TimeoutError):
            await api.call("POST", f"{path}/cancel")
        raise


async def results(api: synth.Api, project: str, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = await api.call("GET", f"{project}/inference/jobs/{job_id}/results", params=params)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def shifted_among_picks(
    api: synth.Api, project: str, ranking: dict[str, Any], shifted_ids: list[str], total: int
) -> str:
    """How many of the ranking's picks are shifted images, against what picking at random would find."""
    picks = await results(api, project, ranking["id"])
    shifted = set(shifted_ids)
    found = sum(pick["sample_id"] in shifted for pick in picks)
    chance = len(picks) * len(shifted_ids) / total
    return f"{found} of the {len(picks)} picks are shifted images; picking at random would find about {chance:.0f}"


def seconds(began: float) -> str:
    return duration(time.monotonic() - began)


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def summary(tour: Tour, url: str, took: float) -> str:
    """Where to look at everything the demo made."""
    base = url.rstrip("/")
    project = f"{base}/v1/projects/{tour.project_id}"
    detector = tour.versions[0]
    lines = [
        f"Done in {duration(took)}: project {tour.project_id}",
        'Where to look (send your key: -H "Authorization: Bearer $LOUPE_API_KEY"):',
        f"  project          {project}",
    ]
    lines += [
        f"  {version['model']:<16} {project}/models/{version['model']}/versions/{version['version']}"
        f"   ({headline(version['metrics'])})"
        for version in tour.versions
    ]
    lines.append(f"  training runs    {project}/training/runs")
    lines += [f"  {job['kind'] + ' job':<16} {project}/inference/jobs/{job['id']}" for job in tour.jobs]
    lines += [
        f"  job results      {project}/inference/jobs/<job id>/results",
        f"  ranking view     {project}/views/{tour.view_id}/samples   ({tour.ranking})",
        f"  label queue      POST {project}/queues/label/next   (hands out the ranking's picks first)",
        f"  predictions      {project}/labelsets/predictions/objects",
        f"  tag status       {project}/tagging/status",
        f"  similar images   POST {project}/samples/similar   "
        f'{{"space": "{detector["model"]}:{detector["version"]}", "sample_id": "<sample id>"}}',
        f"  API docs         {base}/docs",
    ]
    return "\n".join(lines)


def run_command(args: argparse.Namespace) -> int:
    """`loupe demo`: the tour, then where to look; an error says what went wrong and exits 1."""
    if not args.token:
        print("loupe demo: give the API key with --token or LOUPE_API_KEY (`loupe up` prints it)", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    began = time.monotonic()
    try:
        made = asyncio.run(
            tour(
                args.url,
                args.token,
                images=args.images,
                new=args.new,
                epochs=args.epochs,
                say=say,
                progress=not args.quiet,
            )
        )
    except LoupeError as error:
        print(f"loupe demo failed: {error}", file=sys.stderr)
        return 1
    except aiohttp.ClientConnectorError as error:
        print(f"loupe demo failed: cannot reach {args.url} ({error}); is `loupe up` running?", file=sys.stderr)
        return 1
    except (aiohttp.ClientError, TimeoutError) as error:
        print(f"loupe demo failed: talking to {args.url}: {error!r}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\nloupe demo interrupted: what it made stays in its project, but a run or job it was waiting for is cancelled",
            file=sys.stderr,
        )
        return 130
    print(summary(made, args.url, time.monotonic() - began))
    return 0
