"""Triton's model repository in the `models` bucket, which Triton loads from in explicit model-control mode.

Triton's layout: `<model>/config.pbtxt` and `<model>/<version>/model.onnx`. Two flavours, chosen by
the deployment:

- `onnxruntime`: NVIDIA's Triton image runs the ONNX file with its onnxruntime backend; on GPUs
  through TensorRT (`gpu=True`).
- `python`: the local stack's Triton carries only the python backend, so each version also holds
  `model.py` (python_backend_model.py), which runs the same `model.onnx` with onnxruntime.

The config pins the version it was written for (`version_policy: specific`): a model's versions may
differ in classes and image size, and one config describes exactly one of them. `serve_version`
points it at another, after which the inference service loads the model again.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from shared.errors import invalid, not_found
from shared.storage import ObjectMissing, Storage

if TYPE_CHECKING:
    import onnx

Backend = Literal["python", "onnxruntime"]
BACKENDS: tuple[Backend, ...] = ("python", "onnxruntime")
BUCKET = "models"
ONNX_FILE = "model.onnx"
PYTHON_FILE = "model.py"
PYTHON_MODEL = Path(__file__).with_name("python_backend_model.py")
DEFAULT_MAX_BATCH_SIZE = 32
# How long the dynamic batcher holds a request for others to join it: a millisecond costs a single
# request little and lets concurrent ones share one run.
MAX_QUEUE_DELAY_US = 1000
# The TensorRT build: half precision for speed (about three significant digits, so these outputs are not
# held to the fp32 tolerance the export is checked against), engines cached across loads so that a reload
# does not rebuild them for minutes.
TENSORRT_PARAMETERS = {
    "precision_mode": "FP16",
    "max_workspace_size_bytes": str(1 << 30),
    "trt_engine_cache_enable": "1",
    "trt_engine_cache_path": "/tmp/triton-tensorrt-cache",
}
# Triton names models by folder: one path segment, also inside URLs.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# By ONNX's name of the element type: onnx (with protobuf, ~6 MB resident) is imported only once a version
# is published, not by an idle training service.
TRITON_TYPES: dict[str, str] = {
    "FLOAT": "TYPE_FP32",
    "FLOAT16": "TYPE_FP16",
    "INT64": "TYPE_INT64",
    "INT32": "TYPE_INT32",
    "UINT8": "TYPE_UINT8",
    "BOOL": "TYPE_BOOL",
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # Triton's, e.g. TYPE_FP32
    dims: tuple[int, ...]  # without the batch axis; -1 where the size varies


def tensor_specs(onnx_bytes: bytes) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The graph's inputs and outputs as Triton sees them; the first axis of each must be the batch."""
    import onnx

    graph = onnx.load_from_string(onnx_bytes).graph

    def spec(value: onnx.ValueInfoProto) -> TensorSpec:
        tensor = value.type.tensor_type
        dims = [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim]
        if not dims or dims[0] != -1:
            raise ValueError(f"ONNX tensor {value.name!r} has no dynamic batch axis (shape {dims})")
        elem_type = onnx.TensorProto.DataType.Name(tensor.elem_type)
        if elem_type not in TRITON_TYPES:
            raise ValueError(f"ONNX tensor {value.name!r} has element type {elem_type}, which Loupe does not serve")
        return TensorSpec(value.name, TRITON_TYPES[elem_type], tuple(dims[1:]))

    return tuple(spec(value) for value in graph.input), tuple(spec(value) for value in graph.output)


