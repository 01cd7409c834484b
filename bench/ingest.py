"""Ingest end to end, and registration of media Loupe already stored.

    python -m bench.ingest [--quick] [--images N] [--datasets D] [--replicas R]

`--replicas R` runs R processes of the catalog and of ingest (issue 17: two should not be slower than one).

Starts NATS, Postgres, SeaweedFS, the catalog, ingest and the gateway on free ports in a temporary
folder, makes N distinct 640×480 JPEGs, and measures:

1. `ingest_images_per_s`: a presigned upload of the N images; the clock runs from the moment their
   bytes are in S3 (the upload is completed) until every one is decoded, thumbnailed, stored and
   queryable as a sample. The PUT phase is timed and printed separately.
2. `register_samples_per_s`: the catalog's bulk registration of already-uploaded media: the N stored
   images (by SHA-256, width and height) made samples of D more datasets, N × D samples, 10,000 per
   call, 4 calls in flight; a call answers once its samples are queryable. The same organisation
   uploaded them in phase 1, so each call's check with ingest (did it store them?) passes.
3. `register_stored_media_per_s`: the same through ingest (POST .../media), which checks each image is
   really stored and takes its facts from there, until all of them are queryable.
"""

from __future__ import annotations

import asyncio
import io
import random
import time

import aiohttp
import uvloop
from PIL import Image, ImageDraw

from bench.report import arguments, cpu_seconds, figure, local_stack
from loupe.stack import Stack

SLOTS_PER_CALL = 1000
REGISTER_PER_CALL = 10_000


