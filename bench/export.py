"""A release and its COCO export, at scale.

    python -m bench.export [--quick] [--samples N] [--objects-per-sample K]

Starts NATS, Postgres, SeaweedFS, the catalog, annotation and the gateway on free ports in a
temporary folder. A project with 10 classes and a dataset is made through the API; N samples and
N × K labelled boxes are then loaded straight into annotation's tables with COPY (writing them
through the API is what bench.labels measures; here it would only take longer).

Measured, through the API as a user does it: the time from asking for the release until its COCO
export can be downloaded (release job: snapshot → release file in S3; export job: release file →
COCO JSON in S3), and the peak memory of the annotation process that built both (its VmHWM, reset
just before). Figures: `coco_export_s`, `coco_export_peak_rss_mb`, and the two jobs' shares.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import uvloop

from bench.report import arguments, figure, local_stack
from loupe.stack import Stack

CLASSES = 10
COPY_ROWS = 50_000


async def call(api: aiohttp.ClientSession, method: str, path: str, body: dict | None = None) -> dict:
    async with api.request(method, path, json=body) as response:
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {await response.text()}")
        return await response.json()


async def load(stack: Stack, project_id: str, dataset_id: str, classes: list[str], samples: int,
               per_sample: int) -> None:
    """Samples, ground-truth labels and boxes, as annotation itself would have stored them."""
    conn = await asyncpg.connect(stack.settings.database_url, server_settings={"search_path": "annotation, public"})
    try:
        project, dataset = uuid.UUID(project_id), uuid.UUID(dataset_id)
        labelset = await conn.fetchval(
            "INSERT INTO labelsets (project_id, name, is_ground_truth) VALUES ($1, 'ground-truth', true) "
            "ON CONFLICT (project_id, name) DO UPDATE SET is_ground_truth = true RETURNING id", project)
        now = datetime.now(UTC)
        stamp = now.isoformat().replace("+00:00", "Z")
        sample_rows, label_rows, object_rows = [], [], []

        async def flush(force: bool = False) -> None:
            if force or len(object_rows) >= COPY_ROWS:
                await conn.copy_records_to_table("samples", records=sample_rows, columns=(
                    "id", "project_id", "dataset_id", "name", "media_url", "width", "height"))
                await conn.copy_records_to_table("labels", records=label_rows, columns=(
                    "labelset_id", "sample_id", "project_id", "status", "version", "updated_at"))
                await conn.copy_records_to_table("objects", records=object_rows, columns=(
                    "id", "labelset_id", "sample_id", "class_id", "version", "body"))
                sample_rows.clear(), label_rows.clear(), object_rows.clear()

        for i in range(samples):
            sample = uuid.uuid4()
            sample_rows.append((sample, project, dataset, f"img_{i:07}.jpg", f"https://images.example.com/{i}.jpg",
                                1920, 1080))
            label_rows.append((labelset, sample, project, "LABELED", 1, now))
            for k in range(per_sample):
                ident = uuid.uuid4()
                x, y = (i * 37 + k * 101) % 1800, (i * 53 + k * 61) % 1000
                class_id = classes[(i + k) % len(classes)]
                body = json.dumps({"id": str(ident), "class_id": class_id,
                                   "shape": {"type": "bbox", "box": [x, y, x + 64.5, y + 48.25]}, "z_index": 0,
                                   "attributes": {}, "confidence": None, "external_id": None, "version": 1,
                                   "updated_by": "bench", "updated_at": stamp})
                object_rows.append((ident, labelset, sample, uuid.UUID(class_id), 1, body))
            await flush()
        await flush(force=True)
        await conn.execute("ANALYZE samples; ANALYZE labels; ANALYZE objects")
    finally:
        await conn.close()


def high_water_mark_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def reset_high_water_mark(pid: int) -> None:
    """Linux: writing 5 to clear_refs resets the peak resident set size to the current one."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def wait_done(api: aiohttp.ClientSession, path: str) -> dict:
    while True:
        body = await call(api, "GET", path)
        if body["state"] in ("SUCCEEDED", "FAILED"):
            if body["state"] == "FAILED":
                raise RuntimeError(f"{path} failed: {body['error']}")
            return body
        await asyncio.sleep(0.05)


async def run(stack: Stack, samples: int, per_sample: int) -> None:
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(stack.gateway_url, timeout=timeout,
                                     headers={"Authorization": f"Bearer {stack.admin_key}"}) as api:
        project = await call(api, "POST", "/v1/projects", {"name": f"bench export {time.time_ns()}"})
        base = f"/v1/projects/{project['id']}"
        classes = [(await call(api, "POST", f"{base}/label-classes", {"name": f"class {c}"}))["id"]
                   for c in range(CLASSES)]
        dataset = await call(api, "POST", f"{base}/datasets", {"name": "train"})
        started = time.perf_counter()
        await load(stack, project["id"], dataset["id"], classes, samples, per_sample)
        load_s = time.perf_counter() - started

        annotation = stack.pids()["annotation"]
        reset_high_water_mark(annotation)
        baseline_mb = high_water_mark_mb(annotation)
        started = time.perf_counter()
        release = await call(api, "POST", f"{base}/releases", {"name": "bench"})
        export = await call(api, "POST", f"{base}/releases/{release['id']}/exports", {"format": "coco"})
        release = await wait_done(api, f"{base}/releases/{release['id']}")
        release_s = time.perf_counter() - started
        export = await wait_done(api, f"{base}/exports/{export['id']}")
        total_s = time.perf_counter() - started
        peak_mb = high_water_mark_mb(annotation)
    objects = samples * per_sample
    assert release["objects"] == objects and export["objects"] == objects, (release, export)
    print(f"{'step':<48}{'seconds':>10}")
    print(f"{'load ' + f'{samples:,} samples, {objects:,} boxes (COPY)':<48}{load_s:>10.2f}")
    print(f"{'release: snapshot → release file in S3':<48}{release_s:>10.2f}")
    print(f"{'export: release file → COCO JSON in S3':<48}{total_s - release_s:>10.2f}")
    print(f"{'release + COCO export, as the user waits':<48}{total_s:>10.2f}")
    print(f"\nannotation process: {baseline_mb:.0f} MB resident before, {peak_mb:.0f} MB at its peak; "
          f"COCO file {export['size_bytes'] / 1e6:.0f} MB")
    print(figure("coco_export_s", total_s, "s", objects))
    print(figure("coco_export_release_s", release_s, "s", objects))
    print(figure("coco_export_peak_rss_mb", peak_mb, "MB", objects))


def main() -> None:
    parser = arguments(__doc__, "10,000 samples, 100,000 boxes", samples=100_000, objects_per_sample=10)
    args = parser.parse_args()
    samples = 10_000 if args.quick else args.samples
    with local_stack("catalog", "annotation", "gateway") as stack:
        uvloop.run(run(stack, samples, args.objects_per_sample))


if __name__ == "__main__":
    main()
