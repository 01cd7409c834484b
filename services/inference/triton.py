"""Triton, through tritonclient's asyncio gRPC client: model versions loaded on demand in explicit model
control mode, unloaded when idle, and batches sent as several concurrent requests so that Triton's
dynamic batcher always has work to merge.

A model's config in the repository (written by training) serves one version, normally the active one.
To serve another, the load names the versions wanted in a config override, the repository's config with
only its `version_policy` (and, when the image size differs, the input's dims) changed. Several replicas
share one Triton: one may unload or re-pin a model another uses, so an inference that finds its version
gone loads it again and retries once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from tritonclient.utils import InferenceServerException

from shared.errors import LoupeError

if TYPE_CHECKING:
    from tritonclient.grpc.aio import InferenceServerClient

log = logging.getLogger(__name__)

INPUT_NAME = "images"
# How long a model may stay unready after a load returned; Triton answers the load once the version is up,
# so this bounds the rare case of a replica unloading it meanwhile.
READY_TIMEOUT_S = 60.0


@dataclass
class LoadedModel:
    versions: set[int] = field(default_factory=set)
    outputs: tuple[str, ...] = ()
    last_used: float = 0.0
    in_use: int = 0


class TritonModels:
    """The model versions this process serves through one Triton."""

    def __init__(self, url: str, *, batch: int, in_flight: int, idle_unload_s: float) -> None:
        self.url = url  # host:port of Triton's gRPC endpoint
        self._client: InferenceServerClient | None = None
        self.batch = batch  # images per request
        self.requests = asyncio.Semaphore(in_flight)  # requests in flight, all models together
        self.idle_unload_s = idle_unload_s
        self.models: dict[str, LoadedModel] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    @property
    def client(self) -> InferenceServerClient:
        """The gRPC client, made on first use (the first readiness probe, where Triton runs): tritonclient's
        gRPC stack is ~12 MB resident, which a stack without Triton (`loupe up --no-triton`) never needs."""
        if self._client is None:
            from tritonclient.grpc.aio import InferenceServerClient

            self._client = InferenceServerClient(self.url)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def ensure(self, name: str, version: int, image_size: int) -> tuple[str, ...]:
        """Load the version unless Triton serves it already; returns the model's output names."""
        async with self.locks.setdefault(name, asyncio.Lock()):
            model = self.models.setdefault(name, LoadedModel())
            if version in model.versions:  # an inference that finds it gone since loads it again
                return model.outputs
            try:
                config = await self._config(name)
                if version not in _versions(config):
                    # Keep serving what is served (another replica's versions too), and add this one.
                    wanted = _versions(config) | {version}
                    await self.client.load_model(name, config=json.dumps(_pinned(config, wanted, image_size)))
                    config = await self._config(name)
            except InferenceServerException as error:
                raise LoupeError(
                    "unavailable", f"Triton could not load version {version} of {name}: {error.message()}"
                ) from None
            await self._wait_ready(name, version)
            model.versions = _versions(config)
            model.outputs = tuple(output["name"] for output in config.get("output", []))
            log.info("serving", extra={"model": name, "versions": sorted(model.versions)})
            return model.outputs

    async def _config(self, name: str) -> dict:
        """The config Triton serves the model with, loading it from the repository if it is not loaded."""
        if not await self._ready(name, 0):
            await self.client.load_model(name)
        return (await self.client.get_model_config(name, as_json=True))["config"]

    async def _ready(self, name: str, version: int) -> bool:
        try:
            return bool(await self.client.is_model_ready(name, str(version) if version else ""))
        except InferenceServerException:
            return False

    async def _wait_ready(self, name: str, version: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not await self._ready(name, version):
            if time.monotonic() > deadline:
                raise LoupeError("unavailable", f"version {version} of {name} did not become ready in Triton")
            await asyncio.sleep(0.1)

    @contextmanager
    def _using(self, name: str) -> Iterator[None]:
        model = self.models.setdefault(name, LoadedModel())
        model.in_use += 1
        try:
            yield
        finally:
            model.in_use -= 1
            model.last_used = time.monotonic()

    async def infer(self, name: str, version: int, image_size: int, images: np.ndarray) -> dict[str, np.ndarray]:
        """images B×3×S×S float32 -> every output, B×… each: requests of `batch` images, sent concurrently."""
        outputs = await self.ensure(name, version, image_size)
        with self._using(name):
            parts = await asyncio.gather(
                *(
                    self._infer_once(name, version, image_size, outputs, images[start : start + self.batch])
                    for start in range(0, len(images), self.batch)
                )
            )
        return {output: np.concatenate([part[output] for part in parts]) for output in outputs}

    async def _infer_once(
        self, name: str, version: int, image_size: int, outputs: tuple[str, ...], images: np.ndarray
    ) -> dict[str, np.ndarray]:
        from tritonclient.grpc import InferInput, InferRequestedOutput  # loaded with the client by now

        for attempt in (1, 2):
            request = InferInput(INPUT_NAME, list(images.shape), "FP32")
            request.set_data_from_numpy(np.ascontiguousarray(images, dtype=np.float32))
            try:
                async with self.requests:
                    result = await self.client.infer(
                        name,
                        [request],
                        model_version=str(version),
                        outputs=[InferRequestedOutput(output) for output in outputs],
                    )
            except InferenceServerException as error:
                if attempt == 2 or await self._ready(name, version):
                    raise LoupeError(
                        "unavailable", f"Triton failed on version {version} of {name}: {error.message()}"
                    ) from None
                # Unloaded by another replica or an idle sweep meanwhile: load it again, once.
                self.models.setdefault(name, LoadedModel()).versions.discard(version)
                await self.ensure(name, version, image_size)
                continue
            return {output: result.as_numpy(output) for output in outputs}
        raise AssertionError("unreachable")

    async def unload_idle(self) -> None:
        """Unload the models nothing here used for `idle_unload_s`."""
        now = time.monotonic()
        for name, model in list(self.models.items()):
            if model.in_use or not model.versions or now - model.last_used < self.idle_unload_s:
                continue
            async with self.locks.setdefault(name, asyncio.Lock()):
                if model.in_use or now - model.last_used < self.idle_unload_s:
                    continue
                try:
                    await self.client.unload_model(name)
                except InferenceServerException as error:
                    log.warning("unload failed", extra={"model": name, "error": error.message()})
                    continue
                model.versions.clear()
                log.info("unloaded idle model", extra={"model": name})

    def serving(self) -> dict[str, list[int]]:
        return {name: sorted(model.versions) for name, model in self.models.items() if model.versions}


def _versions(config: dict) -> set[int]:
    return {int(v) for v in config.get("version_policy", {}).get("specific", {}).get("versions", [])}


def _pinned(config: dict, versions: set[int], image_size: int) -> dict:
    """The repository's config serving exactly `versions`; outputs of any size, since versions may differ
    in classes and image size."""
    pinned = dict(config)
    pinned["version_policy"] = {"specific": {"versions": sorted(versions)}}
    sizes = {image_size} | {int(d) for d in config["input"][0]["dims"][1:]}
    spatial = [image_size, image_size] if len(sizes) == 1 else [-1, -1]
    pinned["input"] = [dict(tensor, dims=[3, *spatial]) for tensor in config["input"]]
    pinned["output"] = [dict(tensor, dims=[-1] * len(tensor["dims"])) for tensor in config["output"]]
    # TensorRT's optimisation profile names the repository version's shapes; let the backend choose.
    pinned.pop("optimization", None)
    return pinned
