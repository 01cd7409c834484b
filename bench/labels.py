"""Bulk label writes through the REST API.

    python -m bench.labels [--quick] [--objects N] [--per-call K] [--clients C] [--replicas R]

`--replicas R` runs R processes of the catalog and of annotation (issue 17: two should not be slower than one).

Starts NATS, Postgres, SeaweedFS, the catalog, annotation and the gateway on free ports in a
temporary folder, makes a project (two classes, an INT attribute) with N / 10 samples, waits until
annotation's read model of the samples has caught up, then writes N boxes, 10 per sample, K objects
per call (`POST .../labelsets/ground-truth/objects`), C calls in flight. Every call is validated
against the schema and the image size, versioned, audited and announced (LabelChanged), as in use.

Figures: `label_write_objects_per_s` (objects stored per second, from the first call to the last
answer), and the same for polygons (8 points each) as a second row of the table.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import nats
import uvloop

from bench.report import arguments, cpu_seconds, figure, local_stack, summary, table
from loupe.stack import Stack
from proto import subjects

SAMPLES_PER_CALL = 10_000
OBJECTS_PER_SAMPLE = 10


async def post(api: aiohttp.ClientSession, path: str, body: dict) -> dict:
    async with api.post(path, json=body) as response:
        if response.status >= 300:
            raise RuntimeError(f"POST {path}: {response.status} {await response.text()}")
        return await response.json()


async def make_project(api: aiohttp.ClientSession, samples: int) -> tuple[str, dict[str, str], str, list[str]]:
    project = await post(api, "/v1/projects", {"name": f"bench labels {time.time_ns()}"})
    base = f"/v1/projects/{project['id']}"
    classes = {name: (await post(api, f"{base}/label-classes", {"name": name}))["id"] for name in ("car", "person")}
    attribute = (await post(api, f"{base}/attributes", {"name": "occlusion", "type": "INT", "min": 0, "max": 3}))["id"]
    dataset = await post(api, f"{base}/datasets", {"name": "train"})
    ids: list[str] = []
    for start in range(0, samples, SAMPLES_PER_CALL):
        items = [{"name": f"img_{i:07}.jpg", "media_url": f"https://images.example.com/{i}.jpg", "width": 1920,
                  "height": 1080} for i in range(start, min(samples, start + SAMPLES_PER_CALL))]
        created = await post(api, f"{base}/datasets/{dataset['id']}/samples", {"items": items})
        ids += [item["id"] for item in created["items"]]
    return project["id"], classes, attribute, ids


async def wait_for_read_model(stack: Stack) -> None:
    """Until annotation has applied every catalog event: writes then find their samples locally."""
    connection = await nats.connect(stack.settings.nats_url)
    try:
        while True:
            info = await connection.jetstream().consumer_info(subjects.EVENTS_STREAM, "annotation-events")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


def box(i: int, class_id: str, attribute: str) -> dict:
    x, y = (i * 37) % 1800, (i * 53) % 1000
    return {"class_id": class_id, "shape": {"type": "bbox", "box": [x, y, x + 60, y + 40]},
            "attributes": {attribute: i % 4}}


def polygon(i: int, class_id: str, attribute: str) -> dict:
    x, y = (i * 37) % 1800, (i * 53) % 1000
    points = [[x, y], [x + 30, y - 0.0], [x + 60, y + 10], [x + 60, y + 30], [x + 40, y + 40], [x + 20, y + 40],
              [x, y + 30], [x - 0.0, y + 15]]
    return {"class_id": class_id, "shape": {"type": "polygon", "points": points}, "attributes": {attribute: i % 4}}


async def write_phase(api: aiohttp.ClientSession, project_id: str, calls: list[list[dict]], clients: int
                      ) -> tuple[float, list[float]]:
    path = f"/v1/projects/{project_id}/labelsets/ground-truth/objects"
    queue = list(reversed(calls))
    latencies: list[float] = []

    async def client() -> None:
        while queue:
            items = queue.pop()
            started = time.perf_counter()
            await post(api, path, {"items": items})
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


def plan(make, ids: list[str], classes: dict[str, str], attribute: str, objects: int, per_call: int,
         offset: int) -> list[list[dict]]:
    class_ids = list(classes.values())
    items = [{"sample_id": ids[(i // OBJECTS_PER_SAMPLE) % len(ids)],
              **make(offset + i, class_ids[i % 2], attribute)} for i in range(objects)]
    return [items[start:start + per_call] for start in range(0, objects, per_call)]


async def run(stack: Stack, objects: int, per_call: int, clients: int) -> None:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(stack.gateway_url, timeout=timeout,
                                     headers={"Authorization": f"Bearer {stack.admin_key}"}) as api:
        samples = objects // OBJECTS_PER_SAMPLE
        project_id, classes, attribute, ids = await make_project(api, 2 * samples)
        await wait_for_read_model(stack)
        rows, cpu = {}, {}
        for name, make, offset in (("boxes", box, 0), ("polygons", polygon, samples)):
            calls = plan(make, ids[offset:offset + samples], classes, attribute, objects, per_call, 0)
            before = cpu_seconds(stack.pids())
            elapsed, latencies = await write_phase(api, project_id, calls, clients)
            cpu[name] = {process: (seconds - before[process]) * 1e6 / objects
                         for process, seconds in cpu_seconds(stack.pids()).items()}
            rows[name] = {"objects": objects, "seconds": elapsed, "objects/s": objects / elapsed,
                          **{k: v for k, v in summary(latencies, elapsed).items() if k in ("p50_ms", "p99_ms")}}
    print(table(f"bulk object writes, {per_call} per call, {clients} calls in flight", rows))
    print(table("\nCPU µs per object, by process (the bench client not included)", cpu))
    print(figure("label_write_objects_per_s", rows["boxes"]["objects/s"], "objects/s", objects))
    print(figure("label_write_polygons_per_s", rows["polygons"]["objects/s"], "objects/s", objects))


def main() -> None:
    parser = arguments(__doc__, "20,000 objects", objects=200_000, per_call=1000, clients=4, replicas=1)
    args = parser.parse_args()
    objects = 20_000 if args.quick else args.objects
    with local_stack("catalog", "annotation", "gateway", replicas=args.replicas) as stack:
        uvloop.run(run(stack, objects, args.per_call, args.clients))


if __name__ == "__main__":
    main()
