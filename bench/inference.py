"""Inference: auto-labelling through Triton, the serving path against onnxruntime in process, and similarity.

    python -m bench.inference [--quick] [--images N] [--train-images T] [--epochs E] [--rounds R]
                              [--vectors V] [--requests Q]

Starts the whole local stack, Triton included, on free ports in a temporary folder, loads T labelled
synthetic 64×64 images (loupe.synth), trains the detector auto-label jobs use through the training API
(E epochs), then uploads N new unlabelled images and measures:

1. `autolabel_images_per_s`: an auto-label job over the N images, N over the job's wall time from its
   start (RUNNING) to its end (SUCCEEDED) as the job records them: downloads, decoding, Triton,
   post-processing and the label writes. The job's own `images_per_s` (N over the summed time of its
   slices, which overlaps downloads and decoding of the next slice) is printed beside it.
2. The N images' PNG bytes (those the job downloads) turned into predictions a job's slice (64) at a time,
   each the same way: decoded and resized (services.inference.images), inferred, the outputs decoded
   (shared.predictions.decode, the job's default thresholds), without downloads or label writes:
   - `inprocess_images_per_s`: the version's model.onnx, fetched from the models bucket, run by
     onnxruntime in this process;
   - `triton_batched_images_per_s`: through Triton with the inference service's own client
     (services.inference.triton.TritonModels, `inference_batch` images per request, `inference_in_flight`
     requests in flight), which Triton's dynamic batcher merges: the pure inference part of the job;
   - `triton_single_images_per_s`: one image per request, one request in flight.
   Each path runs R rounds, the paths taking turns so that other work on the machine falls on all of
   them; each figure is the median round. `triton_vs_inprocess_ratio` (target >= 0.9 on the CPU) and
   `triton_vs_single_ratio` (target >= 1.5) are the medians over rounds of the batched Triton path's speed
   over the other's in the same round: on shared cores the load swings more between rounds than between
   the paths of one round.
3. `similarity_p99_ms`: bench.similarity's measurement over V vectors in the same stack.

`--quick` trains on 200 images for 4 epochs, labels 500, runs 3 rounds and searches 10,000 vectors. Each
JSON line names the device; Triton runs the local stack's python backend, onnxruntime on the CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial

import aiohttp
import numpy as np
import onnxruntime
import uvloop
from tritonclient.grpc.aio import InferenceServerClient

from bench import similarity
from bench.report import arguments, cpu_seconds, figure, local_stack, table
from bench.training import cpu_model
from loupe import synth
from loupe.stack import Stack
from proto.inference import Thresholds
from proto.subjects import SERVICES
from services.inference.images import Decoder
from services.inference.runner import SLICE
from services.inference.triton import TritonModels
from shared.predictions import TaskSpec, decode
from shared.storage import Storage

IMAGE_SIZE = 64
TRAIN_SEED, NEW_SEED = 1, 2
MODEL = "detector"
FINISHED = ("SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED")
# CPU seconds per second the stack's processes use when idle (heartbeats, polling) stay below this.
IDLE_CPU_S = 0.25
SETTLE_TIMEOUT_S = 60.0
QUICK = {"images": 500, "train_images": 200, "epochs": 4, "rounds": 3, "vectors": 10_000, "requests": 100}
# The integration tests' detector, which learns the synthetic shapes in a few epochs on the CPU.
DETECTOR = {"batch_size": 16, "image_size": IMAGE_SIZE, "learning_rate": 5e-3, "workers": 0}

Infer = Callable[[np.ndarray], Awaitable[Mapping[str, np.ndarray]]]


async def wait_for(api: synth.Api, path: str, timeout_s: float) -> dict:
    """GET `path` (a training run or an inference job) until it is finished; it must have succeeded."""
    deadline = time.monotonic() + timeout_s
    while (body := await api.call("GET", path))["state"] not in FINISHED:
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} not finished after {timeout_s:.0f} s: {body}")
        await asyncio.sleep(0.1)
    if body["state"] != "SUCCEEDED":
        raise SystemExit(f"{path} ended {body['state']}: {body}")
    return body


async def train_detector(api: synth.Api, stack: Stack, images: int, epochs: int) -> tuple[str, dict]:
    """A project with the images loaded and a detector trained on them: (its path, the model version)."""
    loaded = await synth.load(
        synth.generate(images, size=IMAGE_SIZE, seed=TRAIN_SEED),
        stack.gateway_url,
        stack.admin_key,
        name="inference bench",
        progress=False,
    )
    path = f"/v1/projects/{loaded.project_id}"
    run = await api.call(
        "POST",
        f"{path}/training/runs",
        {"family": "detection", "model": MODEL, "config": DETECTOR | {"epochs": epochs}},
    )
    await wait_for(api, f"{path}/training/runs/{run['id']}", timeout_s=1200)
    return path, await api.call("GET", f"{path}/models/{MODEL}/versions/1")


async def upload_new(api: synth.Api, path: str, images: list[synth.SynthImage]) -> str:
    """The images, unlabelled, in a new dataset `incoming`; its id."""
    project_id = path.rsplit("/", 1)[1]
    dataset_id = await synth.ensure_dataset(api, project_id, "incoming")
    for start in range(0, len(images), synth.CHUNK):
        chunk = images[start : start + synth.CHUNK]
        await synth.upload(api, project_id, dataset_id, chunk, synth.Progress(None, enabled=False))
    return dataset_id


async def autolabel(api: synth.Api, path: str, dataset_id: str, count: int) -> dict:
    job = await api.call(
        "POST",
        f"{path}/inference/jobs",
        {"kind": "autolabel", "model": {"family": "detection"}, "selection": {"filter": {"dataset_ids": [dataset_id]}}},
    )
    job = await wait_for(api, f"{path}/inference/jobs/{job['id']}", timeout_s=60 + count)
    if (job["done"], job["written"], job["failed"]) != (count, count, 0):
        raise SystemExit(f"the auto-label job did not label every image: {job}")
    return job


async def settle(stack: Stack) -> None:
    """Wait until the stack's processes are about idle: what the last phase set off (events applied after a
    job or an import finished) must not run during the next one's measurement."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    used = sum(cpu_seconds(stack.pids()).values())
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        before, used = used, sum(cpu_seconds(stack.pids()).values())
        if used - before < IDLE_CPU_S:
            return
    print(f"the stack was still busy after {SETTLE_TIMEOUT_S:.0f} s ({used - before:.2f} CPU s/s); measuring anyway")


