"""Chaos: under a steady load of ingest, label writes, releases and exports, a training run and an auto-label job,
on two replicas of each worker service, SIGKILL a random replica every few seconds and restart NATS, then Postgres,
then S3 mid-load. Once the load ends and the stack settles, nothing accepted is lost or applied twice: every accepted
image is a sample exactly once, every accepted label write is there exactly once, every job reached a final state
(and succeeded), no event was applied twice, every outbox is drained and no message was dead-lettered.

The suite prints what it injected and what it checked (`make test-chaos` runs pytest with -s), and writes the same
report next to the stack's data. CHAOS_PROFILE picks the profile (quick or full); CHAOS_SEED replays the
choice of victims.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import pytest

from loupe import synth
from loupe.stack import Stack, replica_names, service_of
from proto.subjects import WORKER_SERVICES
from tests.helpers import FINISHED, TINY_DETECTOR
from tests.media_server import MediaServer
from tests.replica_stack import (
    dead_letters,
    image_hash,
    inbox_repeats,
    inbox_sizes,
    replica_stack,
    samples_by_hash,
    unpublished_events,
)


@dataclass(frozen=True)
class Profile:
    load_s: float  # how long the load runs at least; the faults fall within it
    kill_every_s: float  # a fault (a SIGKILL, or the next infrastructure restart when due) this often
    timeout_s: int  # the whole test, stack start included


PROFILES = {
    "quick": Profile(load_s=45, kill_every_s=4, timeout_s=900),
    "full": Profile(load_s=180, kill_every_s=3, timeout_s=1800),
}
PROFILE_NAME = os.environ.get("CHAOS_PROFILE", "quick")
if PROFILE_NAME not in PROFILES:
    raise ValueError(f"CHAOS_PROFILE={PROFILE_NAME!r}: expected one of {', '.join(PROFILES)}")
PROFILE = PROFILES[PROFILE_NAME]
SEED = int(os.environ.get("CHAOS_SEED", str(random.randrange(1_000_000))))
REPLICAS = 2
# Restarted in this order at 1/4, 2/4 and 3/4 of the load.
RESTARTED = ("nats", "postgres", "seaweedfs")
IMAGES_PER_IMPORT = 4
IMPORT_EVERY_S, LABEL_EVERY_S, RELEASE_EVERY_S = 1.0, 0.25, 6.0
LABEL_WRITERS = 2
TRAINING_IMAGES = 40
SETTLE_S = 300.0  # for the jobs to finish and the services to come back once the load ends
# The load goes on past load_s until the auto-label job is done, at most this much longer.
MAX_EXTRA_LOAD_S = 240.0
# A write that failed is sent again, with the same object id, for this long at most.
RETRY_FOR_S = 120.0

pytestmark = pytest.mark.timeout(PROFILE.timeout_s)


class Report:
    """What was injected and what was checked, printed at the end whatever the outcome."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        self.lines.append(f"[{time.monotonic() - self.began:6.1f} s] {text}")

    def text(self) -> str:
        return "\n".join(["", "=== chaos report ===", *self.lines, "=== end of chaos report ==="])


@dataclass
class Ledger:
    """What the load asked for, and which requests Loupe accepted (answered 2xx). An "unsure" request got no
    answer (a connection dropped, a 5xx): it may or may not have been applied, and is checked as such."""

    runs: dict[str, list[int]] = field(default_factory=dict)  # accepted ingest run -> its image seeds
    unsure_seeds: list[int] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)  # accepted object ids
    labels_given_up: set[str] = field(default_factory=set)
    label_retries: int = 0
    releases: dict[str, str] = field(default_factory=dict)  # accepted release name -> id
    unsure_releases: list[str] = field(default_factory=list)
    exports: dict[str, list[str]] = field(default_factory=dict)  # release id -> accepted export ids
    unsure_exports: dict[str, int] = field(default_factory=dict)  # release id -> exports with no answer
    training_run: str | None = None
    autolabel_job: str | None = None
    problems: list[str] = field(default_factory=list)  # refusals no fault explains (a 4xx)


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory, media_server: MediaServer) -> Iterator[Stack]:
    with replica_stack(tmp_path_factory.mktemp("chaos"), media_server, REPLICAS, triton=True) as stack:
        yield stack


