"""Synthetic images of shapes with known boxes, polygons and tags: Loupe's own data for tests, benchmarks,
the demo and first tries, since no data set can be downloaded where Loupe is built.

Every image is a textured, noisy background with 1..n shapes (circle, square, triangle) in one of four
colours, under a global weather effect (clear, fog, rain). The largest object is drawn first and is
always clearly the largest, so its shape and colour make unambiguous image-level tags.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import sys
import time
from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np
from PIL import Image, ImageDraw

from shared.errors import HTTP_STATUS, LoupeError, invalid

if TYPE_CHECKING:
    from proto.training import Family
    from services.training.ml.examples import Example
    from shared.predictions import TaskSpec

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
WEATHER = ("clear", "fog", "rain")
TAG_GROUPS = (("weather", WEATHER), ("shape", SHAPES), ("colour", COLOURS))

Box = tuple[float, float, float, float]
Polygon = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class SynthObject:
    shape: str
    colour: str
    box: Box  # x0, y0, x1, y1 in pixels: the polygon's bounds
    polygon: Polygon


@dataclass(frozen=True)
class SynthImage:
    name: str
    image: Image.Image
    objects: tuple[SynthObject, ...]  # in drawing order: later ones cover earlier ones
    tags: dict[str, str]  # one value per TAG_GROUPS group


@dataclass(frozen=True)
class Palette:
    colours: dict[str, tuple[int, int, int]]
    background: tuple[tuple[int, int, int], tuple[int, int, int]]  # the range each channel's base is drawn from
    stripes: bool  # the shifted texture: diagonal stripes under the blotches


# The shifted palette keeps each colour's name but moves its hue and the background, as a new camera or
# site would: a model trained on one should do measurably worse on the other.
PALETTES = {
    False: Palette(
        colours={"red": (215, 45, 40), "green": (45, 175, 60), "blue": (40, 85, 215), "yellow": (235, 215, 40)},
        background=((105, 100, 90), (150, 145, 135)),
        stripes=False,
    ),
    True: Palette(
        colours={"red": (185, 30, 105), "green": (25, 125, 110), "blue": (85, 45, 170), "yellow": (245, 165, 35)},
        background=((50, 60, 75), (95, 105, 120)),
        stripes=True,
    ),
}

FOG_COLOUR = np.array([218, 218, 224], dtype=np.float32)
RAIN_COLOUR = np.array([215, 220, 235], dtype=np.float32)
CIRCLE_VERTICES = 32
# Areas as fractions of the image: the largest object, and the others relative to it. Objects are never
# smaller than a square of a sixth of the image's side, so a small CNN sees them at 64x64.
LARGEST_AREA = (0.10, 0.18)
OTHER_AREA_OF_LARGEST = 0.35
MIN_SIDE_OF_IMAGE = 1 / 6
# Two objects' boxes may share at most this fraction of the smaller box.
MAX_OVERLAP = 0.15
PLACEMENT_TRIES = 30
# Radians squares and triangles may turn: enough to vary, too little to blur them into each other.
MAX_TILT = 0.2


def generate(
    count: int, size: int = 64, seed: int = 0, *, objects: tuple[int, int] = (1, 3), shift: bool = False
) -> Iterator[SynthImage]:
    """`count` images of `size`x`size`, each with objects[0]..objects[1] shapes (fewer only when one
    cannot be placed without overlapping). Image i depends only on (seed, i, shift). Bad arguments are
    refused by the call itself, before anything is drawn."""
    validate(count, size, seed, objects)
    return draw_images(count, size, seed, objects, shift)


def draw_images(count: int, size: int, seed: int, objects: tuple[int, int], shift: bool) -> Iterator[SynthImage]:
    palette = PALETTES[shift]
    prefix = f"synth-{seed}-{'shift-' if shift else ''}"
    for index in range(count):
        rng = np.random.default_rng([seed, index, int(shift)])
        yield draw_image(f"{prefix}{index:06d}.png", size, rng, palette, objects)


def validate(count: int, size: int, seed: int, objects: tuple[int, int]) -> None:
    if count < 0:
        raise invalid("count must be 0 or more", path="count")
    if size < 16:
        raise invalid("size must be at least 16 pixels, or shapes become unrecognisable", path="size")
    if seed < 0:
        raise invalid("seed must be 0 or more", path="seed")
    low, high = objects
    if not 1 <= low <= high <= 20:
        raise invalid("objects must be (low, high) with 1 <= low <= high <= 20", path="objects")


def draw_image(
    name: str, size: int, rng: np.random.Generator, palette: Palette, objects: tuple[int, int]
) -> SynthImage:
    pixels = background(size, rng, palette)
    canvas = Image.fromarray(pixels)
    draw = ImageDraw.Draw(canvas)
    placed: list[SynthObject] = []
    wanted = int(rng.integers(objects[0], objects[1] + 1))
    largest_area = rng.uniform(*LARGEST_AREA) * size * size
    min_area = (size * MIN_SIDE_OF_IMAGE) ** 2
    for number in range(wanted):
        area = (
            largest_area if number == 0 else rng.uniform(min_area, max(min_area, OTHER_AREA_OF_LARGEST * largest_area))
        )
        found = place(str(rng.choice(SHAPES)), str(rng.choice(COLOURS)), area, size, rng, placed)
        if found is None:
            continue
        placed.append(found)
        jitter = rng.integers(-18, 19, size=3)
        fill = tuple(int(c) for c in np.clip(np.array(palette.colours[found.colour]) + jitter, 0, 255))
        draw.polygon(found.polygon, fill=fill)
    weather = str(rng.choice(WEATHER))
    pixels = apply_weather(np.asarray(canvas, dtype=np.float32), weather, rng)
    pixels += rng.normal(0, 5, pixels.shape)  # sensor noise over everything
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    largest = placed[0]  # drawn first, and by construction the largest (see OTHER_AREA_OF_LARGEST)
    tags = {"weather": weather, "shape": largest.shape, "colour": largest.colour}
    return SynthImage(name=name, image=image, objects=tuple(placed), tags=tags)


def background(size: int, rng: np.random.Generator, palette: Palette) -> np.ndarray:
    """A base colour with low-frequency blotches (and stripes in the shifted palette), H×W×3 uint8."""
    low, high = palette.background
    base = rng.uniform(low, high).astype(np.float32)
    cells = max(2, size // 8)
    blotches = rng.uniform(-20, 20, (cells, cells, 3)).astype(np.float32)
    # Upscaling a coarse random grid gives smooth blotches; PIL does it channel by channel in float mode.
    smooth = np.stack(
        [
            np.asarray(Image.fromarray(blotches[:, :, c]).resize((size, size), Image.Resampling.BICUBIC))
            for c in range(3)
        ],
        axis=-1,
    )
    pixels = base + smooth
    if palette.stripes:
        angle = rng.uniform(0, math.pi)
        ys, xs = np.mgrid[0:size, 0:size]
        period = size / rng.uniform(5, 9)
        phase = (xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period
        pixels += (18 * np.sin(phase))[:, :, None]
    return np.clip(pixels, 0, 255).astype(np.uint8)


def place(
    shape: str, colour: str, area: float, size: int, rng: np.random.Generator, placed: list[SynthObject]
) -> SynthObject | None:
    """The shape at a random position inside the image that overlaps the placed ones little, or None."""
    outline = shape_outline(shape, area, rng.uniform(-MAX_TILT, MAX_TILT))
    xs = [x for x, _ in outline]
    ys = [y for _, y in outline]
    for _ in range(PLACEMENT_TRIES):
        dx = rng.uniform(-min(xs), size - max(xs))
        dy = rng.uniform(-min(ys), size - max(ys))
        # Clipped so that rounding never puts a vertex a hair outside the image, which the API refuses.
        polygon = tuple((min(max(x + dx, 0.0), size), min(max(y + dy, 0.0), size)) for x, y in outline)
        box = bounds(polygon)
        if all(overlap(box, other.box) <= MAX_OVERLAP for other in placed):
            return SynthObject(shape=shape, colour=colour, box=box, polygon=polygon)
    return None


def bounds(polygon: Polygon) -> Box:
    xs = [x for x, _ in polygon]
    ys = [y for _, y in polygon]
    return (min(xs), min(ys), max(xs), max(ys))


def shape_outline(shape: str, area: float, tilt: float) -> Polygon:
    """The shape's vertices around (0, 0) with the given area: squares upright and triangles pointing up,
    each turned by `tilt`, so the three silhouettes stay distinct at a few dozen pixels."""
    if shape == "circle":
        return regular_polygon(CIRCLE_VERTICES, math.sqrt(area / math.pi), 0.0)
    if shape == "square":
        return regular_polygon(4, math.sqrt(area / 2), math.pi / 4 + tilt)
    return regular_polygon(3, math.sqrt(area / (3 * math.sqrt(3) / 4)), -math.pi / 2 + tilt)


def regular_polygon(corners: int, radius: float, angle: float) -> Polygon:
    return tuple(
        (radius * math.cos(angle + 2 * math.pi * k / corners), radius * math.sin(angle + 2 * math.pi * k / corners))
        for k in range(corners)
    )


def overlap(a: Box, b: Box) -> float:
    """The intersection of two boxes as a fraction of the smaller one."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / smaller