def job_wall_s(job: dict) -> float:
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()


async def predict_all(images: list[bytes], chunk: int, infer: Infer, decoder: Decoder, spec: TaskSpec) -> float:
    """Seconds to turn the images into predictions `chunk` at a time: decode and resize, infer, decode the
    outputs, as a job does with a slice."""
    thresholds = Thresholds()
    started = time.perf_counter()
    for start in range(0, len(images), chunk):
        decoded = await asyncio.gather(*(decoder.one(data, IMAGE_SIZE) for data in images[start : start + chunk]))
        outputs = await infer(np.stack([pixels for pixels, _ in decoded]))
        decode(
            spec,
            outputs,
            IMAGE_SIZE,
            [original for _, original in decoded],
            min_score=thresholds.confidence,
            max_detections=thresholds.max_detections,
            min_size=thresholds.min_size,
        )
    return time.perf_counter() - started


def onnxruntime_infer(onnx_bytes: bytes) -> Infer:
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    [source] = session.get_inputs()
    names = [output.name for output in session.get_outputs()]

    async def infer(images: np.ndarray) -> Mapping[str, np.ndarray]:
        return dict(zip(names, session.run(names, {source.name: images}), strict=True))

    return infer


async def compare_paths(stack: Stack, version: dict, images: list[bytes], rounds: int) -> dict[str, list[float]]:
    """Images per second of each way to predict, per round; the ways take turns."""
    settings = stack.settings
    storage = Storage(settings)
    try:
        onnx_bytes = await storage.get_bytes("models", f"{version['triton_model']}/{version['version']}/model.onnx")
    finally:
        await storage.close()
    client = InferenceServerClient(settings.triton_grpc_url)
    decoder = Decoder(settings.inference_decode_threads)
    spec = TaskSpec("detection", tuple(version["classes"]))

    def through(models: TritonModels) -> Infer:
        return partial(models.infer, version["triton_model"], version["version"], IMAGE_SIZE)

    batched = TritonModels(
        client, batch=settings.inference_batch, in_flight=settings.inference_in_flight, idle_unload_s=3600
    )
    single = TritonModels(client, batch=1, in_flight=1, idle_unload_s=3600)
    paths = {
        "in-process": (SLICE, onnxruntime_infer(onnx_bytes)),
        "triton": (SLICE, through(batched)),
        "single": (1, through(single)),
    }
    speeds: dict[str, list[float]] = {name: [] for name in paths}
    try:
        for chunk, infer in paths.values():  # warm-up: sessions, connections, Triton's first batches
            await predict_all(images[:SLICE], chunk, infer, decoder, spec)
        for _ in range(rounds):
            for name, (chunk, infer) in paths.items():
                speeds[name].append(len(images) / await predict_all(images, chunk, infer, decoder, spec))
    finally:
        decoder.close()
        await client.close()
    return speeds