@pytest.fixture
async def admin(chaos_stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    # No kept-alive connections, so that none outlives a killed gateway connection; every call bounded.
    async with aiohttp.ClientSession(
        chaos_stack.gateway_url,
        headers={"Authorization": f"Bearer {chaos_stack.admin_key}"},
        connector=aiohttp.TCPConnector(force_close=True),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:
        yield session


async def attempt(api: aiohttp.ClientSession, method: str, path: str, **request: Any) -> tuple[int | None, Any]:
    """One call that never raises: its status and body, or (None, why) when no answer came."""
    try:
        async with api.request(method, path, **request) as response:
            body = await response.json(content_type=None) if response.content_length != 0 else None
            return response.status, body
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return None, f"{type(error).__name__}: {error}"


def unsure(status: int | None) -> bool:
    """No answer, or a server-side failure: the request may have been applied or not."""
    return status is None or status >= 500


class Load:
    """The steady load: each part loops while `running()`; what it got accepted goes into the ledger.

    It runs `load_s` at least, and on until the auto-label job (which waits for the training run) is done, so
    that both jobs are under faults too; `MAX_EXTRA_LOAD_S` bounds that."""

    def __init__(
        self, api: aiohttp.ClientSession, project: str, ledger: Ledger, report: Report, injector: Injector
    ) -> None:
        self.api, self.project, self.ledger, self.report, self.injector = api, project, ledger, report, injector
        self.path = f"/v1/projects/{project}"
        self.began = time.monotonic()
        self.jobs_done = asyncio.Event()
        self.next_seed = 1_000_000  # the media server's images from here on: new to this stack

    def running(self) -> bool:
        ran = time.monotonic() - self.began
        return ran < PROFILE.load_s or (not self.jobs_done.is_set() and ran < PROFILE.load_s + MAX_EXTRA_LOAD_S)

    async def ingest(self, dataset_id: str, media_server: MediaServer) -> None:
        while self.running():
            seeds = list(range(self.next_seed, self.next_seed + IMAGES_PER_IMPORT))
            self.next_seed += IMAGES_PER_IMPORT
            items = [{"url": media_server.url(f"/img/{s}.jpg", public=True), "name": f"{s}.jpg"} for s in seeds]
            status, body = await attempt(
                self.api, "POST", f"{self.path}/datasets/{dataset_id}/imports/urls", json={"items": items}
            )
            if status == 202:
                self.ledger.runs[body["id"]] = seeds
            elif unsure(status):
                self.ledger.unsure_seeds += seeds
            else:
                self.ledger.problems.append(f"URL import refused: {status} {body}")
            await asyncio.sleep(IMPORT_EVERY_S)

    async def label_writes(self, samples: list[str], class_id: str, rng: random.Random) -> None:
        """Upserts of one new box each, by an id chosen here, so that a write sent again after a failure can
        never add a second object: it replaces the one the first write may have made."""
        while self.running():
            object_id = str(uuid.uuid4())
            x, y = rng.randrange(40), rng.randrange(40)
            item = {
                "id": object_id,
                "sample_id": rng.choice(samples),
                "class_id": class_id,
                "shape": {"type": "bbox", "box": [x, y, x + 10, y + 10]},
            }
            give_up_at = time.monotonic() + RETRY_FOR_S
            while True:
                status, body = await attempt(
                    self.api, "POST", f"{self.path}/labelsets/ground-truth/objects", json={"items": [item]}
                )
                if status == 200:
                    self.ledger.labels.add(object_id)
                    break
                if not unsure(status) or time.monotonic() > give_up_at:
                    self.ledger.labels_given_up.add(object_id)
                    if not unsure(status):
                        self.ledger.problems.append(f"label write refused: {status} {body}")
                    break
                self.ledger.label_retries += 1
                await asyncio.sleep(0.5)
            await asyncio.sleep(LABEL_EVERY_S)

    async def releases(self) -> None:
        """A release every few seconds, and an export of an earlier one that is done."""
        number = 0
        while self.running():
            number += 1
            name = f"chaos {number}"
            status, body = await attempt(self.api, "POST", f"{self.path}/releases", json={"name": name})
            if status == 201:
                self.ledger.releases[name] = body["id"]
            elif unsure(status):
                self.ledger.unsure_releases.append(name)
            else:
                self.ledger.problems.append(f"release refused: {status} {body}")
            await self.export_one_done_release()
            await asyncio.sleep(RELEASE_EVERY_S)

    async def export_one_done_release(self) -> None:
        for release_id in self.ledger.releases.values():
            if release_id in self.ledger.exports:
                continue
            status, release = await attempt(self.api, "GET", f"{self.path}/releases/{release_id}")
            if status != 200 or release["state"] != "SUCCEEDED":
                continue
            status, body = await attempt(
                self.api, "POST", f"{self.path}/releases/{release_id}/exports", json={"format": "coco"}
            )
            if status == 201:
                self.ledger.exports[release_id] = [body["id"]]
            elif unsure(status):
                self.ledger.unsure_exports[release_id] = self.ledger.unsure_exports.get(release_id, 0) + 1
            else:
                self.ledger.problems.append(f"export refused: {status} {body}")
            return

    async def create_once(self, collection: str, body: dict) -> str | None:
        """Start one job: sent again only while the collection shows none, so a request that was applied
        although its answer was lost is not doubled."""
        give_up_at = time.monotonic() + RETRY_FOR_S
        while time.monotonic() < give_up_at:
            status, made = await attempt(self.api, "POST", f"{self.path}/{collection}", json=body)
            if status == 202:
                return str(made["id"])
            if not unsure(status):
                self.ledger.problems.append(f"POST {collection} refused: {status} {made}")
                return None
            await asyncio.sleep(1)
            status, listed = await attempt(self.api, "GET", f"{self.path}/{collection}")
            if status == 200 and listed["items"]:
                return str(listed["items"][0]["id"])
        self.ledger.problems.append(f"POST {collection} had no answer for {RETRY_FOR_S:.0f} s")
        return None

    async def train_then_autolabel(self, datasets: list[str]) -> None:
        try:
            await self.start_and_follow_jobs(datasets)
        finally:
            self.jobs_done.set()

    async def start_and_follow_jobs(self, datasets: list[str]) -> None:
        self.ledger.training_run = await self.create_once(
            "training/runs", {"family": "detection", "model": "tiny", "config": TINY_DETECTOR}
        )
        self.report(f"training run {self.ledger.training_run} started")
        if self.ledger.training_run is None:
            return
        run = await self.follow(f"training/runs/{self.ledger.training_run}", "training", "training run")
        if run.get("state") != "SUCCEEDED":
            return
        self.ledger.autolabel_job = await self.create_once(
            "inference/jobs",
            {
                "kind": "autolabel",
                "model": {"family": "detection"},
                "selection": {"filter": {"dataset_ids": datasets}},
                # A detector trained for one epoch is unsure of everything: a low bar so that it writes objects.
                "thresholds": {"confidence": 0.01, "max_detections": 5},
            },
        )
        self.report(f"auto-label job {self.ledger.autolabel_job} started")
        if self.ledger.autolabel_job is not None:
            await self.follow(f"inference/jobs/{self.ledger.autolabel_job}", "inference", "auto-label job")

    async def follow(self, job: str, service: str, what: str) -> dict:
        """Wait for a job to run, kill every replica of its service (a job may take less than the faults'
        period, and which replica runs it is JetStream's choice), then wait for its end; what it was then."""
        path, deadline = f"{self.path}/{job}", self.began + PROFILE.load_s + MAX_EXTRA_LOAD_S
        if (await until_state(self.api, path, ("RUNNING", *FINISHED), deadline)).get("state") == "RUNNING":
            for name in replica_names(service, REPLICAS):
                self.injector.kill(name, f" while the {what} runs")
        done = await until_finished(self.api, path, deadline)
        self.report(f"{what} {done.get('state')}")
        return done


async def until_state(api: aiohttp.ClientSession, path: str, states: tuple[str, ...], deadline: float) -> dict:
    """GET a job until it is in one of `states` or the deadline passes; what was last seen."""
    last: dict = {}
    while time.monotonic() < deadline:
        status, body = await attempt(api, "GET", path)
        if status == 200:
            last = body
            if body["state"] in states:
                return body
        await asyncio.sleep(0.2)
    return last


async def until_finished(api: aiohttp.ClientSession, path: str, deadline: float) -> dict:
    return await until_state(api, path, FINISHED, deadline)


class Injector:
    """The faults, and what was injected in order."""

    def __init__(self, stack: Stack, report: Report, rng: random.Random) -> None:
        self.stack, self.report, self.rng = stack, report, rng
        self.injected: list[str] = []

    def kill(self, victim: str, why: str = "") -> None:
        pid = self.stack.pids().get(victim)
        if pid is None:  # given up on by the supervisor, which the checks report
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.injected.append(f"SIGKILL {victim}")
        self.report(f"SIGKILL {victim} (pid {pid}){why}")

    async def run(self, load: Load) -> None:
        """SIGKILL a random worker replica every few seconds; at each quarter of the load, restart the next
        infrastructure server instead."""
        restarts = list(RESTARTED)
        while load.running():
            await asyncio.sleep(PROFILE.kill_every_s)
            if not load.running():
                break
            quarter = int(4 * (time.monotonic() - load.began) / PROFILE.load_s)
            if restarts and quarter > len(RESTARTED) - len(restarts):
                server = restarts.pop(0)
                took = time.monotonic()
                await asyncio.to_thread(self.stack.restart_server, server)
                self.injected.append(f"restart {server}")
                self.report(f"restarted {server} (down and back in {time.monotonic() - took:.1f} s)")
            else:
                self.kill(self.rng.choice(sorted(n for n in self.stack.pids() if service_of(n) in WORKER_SERVICES)))


async def settle(stack: Stack, report: Report) -> list[str]:
    """Wait until every replica is ready again; the ones that are not (given up on, or stuck)."""
    deadline = time.monotonic() + 120
    waiting = set(stack.replica_ports)
    while waiting and time.monotonic() < deadline:
        for name in sorted(waiting):
            if name in stack.pids() and await asyncio.to_thread(stack.service_problem, name) is None:
                waiting.discard(name)
        await asyncio.sleep(0.5)
    report(
        f"every replica ready again: {sorted(stack.replica_ports)}"
        if not waiting
        else f"NOT ready 120 s after the load: {sorted(waiting)}"
    )
    return sorted(waiting)


class Checks:
    """Each check records its outcome in the report; the test fails at the end if any failed."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.failed: list[str] = []

    def __call__(self, ok: bool, what: str, detail: object = "") -> None:
        self.report(f"{'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail != "" else ""))
        if not ok:
            self.failed.append(what)


async def test_nothing_accepted_is_lost_or_done_twice_under_kills_and_restarts(
    chaos_stack: Stack, admin: aiohttp.ClientSession, media_server: MediaServer
) -> None:
    stack, report, ledger = chaos_stack, Report(), Ledger()
    rng = random.Random(SEED)
    report(
        f"profile {PROFILE_NAME} {PROFILE}, seed {SEED} (CHAOS_SEED), "
        f"{REPLICAS} replicas of each of {', '.join(WORKER_SERVICES)}"
    )
    try:
        await run_chaos(stack, admin, media_server, report, ledger, rng)
    finally:
        print(report.text(), flush=True)
        (stack.data_dir / "chaos-report.txt").write_text(report.text() + "\n")


async def run_chaos(
    stack: Stack,
    admin: aiohttp.ClientSession,
    media_server: MediaServer,
    report: Report,
    ledger: Ledger,
    rng: random.Random,
) -> None:
    loaded = await synth.load(
        synth.generate(TRAINING_IMAGES, size=64, seed=SEED % 1000),
        stack.gateway_url,
        stack.admin_key,
        name="chaos",
        progress=False,
    )
    project, path = loaded.project_id, f"/v1/projects/{loaded.project_id}"
    status, incoming = await attempt(admin, "POST", f"{path}/datasets", json={"name": "incoming"})
    assert status == 201, incoming
    status, classes = await attempt(admin, "GET", f"{path}/label-classes")
    assert status == 200, classes
    status, page = await attempt(
        admin, "GET", f"{path}/samples", params={"dataset_id": loaded.datasets["train"], "limit": 100}
    )
    assert status == 200, page
    samples = [item["id"] for item in page["items"]]
    # A connection of its own before the load and another after: Postgres restarts in between.
    db = await asyncpg.connect(stack.settings.database_url)
    try:
        before = await ground_truth_ids(db, project)
    finally:
        await db.close()
    report(f"project {project}: {loaded.samples} labelled images, {len(before)} ground-truth objects")

    injector = Injector(stack, report, rng)
    load = Load(admin, project, ledger, report, injector)
    parts = [
        load.ingest(incoming["id"], media_server),
        load.releases(),
        load.train_then_autolabel(list(loaded.datasets.values())),
        *(load.label_writes(samples, classes["items"][0]["id"], random.Random(SEED + i)) for i in range(LABEL_WRITERS)),
    ]
    tasks = [asyncio.create_task(part) for part in parts]
    await injector.run(load)
    injected = injector.injected
    report(
        f"load over: injected {len(injected)} faults: "
        f"{sum(i.startswith('SIGKILL') for i in injected)} SIGKILLs, restarts of "
        f"{[i.split()[1] for i in injected if i.startswith('restart')]}"
    )
    await asyncio.gather(*tasks)
    report(
        f"accepted: {len(ledger.runs)} URL imports ({sum(map(len, ledger.runs.values()))} images), "
        f"{len(ledger.labels)} label writes ({ledger.label_retries} sends again after a failure), "
        f"{len(ledger.releases)} releases, {sum(map(len, ledger.exports.values()))} exports, "
        f"training run {ledger.training_run}, auto-label job {ledger.autolabel_job}; without an answer: "
        f"{len(ledger.unsure_seeds)} images, {len(ledger.unsure_releases)} releases, "
        f"{sum(ledger.unsure_exports.values())} exports, {len(ledger.labels_given_up)} label writes given up"
    )

    db = await asyncpg.connect(stack.settings.database_url)
    try:
        checks = Checks(report)
        checks(not await settle(stack, report), "every replica is running and ready after the load")
        checks(not ledger.problems, "no request refused for a reason the faults do not explain", ledger.problems)
        await check_jobs(admin, path, ledger, checks)
        await check_samples(db, incoming["id"], ledger, checks)
        await check_labels(db, project, before, ledger, checks)
        await check_releases(db, project, ledger, checks)
        await check_training_and_autolabel(admin, db, path, ledger, checks)
        await check_bus(db, checks)
        assert not checks.failed, f"chaos checks failed: {checks.failed} (the report above says more)"
    finally:
        await db.close()


async def check_jobs(api: aiohttp.ClientSession, path: str, ledger: Ledger, checks: Checks) -> None:
    deadline = time.monotonic() + SETTLE_S
    jobs = {f"{path}/imports/{run}": "URL import" for run in ledger.runs}
    jobs |= {f"{path}/releases/{release}": "release" for release in ledger.releases.values()}
    jobs |= {f"{path}/exports/{export}": "export" for ids in ledger.exports.values() for export in ids}
    if ledger.training_run:
        jobs[f"{path}/training/runs/{ledger.training_run}"] = "training run"
    if ledger.autolabel_job:
        jobs[f"{path}/inference/jobs/{ledger.autolabel_job}"] = "auto-label job"
    final = dict(zip(jobs, await asyncio.gather(*(until_finished(api, job, deadline) for job in jobs)), strict=True))
    unfinished = [
        f"{jobs[job]} {job}: {body.get('state')}" for job, body in final.items() if body.get("state") not in FINISHED
    ]
    checks(not unfinished, f"every one of the {len(jobs)} accepted jobs reached a final state", unfinished)
    failed = [
        f"{jobs[job]} {job}: {body['state']} {body.get('error')}"
        for job, body in final.items()
        if body.get("state") in FINISHED and body["state"] != "SUCCEEDED"
    ]
    checks(not failed, "every one of them SUCCEEDED", failed)
    short = [
        f"{run}: {final[f'{path}/imports/{run}']}"
        for run, seeds in ledger.runs.items()
        if (final[f"{path}/imports/{run}"].get("created"), final[f"{path}/imports/{run}"].get("failed"))
        != (len(seeds), 0)
    ]
    checks(not short, "every accepted URL import created each of its images", short)


async def check_samples(db: asyncpg.Connection, dataset_id: str, ledger: Ledger, checks: Checks) -> None:
    counted = await samples_by_hash(db, dataset_id)
    accepted = {image_hash(seed) for seeds in ledger.runs.values() for seed in seeds}
    maybe = {image_hash(seed) for seed in ledger.unsure_seeds}
    missing = accepted - counted.keys()
    twice = {h: n for h, n in counted.items() if n != 1}
    strangers = counted.keys() - accepted - maybe
    checks(not missing, f"every one of the {len(accepted)} accepted images is a sample", sorted(missing)[:5])
    checks(not twice, "no image is a sample twice", twice)
    checks(not strangers, "no sample of an image nobody sent", sorted(strangers)[:5])
    checks(True, f"of {len(maybe)} images sent without an answer, {len(maybe & counted.keys())} became samples")


async def ground_truth_ids(db: asyncpg.Connection, project: str) -> list[str]:
    rows = await db.fetch(
        "SELECT o.id FROM annotation.objects o JOIN annotation.labelsets l ON l.id = o.labelset_id "
        "WHERE l.project_id = $1 AND l.name = 'ground-truth'",
        uuid.UUID(project),
    )
    return [str(row["id"]) for row in rows]


async def check_labels(db: asyncpg.Connection, project: str, before: list[str], ledger: Ledger, checks: Checks) -> None:
    after = await ground_truth_ids(db, project)
    counts: dict[str, int] = {}
    for object_id in after:
        counts[object_id] = counts.get(object_id, 0) + 1
    missing = ledger.labels - counts.keys()
    twice = {i: n for i, n in counts.items() if n > 1}
    strangers = counts.keys() - set(before) - ledger.labels - ledger.labels_given_up
    checks(not missing, f"every one of the {len(ledger.labels)} accepted label writes is there", sorted(missing)[:5])
    checks(not twice, "no object is there twice", twice)
    checks(
        not strangers and len(after) == len(before) + len(ledger.labels) + len(ledger.labels_given_up & counts.keys()),
        f"the labelset holds exactly the {len(before)} loaded objects and the written ones ({len(after)})",
        sorted(strangers)[:5],
    )


async def check_releases(db: asyncpg.Connection, project: str, ledger: Ledger, checks: Checks) -> None:
    rows = await db.fetch("SELECT name, id FROM annotation.releases WHERE project_id = $1", uuid.UUID(project))
    made = {row["name"]: str(row["id"]) for row in rows}
    lost = {name for name in ledger.releases if made.get(name) != ledger.releases[name]}
    # The training run snapshots its data as a release of its own.
    training = {f"training run {ledger.training_run}"} if ledger.training_run else set()
    strangers = made.keys() - ledger.releases.keys() - set(ledger.unsure_releases) - training
    checks(
        not lost and not strangers,
        f"the project has each of the {len(ledger.releases)} accepted releases once and no other",
        {"lost": sorted(lost), "unknown": sorted(strangers)},
    )
    rows = await db.fetch(
        "SELECT release_id, count(*) AS n FROM annotation.exports WHERE project_id = $1 GROUP BY release_id",
        uuid.UUID(project),
    )
    exports = {str(row["release_id"]): row["n"] for row in rows}
    wrong = {
        release: exports.get(release, 0)
        for release in made.values()
        if not len(ledger.exports.get(release, []))
        <= exports.get(release, 0)
        <= len(ledger.exports.get(release, [])) + ledger.unsure_exports.get(release, 0)
    }
    checks(not wrong, f"each release has exactly its {sum(map(len, ledger.exports.values()))} accepted exports", wrong)


async def check_training_and_autolabel(
    api: aiohttp.ClientSession, db: asyncpg.Connection, path: str, ledger: Ledger, checks: Checks
) -> None:
    checks(
        ledger.training_run is not None and ledger.autolabel_job is not None,
        "the training run and the auto-label job were both started",
    )
    if ledger.training_run is None:
        return
    status, versions = await attempt(api, "GET", f"{path}/models/tiny/versions")
    checks(
        status == 200 and len(versions["items"]) == 1,
        "the training run made exactly one model version",
        versions if status != 200 else [v["version"] for v in versions["items"]],
    )
    if ledger.autolabel_job is None:
        return
    status, job = await attempt(api, "GET", f"{path}/inference/jobs/{ledger.autolabel_job}")
    results: list[dict] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        status, page = await attempt(api, "GET", f"{path}/inference/jobs/{ledger.autolabel_job}/results", params=params)
        assert status == 200, page
        results += page["items"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    sample_ids = [r["sample_id"] for r in results]
    checks(
        len(sample_ids) == len(set(sample_ids)) == job["total"] == job["done"],
        "the auto-label job has one result per image",
        {"results": len(results), "distinct": len(set(sample_ids)), "total": job["total"], "done": job["done"]},
    )
    rows = await db.fetch(
        "SELECT o.sample_id, count(*) AS n FROM annotation.objects o JOIN annotation.labelsets l "
        "ON l.id = o.labelset_id WHERE l.project_id = $1 AND l.name = 'predictions' "
        "GROUP BY o.sample_id",
        uuid.UUID(path.rsplit("/", 1)[1]),
    )
    written = {str(row["sample_id"]): row["n"] for row in rows}
    expected = {
        r["sample_id"]: n
        for r in results
        if r["predictions"]
        if (n := sum(o.get("class_id") is not None for o in r["predictions"]["objects"]))
    }
    checks(
        written == expected,
        f"the predictions labelset holds each predicted object once "
        f"({sum(expected.values())} objects on {len(expected)} images)",
        {
            s: (written.get(s), expected.get(s))
            for s in written.keys() | expected.keys()
            if written.get(s) != expected.get(s)
        },
    )


async def check_bus(db: asyncpg.Connection, checks: Checks) -> None:
    drained = dict.fromkeys(WORKER_SERVICES, 0)
    for _ in range(120):  # a minute: the relays publish within a second or two of a change
        if (pending := await unpublished_events(db)) == drained:
            break
        await asyncio.sleep(0.5)
    checks(pending == drained, "every outbox is drained", pending)
    checks(
        await inbox_repeats(db) == dict.fromkeys(WORKER_SERVICES, 0),
        "no event was applied twice by a consumer (inbox)",
        await inbox_sizes(db),
    )
    letters = await dead_letters(db)
    checks(
        not letters,
        "no message was dead-lettered",
        [
            f"{d['schema']}/{d['consumer']} {d['subject']} {d['msg_id']} after {d['deliveries']} deliveries: "
            f"{d['error']}"
            for d in letters
        ],
    )
