"""Loupe on the workload FiftyOne 1.22 and Label Studio 1.23 were measured with (issue 18), end to end
through the public REST API.

    python -m bench.peers [--quick] [--samples N] [--requests R] [--chunk C] [--in-flight F]
                          [--way presigned|staged|multipart|both|all]

Starts the whole system as `loupe up --no-triton` runs it (NATS, Postgres, SeaweedFS and the six
services; training and inference stay idle in this workload) on free ports in a temporary folder, makes
N (default 10,000; --quick 2,000) distinct 64×64 JPEGs, each with 3 filled boxes of 5 classes and a
`weather` metadata field (rainy in 32 %, so that the query "weather = rainy AND at least one car box"
matches about 16 %), and measures:

1. `peers_samples_with_labels_per_s`: a project with the 5 classes; the images go in by presigned upload
   (`POST …/datasets/{d}/uploads` with each file's name, metadata, SHA-256 and type, a PUT per image straight
   to its final key in S3, and `POST …/complete` with the indexes of each 200 slots once their PUTs are
   done, so that ingest works while the rest go up), C images per upload, F uploads in flight. Once an upload's samples are queryable
   (its import run finished and `POST …/samples/count` with their `sample_ids` counts them all), their
   boxes are written (`POST …/labelsets/ground-truth/objects`, 3 × C boxes per call). The clock runs from
   the first upload call until the count of LABELED samples is N, i.e. until search sees every label.
   Sample ids are known beforehand: ingest names a sample `uuid5(dataset, sha256)` (`sample_id_for`).
   The S3 requests ingest made meanwhile (its `loupe_s3_requests_total`) are printed per image.
   `--way staged` declares no hashes, so each image goes through staging:
   `peers_samples_with_labels_staged_per_s`. `--way multipart` sends the images instead as multipart forms
   of 100 through the gateway
   (`POST …/datasets/{d}/files`, 4 forms in flight; no staging), waits until they are queryable and sets their
   `weather` in one bulk update (`PATCH …/samples`: a form carries only files), then writes the boxes:
   `peers_samples_with_labels_multipart_per_s`, with images of its own. `--way both` measures presigned and
   multipart, `--way all` all three (the query and the export are of the first project; the memory figures then count a third project).
2. `peers_samples_with_labels_stored_media_per_s`: the same for a second project whose images are already
   stored: samples are registered by SHA-256 (`POST …/datasets/{d}/samples` with `content_hash`, width,
   height and metadata; the call answers once its samples are queryable), then their boxes are written.
   For 1. and 2. the CPU each process used per sample is printed, and the seconds a chunk spent in each step
   (the calls above, and the waits until samples or labels are queryable), mean and max over chunks.
3. `peers_filtered_count_median_ms` and `peers_first_page_median_ms`: the query through
   `POST …/samples/count` and the first page of 100 through `POST …/samples/search`, R times each from
   one client after R/10 to warm up; p50 and p99. The same count without a filter is timed beside them:
   what any call costs through the gateway, the bus and the catalog, whatever it asks.
4. `peers_release_export_s`: a release of the first project and its COCO export, from asking for the
   release until the export SUCCEEDED; the median of 3.
5. `peers_peak_memory_mb`: a sampler reads every process of the stack (each server and service and all
   their descendants, so every Postgres backend and worker) once a second from /proc. The figure is the
   sum of each process's VmHWM (its own peak resident set), kept for processes that exited meanwhile. It
   is an upper bound: the peaks need not coincide, and pages two processes share (Postgres's shared
   buffers, which every backend maps) count once per process. `peers_peak_pss_mb` is the largest sum of
   Pss seen at one moment (shared pages divided among their sharers), what the stack really held at once;
   the table splits it into anonymous memory, file pages (binaries and libraries, which another stack on
   the same machine shares, so that part shrinks while one runs) and shared memory (Postgres's buffers).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import io
import random
import re
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import aiohttp
import uvloop
from PIL import Image, ImageDraw

from bench.report import arguments, cpu_seconds, figure, local_stack, put_slots, table, time_requests
from loupe.stack import Stack
from proto.samples import sample_id_for
from proto.subjects import SERVICES

SIDE = 64
CLASSES = ("car", "person", "truck", "bicycle", "dog")
COLOURS = ((220, 40, 40), (40, 180, 60), (40, 80, 220), (230, 200, 30), (150, 60, 190))
BOXES_PER_IMAGE = 3
# P(at least one car among 3 boxes of 5 classes) = 1 - 0.8³ ≈ 0.49, so 32 % rainy gives the issue's ~16 %
# matches: 1,598 of 10,000 here, 1,599 there.
WEATHER = {"sunny": 27, "rainy": 32, "cloudy": 20, "foggy": 12, "snowy": 10}
EXPORT_ROUNDS = 3
RUN_FINISHED = ("SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED")
PUTS_IN_FLIGHT = 16
COMPLETE_EVERY = 200  # slots whose PUTs are done are completed in parts, so ingest works while the rest go up
SAMPLE_INTERVAL_S = 1.0
POLL_S = 0.02
FORM_FILES = 100  # the most files a multipart form may carry (services/gateway/uploads.py)
FORMS_IN_FLIGHT = 4
WAYS = {
    "presigned": ("presigned",),
    "staged": ("staged",),
    "multipart": ("multipart",),
    "both": ("presigned", "multipart"),
    "all": ("presigned", "staged", "multipart"),
}
UPLOADED_FIGURE = {
    "presigned": "peers_samples_with_labels_per_s",
    "staged": "peers_samples_with_labels_staged_per_s",
    "multipart": "peers_samples_with_labels_multipart_per_s",
}
T = TypeVar("T")
Rows = dict[str, dict[str, float]]  # a table: row name → column → value

# metric: (unit, target as text, passes?, FiftyOne 1.22 and Loupe as measured in the issue)
TARGETS: dict[str, tuple[str, str, Callable[[float], bool], str]] = {
    "peers_samples_with_labels_per_s": ("samples/s", ">= 700", lambda v: v >= 700, "FO 640-700; Loupe 300-360"),
    "peers_samples_with_labels_staged_per_s": ("samples/s", ">= 700", lambda v: v >= 700, "-"),
    "peers_samples_with_labels_multipart_per_s": ("samples/s", ">= 700", lambda v: v >= 700, "-"),
    "peers_samples_with_labels_stored_media_per_s": ("samples/s", ">= 7000", lambda v: v >= 7000, "-"),
    "peers_filtered_count_median_ms": ("ms", "<= 2", lambda v: v <= 2, "FO 10-15; Loupe 14-20"),
    "peers_first_page_median_ms": ("ms", "<= 4", lambda v: v <= 4, "Loupe 16-19"),
    "peers_release_export_s": ("s", "<= 1", lambda v: v <= 1, "FO 8-10; Loupe 1.5-2.5"),
    "peers_peak_memory_mb": ("MB", "<= 600", lambda v: v <= 600, "FO 625-640; Loupe 1050-1200"),
    "peers_peak_pss_mb": ("MB", "<= 600", lambda v: v <= 600, "-"),
}


@dataclass(frozen=True)
class Picture:
    name: str
    data: bytes
    sha256: str
    weather: str
    boxes: list[tuple[int, list[int]]]  # (class index, [x1, y1, x2, y2])


def make_pictures(count: int, seed: int = 18) -> list[Picture]:
    """Distinct 64×64 JPEGs, each with 3 filled boxes of random classes over a random background."""
    rng = random.Random(seed)
    pictures: list[Picture] = []
    seen: set[str] = set()
    while len(pictures) < count:
        image = Image.new("RGB", (SIDE, SIDE), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        boxes = []
        for _ in range(BOXES_PER_IMAGE):
            cls = rng.randrange(len(CLASSES))
            x1, y1 = rng.randrange(SIDE - 8), rng.randrange(SIDE - 8)
            x2, y2 = rng.randrange(x1 + 8, SIDE + 1), rng.randrange(y1 + 8, SIDE + 1)
            draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=COLOURS[cls])
            boxes.append((cls, [x1, y1, x2, y2]))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        data = out.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        if sha in seen:  # the same bytes twice would be one sample: draw another
            continue
        seen.add(sha)
        weather = rng.choices(list(WEATHER), list(WEATHER.values()))[0]
        pictures.append(Picture(f"img_{len(pictures):06d}.jpg", data, sha, weather, boxes))
    return pictures


def the_query(car_id: str) -> dict:
    return {"metadata": {"weather": "rainy"}, "labels": {"classes": [{"class_id": car_id, "min": 1}]}}


def expected_matches(pictures: list[Picture]) -> int:
    car = CLASSES.index("car")
    return sum(p.weather == "rainy" and any(cls == car for cls, _ in p.boxes) for p in pictures)


# -- memory -------------------------------------------------------------------------------------------


# Pss and its parts in /proc/<pid>/smaps_rollup: anonymous memory is a process's own; a file's pages (the
# binaries and libraries) are shared with every process mapping them, another stack on the machine too, so
# that part shrinks while one runs beside; shared memory is Postgres's buffers and WAL, shared by its processes.
PSS_PARTS = {"Pss": "Pss_MB", "Pss_Anon": "anon_MB", "Pss_File": "file_MB", "Pss_Shmem": "shmem_MB"}


def kilobytes(path: str, keys: Iterable[str]) -> dict[str, int]:
    """The values of `keys` in a /proc file of `Key:   123 kB` lines; 0 for a key it lacks."""
    found = dict.fromkeys(keys, 0)
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition(":")
        if key in found:
            found[key] = int(value.split()[0])
    return found


def process_trees(roots: dict[str, int]) -> dict[int, str]:
    """Every live process under each root (itself included), by pid: the root's name. A root under another
    (a service under the services' parent it was forked from) is counted as itself, not as its parent."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    root_pids = set(roots.values())
    owner: dict[int, str] = {}
    for name, root in roots.items():
        pending = [root]
        while pending:
            pid = pending.pop()
            owner[pid] = name
            pending += [child for child in children.get(pid, []) if child not in root_pids]
    return owner


@dataclass
class MemorySampler:
    """Reads the stack's processes from /proc in a thread, once a second until stopped."""

    roots: dict[str, int]
    peak_kb: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid: (name, VmHWM), exited ones too
    peak_pss_kb: int = 0
    pss_at_peak_kb: dict[str, dict[str, int]] = field(default_factory=dict)  # name: PSS_PARTS key: kB
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        pss = {name: dict.fromkeys(PSS_PARTS, 0) for name in self.roots}
        for pid, name in process_trees(self.roots).items():
            with contextlib.suppress(OSError):  # it exited meanwhile
                hwm = kilobytes(f"/proc/{pid}/status", ["VmHWM"])["VmHWM"]
                self.peak_kb[pid] = (name, max(hwm, self.peak_kb.get(pid, (name, 0))[1]))
                for part, kb in kilobytes(f"/proc/{pid}/smaps_rollup", PSS_PARTS).items():
                    pss[name][part] += kb
        total = sum(parts["Pss"] for parts in pss.values())
        if total > self.peak_pss_kb:
            self.peak_pss_kb, self.pss_at_peak_kb = total, pss

    def __enter__(self) -> MemorySampler:
        def loop() -> None:
            while not self._stop.wait(SAMPLE_INTERVAL_S):
                self.sample()

        self.sample()
        self._thread = threading.Thread(target=loop, name="memory-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.sample()

    def rows(self) -> Rows:
        rows: Rows = {}
        for name in self.roots:
            at_peak = self.pss_at_peak_kb.get(name, {})
            rows[name] = {"processes": 0.0, "VmHWM_MB": 0.0}
            rows[name] |= {column: at_peak.get(part, 0) / 1024 for part, column in PSS_PARTS.items()}
        for name, hwm in self.peak_kb.values():
            rows[name]["processes"] += 1
            rows[name]["VmHWM_MB"] += hwm / 1024
        columns = list(rows[next(iter(self.roots))])
        rows["total"] = {column: sum(row[column] for row in rows.values()) for column in columns}
        return rows


# -- the API ------------------------------------------------------------------------------------------


async def call(api: aiohttp.ClientSession, method: str, path: str, body: dict | None = None) -> dict:
    async with api.request(method, path, json=body) as response:
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {(await response.text())[:500]}")
        return await response.json()


@dataclass(frozen=True)
class Project:
    base: str  # /v1/projects/{id}
    dataset_id: str
    class_ids: list[str]


async def make_project(api: aiohttp.ClientSession, name: str) -> Project:
    project = await call(api, "POST", "/v1/projects", {"name": f"{name} {time.time_ns()}"})
    base = f"/v1/projects/{project['id']}"
    class_ids = [(await call(api, "POST", f"{base}/label-classes", {"name": cls}))["id"] for cls in CLASSES]
    dataset = await call(api, "POST", f"{base}/datasets", {"name": "peers"})
    return Project(base, dataset["id"], class_ids)


STEPS: dict[str, list[float]] = collections.defaultdict(list)  # step of a chunk → seconds, one per chunk


async def timed(step: str, work: Awaitable[T]) -> T:
    """`work`, its seconds kept under `step` (in STEPS): where a chunk's time goes."""
    started = time.perf_counter()
    try:
        return await work
    finally:
        STEPS[step].append(time.perf_counter() - started)


def step_rows(phase: str) -> Rows:
    """The steps timed since the last call, as rows named `phase: step`; forgets them."""
    rows = {
        f"{phase}: {step}": {"chunks": len(s), "mean_s": statistics.fmean(s), "max_s": max(s)}
        for step, s in STEPS.items()
    }
    STEPS.clear()
    return rows


async def poll(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """Fetch until done says so; what a user of the API does while a job runs."""
    while True:
        value = await fetch()
        if done(value):
            return value
        await asyncio.sleep(POLL_S)


async def count(api: aiohttp.ClientSession, project: Project, query: dict) -> int:
    return (await call(api, "POST", f"{project.base}/samples/count", query))["count"]


async def upload(
    api: aiohttp.ClientSession, s3: aiohttp.ClientSession, project: Project, pictures: list[Picture], declare: bool
) -> None:
    """Presigned upload of these pictures with their names and metadata (and, with `declare`, their SHA-256 and
    type), until their samples are queryable (a run is finished once ingest has recorded it; the catalog
    registers its samples a moment later)."""
    declared = [{"sha256": p.sha256, "content_type": "image/jpeg"} if declare else {} for p in pictures]
    files = [{"name": p.name, "metadata": {"weather": p.weather}, **d} for p, d in zip(pictures, declared, strict=True)]
    path = f"{project.base}/datasets/{project.dataset_id}/uploads"
    slots = await timed("slots", call(api, "POST", path, {"files": files}))
    data = [p.data for p in pictures]

    async def put_then_complete() -> None:
        completes = []
        for start in range(0, len(pictures), COMPLETE_EVERY):
            part = slots["slots"][start : start + COMPLETE_EVERY]
            await put_slots(s3, part, data, PUTS_IN_FLIGHT)
            indexes = {"indexes": [slot["index"] for slot in part]}
            completes.append(asyncio.create_task(call(api, "POST", slots["complete_url"], indexes)))
        await asyncio.gather(*completes)

    await timed("PUTs and completes", put_then_complete())
    run = await timed(
        "run finished",
        poll(
            lambda: call(api, "GET", f"{project.base}/imports/{slots['run_id']}"),
            lambda run: run["state"] in RUN_FINISHED,
        ),
    )
    if run["created"] != len(pictures):
        raise RuntimeError(f"import run {run['id']}: {run}")
    ids = {"sample_ids": [sample_id_for(project.dataset_id, p.sha256) for p in pictures]}
    await timed("queryable", poll(lambda: count(api, project, ids), lambda n: n == len(pictures)))


async def upload_multipart(api: aiohttp.ClientSession, project: Project, pictures: list[Picture]) -> None:
    """Multipart forms of up to FORM_FILES images through the gateway, FORMS_IN_FLIGHT at a time, until their
    samples are queryable; then their metadata in one bulk update, as a form carries only files and names."""
    gate = asyncio.Semaphore(FORMS_IN_FLIGHT)

    async def send(part: list[Picture]) -> None:
        form = aiohttp.FormData()
        for p in part:
            form.add_field("file", p.data, filename=p.name, content_type="image/jpeg")
        async with gate, api.post(f"{project.base}/datasets/{project.dataset_id}/files", data=form) as response:
            if response.status != 201:
                raise RuntimeError(f"multipart upload: {response.status} {(await response.text())[:500]}")
            run = (await response.json())["run"]
        if run["created"] != len(part):
            raise RuntimeError(f"import run {run['id']}: {run}")

    forms = [pictures[i : i + FORM_FILES] for i in range(0, len(pictures), FORM_FILES)]
    await timed("forms", asyncio.gather(*(send(part) for part in forms)))
    ids = [sample_id_for(project.dataset_id, p.sha256) for p in pictures]
    await timed("queryable", poll(lambda: count(api, project, {"sample_ids": ids}), lambda n: n == len(pictures)))
    items = [{"id": i, "metadata": {"weather": p.weather}} for i, p in zip(ids, pictures, strict=True)]
    await timed("metadata", call(api, "PATCH", f"{project.base}/samples", {"items": items}))


def upload_way(
    api: aiohttp.ClientSession, s3: aiohttp.ClientSession, project: Project, way: str
) -> Callable[[list[Picture]], Awaitable[None]]:
    if way == "multipart":
        return lambda pictures: upload_multipart(api, project, pictures)
    return lambda pictures: upload(api, s3, project, pictures, declare=way == "presigned")


async def register(api: aiohttp.ClientSession, project: Project, pictures: list[Picture]) -> None:
    """Samples of images already stored, by SHA-256; answered once they are queryable."""
    items = [
        {"content_hash": p.sha256, "name": p.name, "width": SIDE, "height": SIDE, "metadata": {"weather": p.weather}}
        for p in pictures
    ]
    await timed(
        "register", call(api, "POST", f"{project.base}/datasets/{project.dataset_id}/samples", {"items": items})
    )


async def write_boxes(api: aiohttp.ClientSession, project: Project, pictures: list[Picture]) -> None:
    items = [
        {
            "sample_id": sample_id_for(project.dataset_id, p.sha256),
            "class_id": project.class_ids[cls],
            "shape": {"type": "bbox", "box": box},
        }
        for p in pictures
        for cls, box in p.boxes
    ]
    body = {"items": items, "status": "LABELED"}
    await timed("boxes", call(api, "POST", f"{project.base}/labelsets/ground-truth/objects", body))


async def samples_with_labels(
    api: aiohttp.ClientSession,
    project: Project,
    pictures: list[Picture],
    make_samples: Callable[[list[Picture]], Awaitable[None]],
    chunk: int,
    in_flight: int,
) -> float:
    """Seconds from the first call until search counts every sample as LABELED: each chunk's samples are
    made, then its boxes written, `in_flight` chunks at a time."""
    gate = asyncio.Semaphore(in_flight)

    async def one(part: list[Picture]) -> None:
        async with gate:
            await make_samples(part)
            await write_boxes(api, project, part)

    started = time.perf_counter()
    await asyncio.gather(*(one(pictures[i : i + chunk]) for i in range(0, len(pictures), chunk)))
    labeled = {"labels": {"status": ["LABELED"]}}
    await timed("labels searchable", poll(lambda: count(api, project, labeled), lambda n: n == len(pictures)))
    return time.perf_counter() - started


async def release_and_export(api: aiohttp.ClientSession, project: Project, round_: int) -> dict[str, float]:
    """Seconds as the user waits, and by the jobs' own clocks: the release (asked → release file written),
    then the export (release written → COCO file written; it waits for the release)."""
    started = time.perf_counter()
    release = await call(api, "POST", f"{project.base}/releases", {"name": f"peers {round_}"})
    asked = await call(api, "POST", f"{project.base}/releases/{release['id']}/exports", {"format": "coco"})
    export = await poll(
        lambda: call(api, "GET", f"{project.base}/exports/{asked['id']}"),
        lambda export: export["state"] in ("SUCCEEDED", "FAILED"),
    )
    waited = time.perf_counter() - started
    if export["state"] == "FAILED":
        raise RuntimeError(f"export failed: {export}")
    release = await call(api, "GET", f"{project.base}/releases/{release['id']}")
    released, created = (datetime.fromisoformat(release[key]) for key in ("finished_at", "created_at"))
    return {
        "seconds": waited,
        "release_s": (released - created).total_seconds(),
        "export_s": (datetime.fromisoformat(export["finished_at"]) - released).total_seconds(),
        "boxes": export["objects"],
        "file_MB": export["size_bytes"] / 1e6,
    }


# -- the run ------------------------------------------------------------------------------------------


async def s3_requests(api: aiohttp.ClientSession, stack: Stack) -> collections.Counter[tuple[str, str]]:
    """The requests to Loupe's S3 that ingest has made so far, by bucket and method (its /metrics)."""
    async with api.get(f"http://127.0.0.1:{stack.ports.ingest}/metrics") as response:
        text = await response.text()
    found = re.findall(r'^loupe_s3_requests_total\{bucket="(\w+)",method="(\w+)"\} (\S+)$', text, re.MULTILINE)
    return collections.Counter({(bucket, method): float(value) for bucket, method, value in found})


def per_image(
    before: collections.Counter[tuple[str, str]], after: collections.Counter[tuple[str, str]], n: int
) -> Rows:
    made = after - before
    methods = sorted({method for _, method in made})
    return {bucket: {method: made[bucket, method] / n for method in methods} for bucket in sorted({b for b, _ in made})}


async def measured(stack: Stack, samples: int, work: Awaitable[float]) -> tuple[float, dict[str, float]]:
    """Samples per second of `work` (which says how many seconds it took), and the CPU ms per sample each
    process of the stack and this bench client (its thread sending requests, and the memory sampler) used."""
    before, client_before = cpu_seconds(stack.pids()), time.process_time()
    seconds = await work
    used = {name: (spent - before[name]) * 1000 / samples for name, spent in cpu_seconds(stack.pids()).items()}
    return samples / seconds, used | {"bench": (time.process_time() - client_before) * 1000 / samples}


async def run(
    stack: Stack, pictures: list[Picture], requests: int, chunk: int, in_flight: int, way_asked: str
) -> tuple[dict[str, float], dict[str, Rows]]:
    """The figures, and the tables behind them by title."""
    n = len(pictures)
    # Each way gets images of its own: ones stored already would cost the second way no S3 PUT.
    pictures_of = {way: pictures if k == 0 else make_pictures(n, seed=18 + k) for k, way in enumerate(WAYS[way_asked])}
    timeout = aiohttp.ClientTimeout(total=1800)
    figures: dict[str, float] = {}
    cpu: Rows = {}
    async with (
        aiohttp.ClientSession(
            stack.gateway_url, timeout=timeout, headers={"Authorization": f"Bearer {stack.admin_key}"}
        ) as api,
        aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=PUTS_IN_FLIGHT)) as s3,
    ):
        steps: Rows = {}
        s3_rows: Rows = {}
        uploaded: Project | None = None
        for way in WAYS[way_asked]:
            project = await make_project(api, f"peers uploaded {way}")
            uploaded = uploaded or project
            make_samples = upload_way(api, s3, project, way)
            requests_before = await s3_requests(s3, stack)
            figures[UPLOADED_FIGURE[way]], cpu[f"uploaded ({way})"] = await measured(
                stack, n, samples_with_labels(api, project, pictures_of[way], make_samples, chunk, in_flight)
            )
            made = per_image(requests_before, await s3_requests(s3, stack), n)
            s3_rows |= {f"{bucket} ({way})": row for bucket, row in made.items()}
            steps |= step_rows(f"uploaded ({way})")
        assert uploaded is not None

        stored = await make_project(api, "peers stored media")
        figures["peers_samples_with_labels_stored_media_per_s"], cpu["stored media"] = await measured(
            stack, n, samples_with_labels(api, stored, pictures, lambda p: register(api, stored, p), chunk, in_flight)
        )
        steps |= step_rows("stored media")
        for row in cpu.values():
            row["total"] = sum(row.values())

        query = the_query(uploaded.class_ids[CLASSES.index("car")])
        matches = await count(api, uploaded, query)
        if matches != expected_matches(pictures):
            raise RuntimeError(f"the query counts {matches}, the pictures say {expected_matches(pictures)}")
        page = {**query, "limit": 100}
        rows = await time_requests(
            stack.gateway_url,
            stack.admin_key,
            requests,
            {
                "count": (f"{uploaded.base}/samples/count", lambda rng: query),
                # The same call without a filter: what the request costs whatever it asks.
                "count all": (f"{uploaded.base}/samples/count", lambda rng: {}),
                "first page": (f"{uploaded.base}/samples/search", lambda rng: page),
            },
        )
        figures["peers_filtered_count_median_ms"] = rows["count"]["p50_ms"]
        figures["peers_first_page_median_ms"] = rows["first page"]["p50_ms"]

        exports = {f"round {k}": await release_and_export(api, uploaded, k) for k in range(1, EXPORT_ROUNDS + 1)}
        if any(row["boxes"] != n * BOXES_PER_IMAGE for row in exports.values()):
            raise RuntimeError(f"an export does not hold the {n * BOXES_PER_IMAGE} boxes: {exports}")
        figures["peers_release_export_s"] = statistics.median(row["seconds"] for row in exports.values())
    for name, row in rows.items():
        row["matches"] = n if name == "count all" else matches
    tables = {
        "CPU ms per sample, by process, while samples with labels went in": cpu,
        "seconds a chunk spent in each step, mean and max over chunks": steps,
        f"the query (weather = rainy AND a car box) over {n:,} samples, one client": rows,
        "release + COCO export, from asking for the release until the export SUCCEEDED": exports,
    }
    if s3_rows:  # ingest counts them since issue 18
        methods = sorted({method for row in s3_rows.values() for method in row})
        title = "S3 requests per image by ingest, by bucket and method (besides a presigned client's PUT to staging)"
        tables[title] = {name: {method: row.get(method, 0.0) for method in methods} for name, row in s3_rows.items()}
    return figures, tables


def verdicts(figures: dict[str, float]) -> str:
    lines = [f"{'figure':<46}{'value':>10}  {'unit':<10}{'target':>8}  {'':<6}{'in the issue'}"]
    for metric, value in figures.items():
        unit, target, passes, issue = TARGETS[metric]
        lines.append(
            f"{metric:<46}{value:>10.2f}  {unit:<10}{target:>8}  {'pass' if passes(value) else 'FAIL':<6}{issue}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__, "2,000 samples, 100 requests", samples=10_000, requests=300, chunk=1000, in_flight=2)
    parser.add_argument("--way", choices=list(WAYS), default="presigned", help="how the images go in (1.)")
    args = parser.parse_args()
    n, requests = (2000, 100) if args.quick else (args.samples, args.requests)
    pictures = make_pictures(n)
    with local_stack(*SERVICES) as stack, MemorySampler(stack.pids()) as memory:
        figures, tables = uvloop.run(run(stack, pictures, requests, args.chunk, args.in_flight, args.way))
    memory_rows = memory.rows()
    title = (
        "memory by process: VmHWM summed over its processes; Pss (and its anonymous, file and shared-memory "
        "parts) at the moment the whole stack's Pss peaked"
    )
    tables[title] = memory_rows
    figures["peers_peak_memory_mb"] = memory_rows["total"]["VmHWM_MB"]
    figures["peers_peak_pss_mb"] = memory_rows["total"]["Pss_MB"]

    print(
        f"{n:,} 64×64 JPEGs, {BOXES_PER_IMAGE} boxes each; {args.chunk} per chunk, {args.in_flight} chunks "
        f"in flight, uploaded {' and '.join(WAYS[args.way])}; {requests} requests per query"
    )
    for title, rows in tables.items():
        print(table(f"\n{title}", rows))
    print()
    print(verdicts(figures))
    for metric, value in figures.items():
        print(figure(metric, value, TARGETS[metric][0], n))


if __name__ == "__main__":
    main()