def paired_ratio(speeds: list[float], others: list[float]) -> float:
    """The median over rounds of one path's speed over another's in the same round."""
    return statistics.median(a / b for a, b in zip(speeds, others, strict=True))


async def run(stack: Stack, args: dict[str, int]) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        api = synth.Api(http, stack.gateway_url, stack.admin_key)
        started = time.perf_counter()
        path, version = await train_detector(api, stack, args["train_images"], args["epochs"])
        print(
            f"trained the detector on {args['train_images']} images for {args['epochs']} epochs in "
            f"{time.perf_counter() - started:.0f} s (mAP@0.5 {version['metrics']['map50']:.3f})"
        )
        new_images = list(synth.generate(args["images"], size=IMAGE_SIZE, seed=NEW_SEED))
        started = time.perf_counter()
        dataset_id = await upload_new(api, path, new_images)
        print(f"uploaded {len(new_images):,} new images in {time.perf_counter() - started:.0f} s")
        await settle(stack)
        before = cpu_seconds(stack.pids())
        job = await autolabel(api, path, dataset_id, len(new_images))
    await settle(stack)
    used = {name: (spent - before[name]) * 1000 / len(new_images) for name, spent in cpu_seconds(stack.pids()).items()}
    print(
        "CPU ms per image of the auto-label job, by process (docs/scaling.md):",
        ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(used.items(), key=lambda item: -item[1])),
    )
    figures["autolabel_images_per_s"] = len(new_images) / job_wall_s(job)
    figures["job_images_per_s"] = job["images_per_s"]
    speeds = await compare_paths(stack, version, [synth.png(image) for image in new_images], args["rounds"])
    figures |= {
        "inprocess_images_per_s": statistics.median(speeds["in-process"]),
        "triton_batched_images_per_s": statistics.median(speeds["triton"]),
        "triton_single_images_per_s": statistics.median(speeds["single"]),
        "triton_vs_inprocess_ratio": paired_ratio(speeds["triton"], speeds["in-process"]),
        "triton_vs_single_ratio": paired_ratio(speeds["triton"], speeds["single"]),
    }
    print(
        table(
            f"{len(new_images):,} images, {args['rounds']} rounds (images/s)",
            {name: {"median": statistics.median(s), "min": min(s), "max": max(s)} for name, s in speeds.items()},
        )
    )
    if args["vectors"]:
        rows, _, _ = await similarity.run(stack, args["vectors"], args["requests"])
        print(table(f"similar samples over {args['vectors']:,} vectors, {args['requests']} requests per kind", rows))
        figures["similarity_p99_ms"] = max(row["p99_ms"] for row in rows.values())
    return figures


def main() -> None:
    parser = arguments(
        __doc__,
        "200 training images, 4 epochs, 500 new images, 3 rounds, 10,000 vectors",
        images=2000,
        train_images=400,
        epochs=8,
        rounds=5,
        vectors=100_000,
        requests=300,
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else {name: getattr(args, name) for name in QUICK}
    device = f"cpu {cpu_model()} ({os.cpu_count()} cores)"
    load_before = os.getloadavg()[0]
    with local_stack(*SERVICES, triton=True) as stack:
        settings = stack.settings
        figures = uvloop.run(run(stack, sizes))
    print(
        f"inference on {device}, Triton's python backend (onnxruntime); inference_batch {settings.inference_batch}, "
        f"inference_in_flight {settings.inference_in_flight}; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    n = sizes["images"]
    print(
        f"auto-label job: {figures['autolabel_images_per_s']:.1f} images/s over its wall time (labels written), "
        f"{figures['job_images_per_s']:.1f} by its own images_per_s; of its {n / figures['autolabel_images_per_s']:.1f} s, "
        f"predicting took about {n / figures['triton_batched_images_per_s']:.1f} s (the batched Triton path)"
    )
    print(
        f"Triton batched / in-process: {figures['triton_vs_inprocess_ratio']:.2f} (target >= 0.9); "
        f"batched / single: {figures['triton_vs_single_ratio']:.2f} (target >= 1.5)"
    )
    for metric in (
        "autolabel_images_per_s",
        "inprocess_images_per_s",
        "triton_batched_images_per_s",
        "triton_single_images_per_s",
    ):
        print(line(metric, figures[metric], "images/s", n, device))
    for metric in ("triton_vs_inprocess_ratio", "triton_vs_single_ratio"):
        print(line(metric, figures[metric], "ratio", n, device))
    if "similarity_p99_ms" in figures:
        print(line("similarity_p99_ms", figures["similarity_p99_ms"], "ms", sizes["vectors"], device))


def line(metric: str, value: float, unit: str, n: int, device: str) -> str:
    return json.dumps(json.loads(figure(metric, value, unit, n)) | {"device": device})


if __name__ == "__main__":
    main()