def apply_weather(pixels: np.ndarray, weather: str, rng: np.random.Generator) -> np.ndarray:
    """Fog washes everything toward grey-white; rain darkens a little and adds light diagonal streaks."""
    if weather == "fog":
        strength = rng.uniform(0.4, 0.55)
        return pixels * (1 - strength) + FOG_COLOUR * strength
    if weather == "rain":
        size = pixels.shape[0]
        streaks = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(streaks)
        length = size / 7
        slant = rng.uniform(0.25, 0.5)  # the wind: x moved per unit of y
        for _ in range(max(8, size * size // 90)):
            x, y = rng.uniform(-length, size), rng.uniform(-length, size)
            draw.line((x, y, x + slant * length, y + length), fill=255, width=1)
        alpha = np.asarray(streaks, dtype=np.float32)[:, :, None] / 255 * 0.7
        return (pixels * 0.85) * (1 - alpha) + RAIN_COLOUR * alpha
    return pixels


def mask_of(image: SynthImage) -> np.ndarray:
    """H×W uint8: 0 background, k+1 for SHAPES[k]; polygons filled in drawing order, as in the image."""
    mask = Image.new("L", image.image.size, 0)
    draw = ImageDraw.Draw(mask)
    for obj in image.objects:
        draw.polygon(obj.polygon, fill=SHAPES.index(obj.shape) + 1)
    return np.array(mask, dtype=np.uint8)  # a writable copy, as training may augment it in place


def examples(images: Iterable[SynthImage], family: Family) -> tuple[TaskSpec, list[Example]]:
    """Training examples of one task family: classification (shape of the largest object), tagging
    (TAG_GROUPS), detection (boxes) or segmentation (masks from the polygons)."""
    from proto.training import FAMILIES
    from services.training.ml.examples import Example
    from shared.predictions import TaskSpec

    if family not in FAMILIES:
        raise invalid(f"unknown task family {family!r}", path="family")
    spec = (
        TaskSpec(family=family, classes=(), tag_groups=TAG_GROUPS) if family == "tagging" else TaskSpec(family, SHAPES)
    )
    made = []
    for image in images:
        made.append(
            Example(
                image=np.array(image.image.convert("RGB"), dtype=np.uint8),
                boxes=np.array([obj.box for obj in image.objects], dtype=np.float32).reshape(-1, 4),
                box_classes=np.array([SHAPES.index(obj.shape) for obj in image.objects], dtype=np.int64),
                mask=mask_of(image) if family == "segmentation" else None,
                label=SHAPES.index(image.tags["shape"]) if family == "classification" else None,
                tags=tuple(values.index(image.tags[group]) for group, values in TAG_GROUPS)
                if family == "tagging"
                else (),
            )
        )
    return spec, made


# -- loading into a project, through the public REST API ----------------------------------------------------

GROUND_TRUTH = "ground-truth"
FINISHED_RUN = ("SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED")
# Images are encoded, uploaded, ingested and labelled this many at a time, so memory stays flat at any count.
CHUNK = 500
CONCURRENCY = 8
# Ingest registers a sample in the catalog a moment after its run records it: a label written before that
# is refused as unknown, and tried again for this long.
REGISTERED_WITHIN_S = 30.0


@dataclass(frozen=True)
class Loaded:
    project_id: str
    datasets: dict[str, str]  # name: id
    samples: int
    objects: int


class Api:
    """The gateway over HTTP with an API key; every error answer becomes the LoupeError it stands for."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http = http
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        async with self.http.request(
            method, self.url + path, json=json, params=params, headers=self.headers
        ) as response:
            if response.status >= 400:
                raise await problem_of(response, f"{method} {path}")
            return None if response.status == 204 else await response.json()

    async def put_bytes(self, presigned_url: str, data: bytes) -> None:
        # Presigned: the URL is the authorisation, so the API key is not sent to storage.
        async with self.http.put(presigned_url, data=data) as response:
            if response.status != 200:
                raise LoupeError(
                    "unavailable", f"storage refused an upload ({response.status}): {await response.text()}"
                )


async def problem_of(response: aiohttp.ClientResponse, what: str) -> LoupeError:
    try:
        body = await response.json(content_type=None)
        code, detail, path = body["code"], body["detail"], body.get("path")
    except (ValueError, KeyError, TypeError):
        code, detail, path = "internal", await response.text(), None
    if code not in HTTP_STATUS:
        code = "internal"
    return LoupeError(code, f"{what} answered {response.status}: {detail}", path=path)


async def load(
    images: Iterable[SynthImage],
    url: str,
    token: str,
    *,
    project: str | None = None,
    name: str = "synthetic shapes",
    val_fraction: float = 0.2,
    total: int | None = None,
    progress: bool = True,
) -> Loaded:
    """Load the images into a project through the REST API: the schema (object classes per shape, tag
    groups weather/shape/colour), datasets `train` and `val` (every 1/val_fraction-th image), the images
    (presigned upload) and their ground-truth labels (a box and a polygon per object, the image's tags).

    `project` names an existing project to add to, whose schema and datasets are reused where their names
    match; without it a new `vector` project called `name` is made. Loading the same images again writes
    the same labels onto the same samples. `total` (how many images there are) sizes the progress bar."""
    if not 0 <= val_fraction < 1:
        raise invalid("val_fraction must be at least 0 and below 1", path="val_fraction")
    bar = Progress(total, enabled=progress)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        api = Api(http, url, token)
        if project is None:
            project = (await api.call("POST", "/v1/projects", {"name": name, "task_type": "vector"}))["id"]
        else:
            await api.call("GET", f"/v1/projects/{project}")
        schema = await ensure_schema(api, project)
        datasets = {split: await ensure_dataset(api, project, split) for split in ("train", "val")}
        loaded = Loaded(project_id=project, datasets=datasets, samples=0, objects=0)
        for first, chunk in chunks(images, CHUNK):
            splits: dict[str, list[SynthImage]] = {"train": [], "val": []}
            for index, image in enumerate(chunk, start=first):
                splits["val" if in_validation(index, val_fraction) else "train"].append(image)
            for split, members in splits.items():
                if members:
                    samples = await upload(api, project, datasets[split], members, bar)
                    await write_labels(api, project, schema, list(zip(samples, members, strict=True)), bar)
            loaded = Loaded(
                project_id=project,
                datasets=datasets,
                samples=loaded.samples + len(chunk),
                objects=loaded.objects + sum(2 * len(image.objects) for image in chunk),
            )
    bar.close()
    return loaded


@dataclass(frozen=True)
class Uploaded:
    dataset_id: str
    sample_ids: list[str]  # in the order of the images


async def upload_unlabelled(
    images: Iterable[SynthImage],
    url: str,
    token: str,
    *,
    project: str,
    dataset: str = "incoming",
    total: int | None = None,
    progress: bool = True,
) -> Uploaded:
    """Upload the images without labels into the project's dataset `dataset` (made when missing), as new
    data for auto-labelling and active learning; the schema is left as it is. It returns once the catalog
    has every sample, so that a search or a job right after finds them all. `total` sizes the progress bar."""
    bar = Progress(total, enabled=progress)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        api = Api(http, url, token)
        dataset_id = await ensure_dataset(api, project, dataset)
        sample_ids: list[str] = []
        for _, chunk in chunks(images, CHUNK):
            uploaded = await upload(api, project, dataset_id, chunk, bar)
            await registered(api, project, uploaded)
            sample_ids += uploaded
            bar.advance(len(chunk))
    bar.close()
    return Uploaded(dataset_id=dataset_id, sample_ids=sample_ids)


async def registered(api: Api, project: str, sample_ids: list[str]) -> None:
    """Wait until the catalog has all of these samples, which ingest registers a moment after its run."""
    distinct = set(sample_ids)
    body = {"sample_ids": sorted(distinct)}
    deadline = time.monotonic() + REGISTERED_WITHIN_S
    while (await api.call("POST", f"/v1/projects/{project}/samples/count", body))["count"] < len(distinct):
        if time.monotonic() > deadline:
            raise LoupeError(
                "unavailable",
                f"the catalog did not register {len(distinct)} samples within {REGISTERED_WITHIN_S:.0f} s",
            )
        await asyncio.sleep(0.2)


def in_validation(index: int, fraction: float) -> bool:
    """Every 1/fraction-th image, spread evenly: the same images at any chunk size or count."""
    return math.floor((index + 1) * fraction) > math.floor(index * fraction)


def chunks(images: Iterable[SynthImage], size: int) -> Iterator[tuple[int, list[SynthImage]]]:
    """(index of the first, the images) of each `size` images in turn."""
    chunk: list[SynthImage] = []
    first = 0
    for image in images:
        chunk.append(image)
        if len(chunk) == size:
            yield first, chunk
            first, chunk = first + size, []
    if chunk:
        yield first, chunk


@dataclass(frozen=True)
class Schema:
    classes: dict[str, str]  # shape: label class id
    tags: dict[tuple[str, str], str]  # (group, value): tag class id


async def ensure_schema(api: Api, project: str) -> Schema:
    """The project's classes and tags for SHAPES and TAG_GROUPS, made where missing (names match
    case-insensitively, as the schema compares them)."""
    base = f"/v1/projects/{project}"
    current = await api.call("GET", f"{base}/schema")
    existing_classes = {item["name"].lower(): item["id"] for item in current["label_classes"]}
    classes = {}
    for shape in SHAPES:
        classes[shape] = (
            existing_classes.get(shape)
            or (await api.call("POST", f"{base}/label-classes", {"name": shape, "kind": "object"}))["id"]
        )
    groups = {group["name"].lower(): group for group in current["tag_groups"]}
    tags = {}
    for group_name, values in TAG_GROUPS:
        group = groups.get(group_name) or await api.call(
            "POST", f"{base}/tag-groups", {"name": group_name, "selection": "SINGLE"}
        )
        existing_tags = {tag["name"].lower(): tag["id"] for tag in group.get("tags", [])}
        for value in values:
            tags[group_name, value] = (
                existing_tags.get(value)
                or (await api.call("POST", f"{base}/tag-classes", {"group_id": group["id"], "name": value}))["id"]
            )
    return Schema(classes=classes, tags=tags)


async def ensure_dataset(api: Api, project: str, name: str) -> str:
    path = f"/v1/projects/{project}/datasets"
    cursor = None
    while True:
        page = await api.call("GET", path, params={"limit": 500, **({"cursor": cursor} if cursor else {})})
        for dataset in page["items"]:
            if dataset["name"].lower() == name.lower():  # dataset names are unique regardless of case
                return dataset["id"]
        cursor = page.get("next_cursor")
        if not cursor:
            return (await api.call("POST", path, {"name": name}))["id"]


async def upload(api: Api, project: str, dataset: str, images: list[SynthImage], bar: Progress) -> list[str]:
    """Upload the images as PNG through presigned URLs into the dataset; their sample ids, in order."""
    base = f"/v1/projects/{project}"
    made = await api.call(
        "POST", f"{base}/datasets/{dataset}/uploads", {"files": [{"name": image.name} for image in images]}
    )
    bar.phase("uploading")
    await gather_bounded(
        api.put_bytes(slot["url"], png(image)) for slot, image in zip(made["slots"], images, strict=True)
    )
    await api.call("POST", made["complete_url"], {})
    bar.phase("ingesting")
    run_path = f"{base}/imports/{made['run_id']}"
    deadline = time.monotonic() + 60 + len(images)
    while (run := await api.call("GET", run_path))["state"] not in FINISHED_RUN:
        if time.monotonic() > deadline:
            raise LoupeError("unavailable", f"the import run {made['run_id']} did not finish in time: {run}")
        await asyncio.sleep(0.2)
    sample_ids: dict[int, str] = {}
    after = -1
    while after is not None:
        page = await api.call("GET", f"{run_path}/items", params={"after": after, "limit": 1000})
        for item in page["items"]:
            if item["sample_id"] is None:
                raise LoupeError(
                    "invalid",
                    f"image {images[item['index']].name} was not ingested: {item['error_code']}: {item['error']}",
                )
            sample_ids[item["index"]] = item["sample_id"]
        after = page.get("next_after")
    return [sample_ids[index] for index in range(len(images))]


def png(image: SynthImage) -> bytes:
    """Lossless, so the stored pixels are exactly the ones the labels describe."""
    buffer = io.BytesIO()
    image.image.save(buffer, format="PNG")
    return buffer.getvalue()


async def write_labels(
    api: Api, project: str, schema: Schema, samples: list[tuple[str, SynthImage]], bar: Progress
) -> None:
    bar.phase("labelling")

    async def write(sample_id: str, image: SynthImage) -> None:
        await put_label(
            api, f"/v1/projects/{project}/samples/{sample_id}/labels/{GROUND_TRUTH}", label_of(image, schema)
        )
        bar.advance()

    await gather_bounded(write(sample_id, image) for sample_id, image in samples)


def label_of(image: SynthImage, schema: Schema) -> dict[str, Any]:
    """A box and a polygon of each object's class, in drawing order (z_index), and one tag per group."""
    objects: list[dict[str, Any]] = []
    for z_index, obj in enumerate(image.objects):
        class_id = schema.classes[obj.shape]
        objects.append({"class_id": class_id, "shape": {"type": "bbox", "box": list(obj.box)}, "z_index": z_index})
        points = [list(point) for point in obj.polygon]
        objects.append({"class_id": class_id, "shape": {"type": "polygon", "points": points}, "z_index": z_index})
    tag_ids = [schema.tags[group, image.tags[group]] for group, _ in TAG_GROUPS]
    return {"status": "LABELED", "objects": objects, "tag_class_ids": tag_ids}


async def put_label(api: Api, path: str, label: dict[str, Any]) -> None:
    deadline = time.monotonic() + REGISTERED_WITHIN_S
    while True:
        try:
            await api.call("PUT", path, label)
            return
        except LoupeError as error:
            if error.code != "not_found" or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def gather_bounded(calls: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run the calls, CONCURRENCY at a time; the first failure cancels the rest."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Coroutine[Any, Any, None]) -> None:
        async with gate:
            await call

    async with asyncio.TaskGroup() as group:
        for call in calls:
            group.create_task(one(call))


class Progress:
    """A one-line progress bar on stderr: images labelled so far, and what is being done now."""

    WIDTH = 30
    REDRAW_S = 0.1  # often enough to look live, rarely enough not to flood a log that captures stderr

    def __init__(self, total: int | None, *, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.done = 0
        self.doing = "starting"
        self.began = time.monotonic()
        self.drawn = 0.0

    def phase(self, doing: str) -> None:
        self.doing = doing
        self.show(now=True)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self.show(now=self.done == self.total)

    def show(self, *, now: bool) -> None:
        moment = time.monotonic()
        if not self.enabled or (not now and moment - self.drawn < self.REDRAW_S):
            return
        self.drawn = moment
        rate = self.done / max(moment - self.began, 1e-6)
        if self.total:
            filled = self.WIDTH * self.done // self.total
            bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total}"
        else:
            bar = f"{self.done}"
        sys.stderr.write(f"\r{bar} images  {rate:.0f}/s  {self.doing:<10}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self.phase("done")
            sys.stderr.write("\n")


def run_command(args: argparse.Namespace) -> int:
    """`loupe synth`: generate, load, say where the images went."""
    if not args.token:
        print("loupe synth: give the API key with --token or LOUPE_API_KEY", file=sys.stderr)
        return 2
    try:
        images = generate(args.count, args.size, args.seed, objects=tuple(args.objects), shift=args.shift)
        loaded = asyncio.run(
            load(
                images,
                args.url,
                args.token,
                project=args.project,
                name=args.name,
                val_fraction=args.val_fraction,
                total=args.count,
                progress=not args.quiet,
            )
        )
    except (LoupeError, aiohttp.ClientError) as error:
        print(f"loupe synth failed: {error}", file=sys.stderr)
        return 1
    print(
        f"loaded {loaded.samples} images with {loaded.objects} objects into project {loaded.project_id} "
        f"(datasets {', '.join(f'{name} {id_}' for name, id_ in loaded.datasets.items())})"
    )
    return 0
