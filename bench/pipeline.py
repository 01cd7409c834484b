"""Live pipelines: a watched folder → the detector through Triton → a NATS subject, against the same model in process.

    python -m bench.pipeline [--quick] [--frames N] [--paced P] [--rounds R] [--train-images T] [--epochs E]

Starts the whole local stack, Triton included, on free ports in a temporary folder (its pipeline folder
too), trains bench.inference's detector on T synthetic 64×64 images for E epochs, makes N new images and
measures:

1. `pipeline_frames_per_s`: a folder source (`poll_s` 0.1, the least it takes) → the active detector → a
   NATS sink. The bench writes the N frames into the watched folder at once (each written aside and
   renamed in), subscribes to the sink's subject and counts the results, which must be all N, in the order
   written; N over the time from the pipeline taking the first frame (its result's `received_at`) to the
   last result's arrival on the client. `client_frames_per_s`, printed beside it, counts from the first
   write instead, so it also holds the folder source's two polls (≤ 0.2 s) before it takes a file.
2. `inprocess_frames_per_s`: the version's model.onnx, fetched from the models bucket, run by onnxruntime in
   this process on the same N images' PNG bytes, `inference_batch` (the pipeline's batch) at a time, each
   decoded and resized and its outputs decoded as bench.inference does. The two take turns R times;
   `pipeline_vs_inprocess` is the median over rounds of the pipeline's speed over in-process's in the same
   round (on shared cores the load swings more between rounds than within one).
3. `pipeline_latency_p95_ms`: a second pipeline, fed P frames one at a time (the next written when the
   last one's result came), so no frame waits behind another: the pipeline's own latency (from the frame
   entering its queue to its result, as `GET …/metrics` reports it over the 15-minute window). The
   client's clock (file renamed in → result received on NATS, so the folder polls included) gives
   `pipeline_client_latency_p95_ms` beside it.

`--quick` trains on 200 images for 4 epochs, sends 200 frames in 3 rounds and 100 paced frames. Each JSON
line names the device; Triton runs the local stack's python backend, onnxruntime on the CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
import nats
import uvloop
from nats.aio.msg import Msg

from bench.inference import IMAGE_SIZE, NEW_SEED, line, onnxruntime_infer, predict_all, settle, train_detector
from bench.report import arguments, local_stack, percentile, table
from bench.training import cpu_model
from loupe import synth
from loupe.stack import Stack
from proto.subjects import SERVICES
from services.inference.images import Decoder
from shared.predictions import TaskSpec
from shared.settings import env_name
from shared.storage import Storage

QUICK = {"frames": 200, "paced": 100, "rounds": 3, "train_images": 200, "epochs": 4}
POLL_S = 0.1  # the least a folder source takes
START_TIMEOUT_S = 120.0
RESULT_TIMEOUT_S = 300.0


class Results:
    """Every message on a subject since subscribing: its arrival on the client's clock and its JSON."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict]] = []

    async def keep(self, msg: Msg) -> None:
        self.arrivals.append((time.time(), json.loads(msg.data)))  # wall clock: results carry `received_at`

    async def count(self, expected: int) -> None:
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while len(self.arrivals) < expected:
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(self.arrivals)} of {expected} results after {RESULT_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def pipeline(api: synth.Api, stack: Stack, path: str, name: str) -> AsyncIterator[tuple[Path, str, Results]]:
    """A running folder → detector → NATS pipeline: (its watched folder, its path in the API, its results)."""
    folder = Path(stack.settings.pipeline_folders) / name
    folder.mkdir()
    subject = f"bench.pipeline.{name}.{uuid.uuid4().hex[:8]}"
    results = Results()
    nc = await nats.connect(stack.settings.nats_url)
    subscription = await nc.subscribe(subject, cb=results.keep)
    created = await api.call(
        "POST",
        f"{path}/pipelines",
        {
            "name": name,
            "model": {"family": "detection"},
            "source": {"kind": "folder", "path": str(folder), "poll_s": POLL_S},
            "sinks": [{"kind": "nats", "subject": subject}],
            "enabled": True,
        },
    )
    at = f"{path}/pipelines/{created['id']}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (state := await api.call("GET", at))["state"] != "running":
            if state["state"] == "failed" or time.monotonic() > deadline:
                raise SystemExit(f"the pipeline did not start: {state}")
            await asyncio.sleep(0.2)
        yield folder, at, results
    finally:
        await api.call("DELETE", at)
        await subscription.unsubscribe()
        await nc.close()


def write_frame(folder: Path, name: str, data: bytes) -> None:
    """Written aside (a dot file, which a folder source skips) and renamed in, as a camera's uploader would."""
    aside = folder / f".{name}"
    aside.write_bytes(data)
    aside.rename(folder / name)


def in_order(results: Results, names: list[str]) -> list[tuple[float, dict]]:
    """The results for these frames, which must have come in the order they were written."""
    last = results.arrivals[-len(names) :]
    got = [result["name"] for _, result in last]
    if got != names:
        raise SystemExit(f"results out of order or missing: first difference at {next_difference(got, names)}")
    return last


def next_difference(got: list[str], names: list[str]) -> int:
    return next((i for i, (a, b) in enumerate(zip(got, names, strict=True)) if a != b), len(names))


async def through_pipeline(folder: Path, results: Results, images: list[bytes], round_: int) -> dict[str, float]:
    """Frames per second of the images written into the folder at once: from the pipeline taking the first
    (its `received_at`) to the last result, and on the client's clock alone, from the first write."""
    names = [f"r{round_}-{i:06d}.png" for i in range(len(images))]
    expected = len(results.arrivals) + len(images)
    started = time.time()
    for name, data in zip(names, images, strict=True):
        write_frame(folder, name, data)
    await results.count(expected)
    done = in_order(results, names)
    last_at, first = done[-1][0], done[0][1]
    taken = datetime.fromisoformat(first["received_at"]).timestamp()
    return {"pipeline": len(images) / (last_at - taken), "client": len(images) / (last_at - started)}


async def model_onnx(stack: Stack, version: dict) -> bytes:
    storage = Storage(stack.settings)
    try:
        return await storage.get_bytes("models", f"{version['triton_model']}/{version['version']}/model.onnx")
    finally:
        await storage.close()


async def compare(
    api: synth.Api, stack: Stack, path: str, version: dict, images: list[bytes], rounds: int
) -> dict[str, list[float]]:
    """Frames per second through the pipeline and in process, per round; the two take turns."""
    batch = stack.settings.inference_batch
    infer = onnxruntime_infer(await model_onnx(stack, version))
    decoder = Decoder(stack.settings.inference_decode_threads)
    spec = TaskSpec("detection", tuple(version["classes"]))
    speeds: dict[str, list[float]] = {"pipeline": [], "client": [], "in-process": []}
    try:
        async with pipeline(api, stack, path, "throughput") as (folder, _, results):
            # Warm-up: Triton's first batches, onnxruntime's session.
            await through_pipeline(folder, results, images[:batch], round_=0)
            await predict_all(images[:batch], batch, infer, decoder, spec)
            for round_ in range(1, rounds + 1):
                for name, speed in (await through_pipeline(folder, results, images, round_)).items():
                    speeds[name].append(speed)
                speeds["in-process"].append(len(images) / await predict_all(images, batch, infer, decoder, spec))
    finally:
        decoder.close()
    return speeds


async def paced(api: synth.Api, stack: Stack, path: str, images: list[bytes]) -> dict[str, dict[str, float]]:
    """Latencies of frames written one at a time, each after the last one's result: the pipeline's own (its
    metrics, and each result's `latency_ms`) and the client's (renamed in → received)."""
    client_s: list[float] = []
    async with pipeline(api, stack, path, "latency") as (folder, at, results):
        for i, data in enumerate(images):
            name = f"{i:06d}.png"
            started = time.time()
            write_frame(folder, name, data)
            await results.count(i + 1)
            arrived, result = results.arrivals[-1]
            if result["name"] != name:
                raise SystemExit(f"frame {name} came back as {result['name']}")
            client_s.append(arrived - started)
        metrics = await api.call("GET", f"{at}/metrics")
    window = next(w for w in metrics["windows"] if w["window"] == "15m")
    if window["frames"] != len(images) or metrics["dropped"] or metrics["failed"]:
        raise SystemExit(f"the latency pipeline's metrics do not count {len(images)} frames: {metrics}")
    own_ms = [result["latency_ms"] for _, result in results.arrivals]
    client_ms = [seconds * 1000 for seconds in client_s]
    return {
        "metrics": {"p50_ms": window["latency_p50_ms"], "p95_ms": window["latency_p95_ms"]},
        "results": {"p50_ms": percentile(own_ms, 50), "p95_ms": percentile(own_ms, 95)},
        "client": {"p50_ms": percentile(client_ms, 50), "p95_ms": percentile(client_ms, 95)},
    }


async def run(stack: Stack, sizes: dict[str, int]) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        api = synth.Api(http, stack.gateway_url, stack.admin_key)
        started = time.perf_counter()
        path, version = await train_detector(api, stack, sizes["train_images"], sizes["epochs"])
        print(
            f"trained the detector on {sizes['train_images']} images for {sizes['epochs']} epochs in "
            f"{time.perf_counter() - started:.0f} s (mAP@0.5 {version['metrics']['map50']:.3f})"
        )
        images = [synth.png(image) for image in synth.generate(sizes["frames"], size=IMAGE_SIZE, seed=NEW_SEED)]
        await settle(stack)
        speeds = await compare(api, stack, path, version, images, sizes["rounds"])
        await settle(stack)
        latencies = await paced(api, stack, path, images[: sizes["paced"]])
    return speeds, latencies


def main() -> None:
    parser = arguments(
        __doc__,
        "200 training images, 4 epochs, 200 frames, 3 rounds, 100 paced frames",
        frames=2000,
        paced=300,
        rounds=3,
        train_images=400,
        epochs=8,
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else {name: getattr(args, name) for name in QUICK}
    device = f"cpu {cpu_model()} ({os.cpu_count()} cores)"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="loupe-bench-pipelines-") as folders:
        # The stack takes the user's LOUPE_* settings: this one lets pipelines read the bench's folder.
        os.environ[env_name("pipeline_folders")] = folders
        with local_stack(*SERVICES, triton=True) as stack:
            settings = stack.settings
            speeds, latencies = uvloop.run(run(stack, sizes))
    n, rounds = sizes["frames"], sizes["rounds"]
    print(
        table(
            f"{n:,} frames, {rounds} rounds (frames/s)",
            {name: {"median": statistics.median(s), "min": min(s), "max": max(s)} for name, s in speeds.items()},
        )
    )
    print(
        table(
            f"{sizes['paced']} frames one at a time: the pipeline's metrics, its results' latency_ms, the client",
            latencies,
        )
    )
    print(
        f"on {device}, Triton's python backend (onnxruntime); inference_batch {settings.inference_batch}; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    ratio = statistics.median(p / i for p, i in zip(speeds["pipeline"], speeds["in-process"], strict=True))
    print(line("pipeline_frames_per_s", statistics.median(speeds["pipeline"]), "frames/s", n, device))
    print(line("inprocess_frames_per_s", statistics.median(speeds["in-process"]), "frames/s", n, device))
    print(line("pipeline_vs_inprocess", ratio, "ratio", n, device))
    print(line("pipeline_latency_p95_ms", latencies["metrics"]["p95_ms"], "ms", sizes["paced"], device))
    print(line("pipeline_client_latency_p95_ms", latencies["client"]["p95_ms"], "ms", sizes["paced"], device))


if __name__ == "__main__":
    main()
