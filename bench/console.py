"""The web console in a real Chromium over a large project (issue 15).

    python -m bench.console [--quick] [--samples N] [--images I] [--boxes B]

Starts the local stack without Triton on free ports in a temporary folder, uploads I (default 500) distinct
images by presigned upload, then bulk-loads N samples (default 100,000; --quick 10,000) by registering
those images again in further datasets (`POST …/datasets/{d}/samples` with their `content_hash`: no pixels
move), and writes B boxes (default 1,000) on one sample. Playwright drives headless Chromium
(`/usr/bin/chromium`) through the console, signed in with the admin key, and measures:

1. `console_grid_first_paint_ms`: from opening the grid of all N samples until the first thumbnail has
   loaded (the median of 5 loads);
2. `console_grid_scroll_requests` and `console_grid_dom_nodes`: API calls made and the most DOM nodes seen
   while jumping through the whole grid in 20 steps, top to bottom;
3. `console_sample_open_ms`: from opening the sample with B boxes until all B are drawn (median of 5);
4. `console_sample_select_ms`: selecting one of those boxes by a click, until it is drawn as selected
   (the page stays responsive with B objects).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from PIL import Image, ImageDraw

from bench.report import arguments, figure, local_stack, put_slots, table
from proto.samples import sample_id_for

CHROMIUM = "/usr/bin/chromium"
SIDE = 96
REGISTER_CHUNK = 10_000  # the most samples one create call takes
PUTS_IN_FLIGHT = 16
REPEATS = 5
RUN_FINISHED = ("SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class Picture:
    name: str
    data: bytes
    sha256: str
    metadata: dict


def make_pictures(count: int, prefix: str = "img", metadata: Iterable[dict] | None = None) -> list[Picture]:
    """Distinct small JPEGs: a coloured background with a darker square whose place depends on the index."""
    metas = list(metadata) if metadata is not None else [{"index": i} for i in range(count)]
    pictures = []
    for i in range(count):
        image = Image.new("RGB", (SIDE, SIDE), ((i * 37) % 200 + 40, (i * 91) % 200 + 40, (i * 53) % 200 + 40))
        x, y = (i * 7) % (SIDE - 24), (i * 13) % (SIDE - 24)
        ImageDraw.Draw(image).rectangle([x, y, x + 24, y + 24], fill=(20, 20, 20))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        data = buffer.getvalue()
        pictures.append(Picture(f"{prefix}_{i:06}.jpg", data, hashlib.sha256(data).hexdigest(), metas[i]))
    return pictures


async def call(api: aiohttp.ClientSession, method: str, path: str, body: dict | None = None) -> dict:
    async with api.request(method, path, json=body) as response:
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {await response.text()}")
        return {} if response.status == 204 else await response.json()


async def upload(api: aiohttp.ClientSession, base: str, dataset_id: str, pictures: list[Picture]) -> list[str]:
    """Presigned upload of the pictures; their sample ids once the catalog has them all."""
    files = [{"name": p.name, "metadata": p.metadata} for p in pictures]
    slots = await call(api, "POST", f"{base}/datasets/{dataset_id}/uploads", {"files": files})
    async with aiohttp.ClientSession() as s3:
        await put_slots(s3, slots["slots"], [p.data for p in pictures], PUTS_IN_FLIGHT)
    await call(api, "POST", slots["complete_url"], {})
    ids = [str(sample_id_for(dataset_id, p.sha256)) for p in pictures]
    for _ in range(1200):
        run = await call(api, "GET", f"{base}/imports/{slots['run_id']}")
        counted = await call(api, "POST", f"{base}/samples/count", {"sample_ids": ids})
        if run["state"] in RUN_FINISHED and counted["count"] == len(ids):
            return ids
        await asyncio.sleep(0.1)
    raise RuntimeError(f"upload run {slots['run_id']} did not finish: {run}")


async def bulk_load(api: aiohttp.ClientSession, base: str, pictures: list[Picture], total: int) -> int:
    """Registers the (already stored) pictures again in new datasets `bulk-0001`, … until `total` samples
    exist beyond the first upload; the samples made."""
    made, number = 0, 0
    while made < total:
        number += 1
        dataset = await call(api, "POST", f"{base}/datasets", {"name": f"bulk-{number:04}"})
        for start in range(0, len(pictures), REGISTER_CHUNK):
            chunk = pictures[start : start + min(REGISTER_CHUNK, total - made)]
            items = [
                {"content_hash": p.sha256, "name": p.name, "width": SIDE, "height": SIDE, "metadata": p.metadata}
                for p in chunk
            ]
            if not items:
                break
            await call(api, "POST", f"{base}/datasets/{dataset['id']}/samples", {"items": items})
            made += len(items)
    return made


async def project_with_samples(
    api: aiohttp.ClientSession, name: str, images: int, samples: int
) -> tuple[str, list[str]]:
    """A project with one class, `images` uploaded pictures and `samples` samples in all; (id, uploaded ids)."""
    project = await call(api, "POST", "/v1/projects", {"name": name})
    base = f"/v1/projects/{project['id']}"
    await call(api, "POST", f"{base}/label-classes", {"name": "car"})
    dataset = await call(api, "POST", f"{base}/datasets", {"name": "uploaded"})
    pictures = make_pictures(images)
    ids = await upload(api, base, dataset["id"], pictures)
    await bulk_load(api, base, pictures, samples - images)
    return project["id"], ids


async def many_boxes(api: aiohttp.ClientSession, project_id: str, sample_id: str, count: int) -> None:
    base = f"/v1/projects/{project_id}"
    car = (await call(api, "GET", f"{base}/label-classes"))["items"][0]["id"]
    objects = []
    for i in range(count):
        x, y = (i * 3) % (SIDE - 4), (i * 7) % (SIDE - 4)
        objects.append({"class_id": car, "shape": {"type": "bbox", "box": [x, y, x + 4, y + 4]}})
    await call(api, "PUT", f"{base}/samples/{sample_id}/labels/ground-truth", {"objects": objects})


# -- measuring in the browser -----------------------------------------------------------------------------


def measure(gateway_url: str, key: str, project_id: str, sample_id: str, boxes: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    figures: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(gateway_url + "/")
        page.evaluate("key => sessionStorage.setItem('loupe.apiKey', key)", key)
        paints = []
        for _ in range(REPEATS):
            page.goto("about:blank")  # a fresh load of the console each time; the tab keeps its key
            started = time.perf_counter()
            page.goto(f"{gateway_url}/#/p/{project_id}/samples")
            page.wait_for_function(
                "[...document.querySelectorAll('.cell img')].some(i => i.complete && i.naturalWidth > 0)"
            )
            paints.append((time.perf_counter() - started) * 1000)
        figures["console_grid_first_paint_ms"] = statistics.median(paints)
        api_calls = []
        page.on("request", lambda request: "/v1/" in request.url and api_calls.append(request.url))
        most_nodes = 0
        for step in range(1, 21):
            page.evaluate(
                "f => { const v = document.querySelector('.grid-viewport'); v.scrollTop = f * (v.scrollHeight - v.clientHeight); }",
                step / 20,
            )
            page.wait_for_function("document.querySelectorAll('.cell.placeholder').length === 0")
            page.wait_for_timeout(300)
            most_nodes = max(most_nodes, page.evaluate("document.getElementsByTagName('*').length"))
        figures["console_grid_scroll_requests"] = len(api_calls)
        figures["console_grid_dom_nodes"] = most_nodes
        opens = []
        for _ in range(REPEATS):
            page.goto("about:blank")
            started = time.perf_counter()
            page.goto(f"{gateway_url}/#/p/{project_id}/s/{sample_id}")
            page.wait_for_function(f"document.querySelectorAll('#objects g.object').length === {boxes}")
            opens.append((time.perf_counter() - started) * 1000)
        figures["console_sample_open_ms"] = statistics.median(opens)
        started = time.perf_counter()
        page.click("#object-list li:nth-child(500)")
        page.wait_for_selector("#objects g.object.selected", state="attached")
        figures["console_sample_select_ms"] = (time.perf_counter() - started) * 1000
        browser.close()
    return figures


UNITS = {
    "console_grid_first_paint_ms": "ms",
    "console_grid_scroll_requests": "requests",
    "console_grid_dom_nodes": "nodes",
    "console_sample_open_ms": "ms",
    "console_sample_select_ms": "ms",
}
# The table's short row names.
ROWS = {
    "console_grid_first_paint_ms": "paint ms",
    "console_grid_scroll_requests": "scroll reqs",
    "console_grid_dom_nodes": "dom nodes",
    "console_sample_open_ms": "open ms",
    "console_sample_select_ms": "select ms",
}


async def prepare(gateway_url: str, key: str, images: int, samples: int, boxes: int) -> tuple[str, str]:
    async with aiohttp.ClientSession(gateway_url, headers={"Authorization": f"Bearer {key}"}) as api:
        project_id, ids = await project_with_samples(api, "console bench", images, samples)
        await many_boxes(api, project_id, ids[0], boxes)
    return project_id, ids[0]


def main() -> None:
    parser = arguments(__doc__, "10,000 samples", samples=100_000, images=500, boxes=1000)
    args = parser.parse_args()
    samples = 10_000 if args.quick else args.samples
    with local_stack("gateway", "catalog", "annotation", "ingest") as stack:
        started = time.perf_counter()
        project_id, sample_id = asyncio.run(
            prepare(stack.gateway_url, stack.admin_key, args.images, samples, args.boxes)
        )
        print(f"loaded {samples:,} samples in {time.perf_counter() - started:.1f} s")
        figures = measure(stack.gateway_url, stack.admin_key, project_id, sample_id, args.boxes)
    print(table(f"console over {samples:,} samples", {ROWS[name]: {"value": value} for name, value in figures.items()}))
    for name, value in figures.items():
        print(figure(name, value, UNITS[name], samples))


if __name__ == "__main__":
    main()