def make_jpegs(count: int) -> list[bytes]:
    """Photo-like 640×480 JPEGs (noise over colour, ~60 KB each), each made distinct by a marker."""
    rng = random.Random(7)
    backgrounds = [Image.blend(Image.new("RGB", (640, 480), tuple(rng.randrange(256) for _ in range(3))),
                               Image.effect_noise((640, 480), 24).convert("RGB"), 0.25) for _ in range(16)]
    images = []
    for i in range(count):
        image = backgrounds[i % len(backgrounds)].copy()
        ImageDraw.Draw(image).rectangle((i % 600, (i // 600) % 440, i % 600 + 40, (i // 600) % 440 + 40),
                                        fill=(i % 256, (i // 256) % 256, 255 - i % 256))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=85)
        images.append(out.getvalue())
    return images


async def count_samples(api: aiohttp.ClientSession, project_id: str, dataset_id: str | None = None) -> int:
    params = {"limit": 1, "total": "exact", **({"dataset_id": dataset_id} if dataset_id else {})}
    async with api.get(f"/v1/projects/{project_id}/samples", params=params) as response:
        response.raise_for_status()
        return (await response.json())["total"]


async def wait_for_samples(api: aiohttp.ClientSession, project_id: str, count: int) -> None:
    # Polls the public API, as a client would: nothing in this process could be awaited instead.
    while await count_samples(api, project_id) < count:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def post(api: aiohttp.ClientSession, path: str, body: dict) -> dict:
    async with api.post(path, json=body) as response:
        if response.status >= 300:
            raise RuntimeError(f"POST {path}: {response.status} {await response.text()}")
        return await response.json()


async def ingest_phase(api: aiohttp.ClientSession, images: list[bytes]) -> tuple[str, list[str], float, float]:
    project = await post(api, "/v1/projects", {"name": f"bench ingest {time.time_ns()}"})
    dataset = await post(api, f"/v1/projects/{project['id']}/datasets", {"name": "uploads"})
    base = f"/v1/projects/{project['id']}"
    uploads, queue = [], []
    for start in range(0, len(images), SLOTS_PER_CALL):
        chunk = images[start:start + SLOTS_PER_CALL]
        upload = await post(api, f"{base}/datasets/{dataset['id']}/uploads", {"count": len(chunk)})
        uploads.append(upload)
        queue += [(slot["url"], chunk[slot["index"]]) for slot in upload["slots"]]
    put_started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as s3:
        async def put_worker() -> None:
            while queue:
                url, data = queue.pop()
                async with s3.put(url, data=data) as response:
                    response.raise_for_status()
        await asyncio.gather(*(put_worker() for _ in range(16)))
    put_s = time.perf_counter() - put_started

    started = time.perf_counter()
    for upload in uploads:
        await post(api, upload["complete_url"], {})
    await wait_for_samples(api, project["id"], len(images))
    elapsed = time.perf_counter() - started
    async with api.get(f"{base}/imports", params={"limit": 500}) as response:
        runs = (await response.json())["items"]
    run_ids = [run["id"] for run in runs]
    assert sum(run["created"] for run in runs) == len(images), runs
    return project["id"], run_ids, put_s, elapsed


async def stored_media(api: aiohttp.ClientSession, project_id: str, run_ids: list[str]) -> list[dict]:
    """Each stored image's SHA-256 and its sample's width and height."""
    hashes = []
    for run_id in run_ids:
        after = -1
        while after is not None:
            async with api.get(f"/v1/projects/{project_id}/imports/{run_id}/items",
                               params={"limit": 1000, "after": after}) as response:
                page = await response.json()
            hashes += [item["sha256"] for item in page["items"]]
            after = page["next_after"]
    return [{"content_hash": sha, "name": f"{sha[:16]}.jpg", "width": 640, "height": 480} for sha in hashes]


async def register_phase(api: aiohttp.ClientSession, project_id: str, media: list[dict], datasets: int,
                         through_ingest: bool) -> tuple[float, float]:
    """Seconds until every registration call was answered, and until every sample was queryable."""
    label = "via ingest" if through_ingest else "catalog"
    targets = [await post(api, f"/v1/projects/{project_id}/datasets", {"name": f"{label} {i}"})
               for i in range(datasets)]
    calls = [(dataset["id"], media[start:start + REGISTER_PER_CALL])
             for dataset in targets for start in range(0, len(media), REGISTER_PER_CALL)]
    before = await count_samples(api, project_id)
    started = time.perf_counter()

    async def worker() -> None:
        while calls:
            dataset_id, chunk = calls.pop()
            if through_ingest:
                await post(api, f"/v1/projects/{project_id}/datasets/{dataset_id}/media",
                           {"items": [{"sha256": item["content_hash"]} for item in chunk]})
            else:
                await post(api, f"/v1/projects/{project_id}/datasets/{dataset_id}/samples", {"items": chunk})
    await asyncio.gather(*(worker() for _ in range(4)))
    answered = time.perf_counter() - started
    await wait_for_samples(api, project_id, before + len(media) * datasets)
    return answered, time.perf_counter() - started


async def run(stack: Stack, images: list[bytes], datasets: int) -> None:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(stack.gateway_url, timeout=timeout,
                                     headers={"Authorization": f"Bearer {stack.admin_key}"}) as api:
        cpu_before = cpu_seconds(stack.pids())
        project_id, run_ids, put_s, ingest_s = await ingest_phase(api, images)
        cpu_used = {name: seconds - cpu_before[name] for name, seconds in cpu_seconds(stack.pids()).items()}
        media = await stored_media(api, project_id, run_ids)
        _, catalog_s = await register_phase(api, project_id, media, datasets, through_ingest=False)
        answered_s, register_s = await register_phase(api, project_id, media, datasets, through_ingest=True)
    n, registered = len(images), len(media) * datasets
    megabytes = sum(map(len, images)) / 1e6
    print(f"{'phase':<44}{'items':>10}{'seconds':>10}{'items/s':>10}")
    print(f"{'PUT to presigned URLs (' + f'{megabytes:.0f} MB)':<44}{n:>10}{put_s:>10.2f}{n / put_s:>10.0f}")
    print(f"{'bytes in S3 -> samples queryable':<44}{n:>10}{ingest_s:>10.2f}{n / ingest_s:>10.0f}")
    print(f"{'register (catalog bulk create) -> queryable':<44}{registered:>10}{catalog_s:>10.2f}"
          f"{registered / catalog_s:>10.0f}")
    print(f"{'register via ingest: calls answered':<44}{registered:>10}{answered_s:>10.2f}"
          f"{registered / answered_s:>10.0f}")
    print(f"{'register via ingest -> queryable':<44}{registered:>10}{register_s:>10.2f}"
          f"{registered / register_s:>10.0f}")
    print("\nCPU ms per image during upload and ingest, by process (the bench client not included):")
    for name, seconds in sorted(cpu_used.items(), key=lambda item: -item[1]):
        print(f"  {name:<12}{seconds * 1000 / n:>8.2f}")
    print(figure("ingest_images_per_s", n / ingest_s, "images/s", n))
    print(figure("register_samples_per_s", registered / catalog_s, "samples/s", registered))
    print(figure("register_stored_media_per_s", registered / register_s, "samples/s", registered))


def main() -> None:
    parser = arguments(__doc__, "300 images, 2 datasets", images=5000, datasets=20, replicas=1)
    args = parser.parse_args()
    count, datasets = (300, 2) if args.quick else (args.images, args.datasets)
    images = make_jpegs(count)
    with local_stack("catalog", "ingest", "gateway", replicas=args.replicas) as stack:
        uvloop.run(run(stack, images, datasets))


if __name__ == "__main__":
    main()