def config_pbtxt(
    name: str,
    version: int,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    *,
    backend: Backend,
    gpu: bool,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> str:
    """Triton's model configuration: dynamic batching, one instance, and on GPUs TensorRT."""
    _check_model(name, version)
    if backend not in BACKENDS:
        raise invalid(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}", path="backend")
    if backend == "python" and gpu:
        raise invalid("the python backend serves on the CPU: use the onnxruntime backend on GPUs", path="gpu")
    if max_batch_size < 1:
        raise invalid(f"max_batch_size must be at least 1, not {max_batch_size}", path="max_batch_size")
    lines = [
        f'name: "{name}"',
        f'backend: "{backend}"',
        f"max_batch_size: {max_batch_size}",
        f"version_policy: {{ specific: {{ versions: [ {version} ] }} }}",
        *_tensors("input", inputs),
        *_tensors("output", outputs),
        f"dynamic_batching {{ max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US} }}",
        f"instance_group [ {{ kind: {'KIND_GPU' if gpu else 'KIND_CPU'} count: 1 }} ]",
    ]
    if gpu:
        lines += _tensorrt(inputs, max_batch_size)
    return "\n".join(lines) + "\n"


def _tensors(kind: str, tensors: tuple[TensorSpec, ...]) -> list[str]:
    blocks = [
        f'  {{ name: "{tensor.name}" data_type: {tensor.data_type} dims: [ {", ".join(map(str, tensor.dims))} ] }}'
        for tensor in tensors
    ]
    return [f"{kind} [", ",\n".join(blocks), "]"]


def _tensorrt(inputs: tuple[TensorSpec, ...], max_batch_size: int) -> list[str]:
    parameters = dict(TENSORRT_PARAMETERS)
    if all(-1 not in tensor.dims for tensor in inputs):
        # One optimisation profile over every batch size Triton may form; without it TensorRT builds a
        # new engine, while serving, each time a larger batch arrives.
        def shapes(batch: int) -> str:
            return ",".join(f"{t.name}:{'x'.join(map(str, (batch, *t.dims)))}" for t in inputs)

        parameters |= {
            "trt_profile_min_shapes": shapes(1),
            "trt_profile_opt_shapes": shapes(max_batch_size),
            "trt_profile_max_shapes": shapes(max_batch_size),
        }
    return [
        "optimization { execution_accelerators {",
        '  gpu_execution_accelerator : [ { name : "tensorrt"',
        *(f'    parameters {{ key: "{key}" value: "{value}" }}' for key, value in parameters.items()),
        "  } ]",
        "} }",
    ]


def _check_name(name: str) -> None:
    if not MODEL_NAME.fullmatch(name):
        raise invalid(
            f"model name {name!r} must be 1 to 128 letters, digits, '_' or '-', starting with a letter or digit",
            path="model",
        )


def _check_model(name: str, version: int) -> None:
    _check_name(name)
    if version < 1:
        raise invalid(f"model version must be a positive integer, not {version}", path="version")


def _version_prefix(name: str, version: int) -> str:
    return f"{name}/{version}/"


async def publish_version(
    storage: Storage,
    name: str,
    version: int,
    onnx_bytes: bytes,
    *,
    backend: Backend,
    gpu: bool,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> None:
    """Put the version's files, then a config that serves it (last, so that a Triton loading the model
    meanwhile never finds a config naming a version that is not there yet)."""
    config = await _config(name, version, onnx_bytes, backend, gpu, max_batch_size)
    prefix = _version_prefix(name, version)
    await storage.put_bytes(BUCKET, prefix + ONNX_FILE, onnx_bytes, "application/octet-stream")
    if backend == "python":
        await storage.put_bytes(BUCKET, prefix + PYTHON_FILE, PYTHON_MODEL.read_bytes(), "text/x-python")
    await storage.put_bytes(BUCKET, f"{name}/config.pbtxt", config.encode(), "text/plain")


async def serve_version(
    storage: Storage,
    name: str,
    version: int,
    *,
    backend: Backend,
    gpu: bool,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> None:
    """Point the model's config at a version published earlier (the next load serves it)."""
    _check_model(name, version)
    try:
        onnx_bytes = await storage.get_bytes(BUCKET, _version_prefix(name, version) + ONNX_FILE)
    except ObjectMissing:
        raise not_found("model version", f"{name}/{version}") from None
    config = await _config(name, version, onnx_bytes, backend, gpu, max_batch_size)
    await storage.put_bytes(BUCKET, f"{name}/config.pbtxt", config.encode(), "text/plain")


async def _config(name: str, version: int, onnx_bytes: bytes, backend: Backend, gpu: bool, max_batch_size: int) -> str:
    # Parsing a model of tens of megabytes takes a while: off the event loop.
    inputs, outputs = await asyncio.to_thread(tensor_specs, onnx_bytes)
    return config_pbtxt(name, version, inputs, outputs, backend=backend, gpu=gpu, max_batch_size=max_batch_size)


async def remove_version(storage: Storage, name: str, version: int) -> None:
    """Delete one version's files. If the config serves it, point it at another version first."""
    _check_model(name, version)
    await storage.delete_prefix(BUCKET, _version_prefix(name, version))


async def remove_model(storage: Storage, name: str) -> None:
    """Delete the model's config and every version."""
    _check_name(name)
    await storage.delete_prefix(BUCKET, f"{name}/")
