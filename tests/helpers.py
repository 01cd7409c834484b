"""What the integration tests share: waiting for the stack to catch up (`eventually`), calling the API
(`call`, `problem`), making what a test works on (projects, datasets, samples, a labelled project, a
release), following ingest runs, and watching the requests services send each other.

Test modules import from here, never from each other. Fixtures are in tests/conftest.py; the servers
tests fetch from are tests/media_server.py and tests/external_s3.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import aiohttp
import asyncpg
from nats.aio.msg import Msg

from proto.subjects import Command
from shared.bus import Bus

T = TypeVar("T")

PROBLEM = "application/problem+json"
# The states of a release, export, QA run, label import or ingest run once it is done.
FINISHED = ("SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED")

database_url = ""  # the test stack's Postgres; tests/conftest.py sets it once the stack runs


# -- waiting ----------------------------------------------------------------------------------------

async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Call `probe` until it returns a truthy value without raising AssertionError, and return that value.

    Services apply events a moment after the call that caused them answers: a test waits for what it
    expects rather than sleeping. A probe says "not yet" with a falsy value or a failed assert; after
    `timeout` seconds the last one fails the test, so the failure says what was last seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            result = await probe()
        except AssertionError as failure:
            last = failure
        else:
            if result:
                return result
            last = AssertionError(f"the probe returned {result!r}")
        if loop.time() >= deadline:
            raise AssertionError(f"not within {timeout} s; last seen: {last}") from last
        await asyncio.sleep(interval)


# -- the API ----------------------------------------------------------------------------------------

async def problem(response: aiohttp.ClientResponse, status: int) -> dict:
    """The RFC 9457 problem document of an error answer, checked for what every one holds."""
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body = await response.json()
    assert body["status"] == status and body["detail"] and body["request_id"]
    assert response.headers["X-Request-Id"] == body["request_id"]
    return body


async def call(client: aiohttp.ClientSession, method: str, path: str, expect: int = 200, **request: Any) -> Any:
    """A JSON API call that must answer `expect`: the body (a problem document for an error, None for 204).
    `request` is what aiohttp takes: json=, params=, headers=."""
    async with client.request(method, path, **request) as response:
        if expect >= 400:
            return await problem(response, expect)
        assert response.status == expect, await response.text()
        return None if expect == 204 else await response.json()


async def create(client: aiohttp.ClientSession, name: str, **extra: object) -> dict:
    """A new project."""
    return await call(client, "POST", "/v1/projects", 201, json={"name": name, **extra})


async def dataset(client: aiohttp.ClientSession, project_id: str, name: str = "train") -> dict:
    return await call(client, "POST", f"/v1/projects/{project_id}/datasets", 201, json={"name": name})


async def dataset_in_new_project(client: aiohttp.ClientSession, project_name: str) -> dict:
    """A dataset "train" in a new project of that name."""
    return await dataset(client, (await create(client, project_name))["id"])


async def finished(client: aiohttp.ClientSession, path: str, timeout: float = 60.0) -> dict:
    """GET `path` (a release, export, QA run, label import or ingest run) until it is done; what it is then."""
    async def done() -> dict:
        body = await call(client, "GET", path)
        assert body["state"] in FINISHED, body
        return body
    return await eventually(done, timeout=timeout, interval=0.1)


# A detector trained in seconds: bad, but a real model version that Triton serves.
TINY_DETECTOR = {"epochs": 1, "batch_size": 8, "image_size": 32, "workers": 0}


async def train(client: aiohttp.ClientSession, project_id: str, family: str = "detection", model: str = "tiny",
                config: dict | None = None) -> dict:
    """A training run of the project (by default the tiny detector), once it SUCCEEDED."""
    base = f"/v1/projects/{project_id}/training/runs"
    run = await call(client, "POST", base, 202,
                     json={"family": family, "model": model, "config": TINY_DETECTOR if config is None else config})
    done = await finished(client, f"{base}/{run['id']}", 300)
    assert done["state"] == "SUCCEEDED", f"{done['state']}: {done.get('error')}"  # pytest cuts a dict short
    return done


# -- samples ----------------------------------------------------------------------------------------

def image_hash(seed: str) -> str:
    """A made-up content hash: catalog-only tests need no media in the bucket (`add` makes it the caller's)."""
    return hashlib.sha256(seed.encode()).hexdigest()


def items(count: int, prefix: str) -> list[dict]:
    """New 640 × 480 samples of made-up images, named img_00000.jpg on."""
    return [{"content_hash": image_hash(f"{prefix}/{i}"), "name": f"img_{i:05}.jpg", "width": 640, "height": 480,
             "format": "jpeg", "size": 1000 + i, "metadata": {"index": i}} for i in range(count)]


async def own(client: aiohttp.ClientSession, hashes: Iterable[str]) -> None:
    """Record the images as stored by the organisation of `client`'s key, without storing them.

    The catalog makes a sample of an image (`content_hash`) only for an organisation that stored it,
    which ingest records in its `org_media` table as it reads the image. Tests of samples, labels and
    releases need samples of images but never their pixels, so they write that record themselves."""
    me = await call(client, "GET", "/v1/me")
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("INSERT INTO ingest.org_media (org_id, sha256) SELECT $1, unnest($2::text[]) "
                         "ON CONFLICT DO NOTHING", uuid.UUID(me["org_id"]), list(hashes))
    finally:
        await db.close()


async def add(client: aiohttp.ClientSession, project_id: str, dataset_id: str, new: list[dict]) -> dict:
    """Samples through the bulk create endpoint, their images made the caller's first."""
    await own(client, [item["content_hash"] for item in new if item.get("content_hash")])
    return await call(client, "POST", f"/v1/projects/{project_id}/datasets/{dataset_id}/samples",
                      json={"items": new})


async def names(client: aiohttp.ClientSession, project_id: str, body: dict[str, Any]) -> list[str]:
    """The names of the samples a search finds, in its order."""
    page = await call(client, "POST", f"/v1/projects/{project_id}/samples/search", json={"limit": 500, **body})
    return [item["name"] for item in page["items"]]


# -- a labelled project, and its releases -----------------------------------------------------------

class Project:
    """A project with a schema (car, person with a skeleton, a bounded INT attribute, a SINGLE tag
    group) and one dataset of 640 × 480 samples."""

    def __init__(self, api: aiohttp.ClientSession, project_id: str) -> None:
        self.api = api
        self.id = project_id
        self.path = f"/v1/projects/{project_id}"
        self.classes: dict[str, str] = {}
        self.samples: list[str] = []
        self.attribute = ""
        self.tags: dict[str, str] = {}

    def label(self, sample: str, labelset: str = "ground-truth") -> str:
        return f"{self.path}/samples/{sample}/labels/{labelset}"

    def box(self, x1: float, y1: float, x2: float, y2: float, cls: str = "car", **extra: Any) -> dict:
        return {"class_id": self.classes[cls], "shape": {"type": "bbox", "box": [x1, y1, x2, y2]}, **extra}


async def make_project(api: aiohttp.ClientSession, unique: str, samples: int = 5) -> Project:
    project = Project(api, (await create(api, f"labels {unique}"))["id"])
    skeleton = await call(api, "POST", f"{project.path}/keypoint-schemas", 201,
                          json={"name": "person", "keypoints": ["head", "left hand", "right hand"],
                                "skeleton": [[0, 1], [0, 2]]})
    for name, extra in (("car", {}), ("person", {"keypoint_schema_id": skeleton["id"]})):
        made = await call(api, "POST", f"{project.path}/label-classes", 201, json={"name": name, **extra})
        project.classes[name] = made["id"]
    attribute = await call(api, "POST", f"{project.path}/attributes", 201,
                           json={"name": "occlusion", "type": "INT", "min": 0, "max": 3})
    project.attribute = attribute["id"]
    group = await call(api, "POST", f"{project.path}/tag-groups", 201,
                       json={"name": "time", "selection": "SINGLE", "tags": [{"name": "day"}, {"name": "night"}]})
    project.tags = {tag["name"]: tag["id"] for tag in group["tags"]}
    made = await dataset(api, project.id)
    created_samples = await add(api, project.id, made["id"], items(samples, f"labels-{unique}"))
    project.samples = [item["id"] for item in created_samples["items"]]
    return project


async def download(url: str) -> bytes:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as response:  # presigned: no key
        assert response.status == 200, await response.text()
        return await response.read()


async def release_and_export(api: aiohttp.ClientSession, project_path: str, name: str, **export: Any) -> bytes:
    """Cut a release of the project, export it as `export` says, and download the file."""
    release = await call(api, "POST", f"{project_path}/releases", 201, json={"name": name})
    done = await finished(api, f"{project_path}/releases/{release['id']}")
    assert done["state"] == "SUCCEEDED", done
    made = await call(api, "POST", f"{project_path}/releases/{release['id']}/exports", 201, json=export)
    exported = await finished(api, f"{project_path}/exports/{made['id']}")
    assert exported["state"] == "SUCCEEDED", exported
    return await download(exported["download_url"])


# -- ingest runs ------------------------------------------------------------------------------------

def base(dataset: dict) -> str:
    """The path of the dataset's project."""
    return f"/v1/projects/{dataset['project_id']}"


async def wait_run(client: aiohttp.ClientSession, dataset: dict, run_id: str, timeout: float = 60.0) -> dict:
    """The ingest run, once it is done."""
    return await finished(client, f"{base(dataset)}/imports/{run_id}", timeout)


async def wait_created(client: aiohttp.ClientSession, dataset: dict, run_id: str, count: int,
                       timeout: float) -> dict:
    """The ingest run, once it has made at least `count` samples: for tests that stop a service mid-run."""
    async def far_enough() -> dict:
        run = await call(client, "GET", f"{base(dataset)}/imports/{run_id}")
        assert run["created"] >= count, run
        return run
    return await eventually(far_enough, timeout=timeout)


async def items_of(client: aiohttp.ClientSession, dataset: dict, run_id: str) -> list[dict]:
    return (await call(client, "GET", f"{base(dataset)}/imports/{run_id}/items", params={"limit": 1000}))["items"]


async def sample_count(client: aiohttp.ClientSession, dataset: dict) -> int:
    page = await call(client, "GET", f"{base(dataset)}/samples",
                      params={"dataset_id": dataset["id"], "limit": 1, "total": "exact"})
    return page["total"]


async def wait_samples(client: aiohttp.ClientSession, dataset: dict, count: int, timeout: float = 60.0) -> None:
    """Until the dataset holds `count` samples: they are registered from ingest's event, a moment after the
    run records them."""
    async def registered() -> bool:
        assert await sample_count(client, dataset) >= count
        return True
    await eventually(registered, timeout=timeout, interval=0.2)
    assert await sample_count(client, dataset) == count


async def presigned_upload(client: aiohttp.ClientSession, dataset: dict, files: list[tuple[str, bytes]]) -> dict:
    """Upload the files through presigned URLs; the run once it is done."""
    upload = await call(client, "POST", f"{base(dataset)}/datasets/{dataset['id']}/uploads", 201,
                        json={"files": [{"name": name} for name, _ in files]})
    async with aiohttp.ClientSession() as s3:
        for slot, (_, data) in zip(upload["slots"], files, strict=True):
            async with s3.put(slot["url"], data=data) as response:
                assert response.status == 200, await response.text()
    await call(client, "POST", upload["complete_url"], 202, json={})
    return await wait_run(client, dataset, upload["run_id"])


def declared(name: str, data: bytes, content_type: str = "image/jpeg") -> dict:
    """An upload's file declared by its SHA-256 and type, so that its bytes go straight to their final key."""
    return {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "content_type": content_type}


async def declared_upload(client: aiohttp.ClientSession, dataset: dict, files: list[tuple[str, bytes]]
                          ) -> tuple[dict, dict]:
    """Upload the files declared by their SHA-256, PUTting those not stored already; the upload and its run
    once done."""
    upload = await call(client, "POST", f"{base(dataset)}/datasets/{dataset['id']}/uploads", 201,
                        json={"files": [declared(name, data) for name, data in files]})
    async with aiohttp.ClientSession() as s3:
        for slot, (_, data) in zip(upload["slots"], files, strict=True):
            if not slot["stored"]:
                async with s3.put(slot["url"], data=data, headers=slot["headers"]) as response:
                    assert response.status == 200, await response.text()
    await call(client, "POST", upload["complete_url"], 202, json={})
    return upload, await wait_run(client, dataset, upload["run_id"])


async def s3_requests(stack) -> collections.Counter[tuple[str, str]]:
    """How many requests to Loupe's S3 ingest has made so far, by bucket and method (its /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{stack.ports.ingest}/metrics") as response:
        text = await response.text()
    found = re.findall(r'^loupe_s3_requests_total\{bucket="(\w+)",method="(\w+)"\} (\S+)$', text, re.MULTILINE)
    return collections.Counter({(bucket, method): int(float(value)) for bucket, method, value in found})


async def requests_made(stack, work: Awaitable[T]) -> tuple[T, dict[tuple[str, str], int]]:
    before = await s3_requests(stack)
    result = await work
    return result, {key: n for key, n in ((await s3_requests(stack)) - before).items() if n}


# -- requests between services ----------------------------------------------------------------------

@contextlib.asynccontextmanager
async def requests_sent(bus: Bus, command: Command, mentioning: str) -> AsyncIterator[list[bytes]]:
    """The bodies of the requests for `command` that mention `mentioning` (a project's id, say), sent
    while the block runs: for tests of how often one service asks another. A plain subscriber gets a
    copy of each request beside the queue group that answers it, and answers nothing itself."""
    seen: list[bytes] = []

    async def receive(msg: Msg) -> None:
        if mentioning.encode() in msg.data:
            seen.append(msg.data)

    subscription = await bus.nc.subscribe(command.subject, cb=receive)
    await bus.nc.flush()
    try:
        yield seen
    finally:
        await bus.nc.flush()
        await subscription.unsubscribe()
