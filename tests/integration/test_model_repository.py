"""The model repository against the stack's real Triton (python backend only, explicit model control,
repository = the S3 models bucket): an exported model is published, loaded, answers as torch does
within the export's tolerance, and is unloaded and removed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
import torch
from tritonclient.http import InferInput, InferRequestedOutput
from tritonclient.http.aio import InferenceServerClient

from proto.training import TrainingConfig
from services.training import model_repository
from services.training.ml.export import INPUT_NAME, TOLERANCE, export_onnx
from services.training.ml.models import build_model
from shared.errors import LoupeError
from shared.predictions import TaskSpec, output_names
from shared.settings import Settings
from shared.storage import Storage

SPEC = TaskSpec("detection", ("circle", "square", "triangle"))
NAMES = output_names(SPEC)


@pytest.fixture
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    opened = Storage(settings)
    yield opened
    await opened.close()


@pytest.fixture
async def triton(settings: Settings) -> AsyncIterator[InferenceServerClient]:
    client = InferenceServerClient(settings.triton_url, conn_timeout=10.0)
    yield client
    await client.close()


def exported(image_size: int) -> tuple[torch.nn.Module, bytes]:
    torch.manual_seed(image_size)
    model = build_model(SPEC, TrainingConfig(image_size=image_size, model_size="small")).eval()
    return model, export_onnx(model, NAMES, image_size)


async def infer(triton: InferenceServerClient, name: str, images: np.ndarray) -> list[np.ndarray]:
    request = InferInput(INPUT_NAME, list(images.shape), "FP32")
    request.set_data_from_numpy(images)
    result = await triton.infer(name, [request], outputs=[InferRequestedOutput(output) for output in NAMES])
    return [result.as_numpy(output) for output in NAMES]


def assert_like_torch(model: torch.nn.Module, images: np.ndarray, answers: list[np.ndarray]) -> None:
    with torch.no_grad():
        expected = [output.numpy() for output in model(torch.from_numpy(images))]
    for name, answer, wanted in zip(NAMES, answers, expected, strict=True):
        assert answer.shape == wanted.shape, name
        assert float(np.max(np.abs(answer - wanted))) <= TOLERANCE, name


async def unloaded(triton: InferenceServerClient, name: str) -> None:
    """Unloading returns at once; the model goes unavailable about a second later."""
    await triton.unload_model(name)
    for _ in range(100):
        if not await triton.is_model_ready(name):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"Triton still serves {name} 10 s after unloading it")


async def test_triton_serves_the_exported_model_as_torch_computes_it(
    storage: Storage, triton: InferenceServerClient, unique: str
) -> None:
    name = f"detector-{unique}"
    model, onnx_bytes = await asyncio.to_thread(exported, 64)
    await model_repository.publish_version(storage, name, 1, onnx_bytes, backend="python", gpu=False)
    assert await storage.exists("models", f"{name}/1/model.py")
    try:
        await triton.load_model(name)
        assert await triton.is_model_ready(name, "1")

        images = np.random.default_rng(0).random((4, 3, 64, 64), dtype=np.float32)
        assert_like_torch(model, images, await infer(triton, name, images))
        # Requests in flight together, which the dynamic batcher hands to one `execute`: each gets its own rows.
        singles = [images[i : i + 1] for i in range(4)]
        answers = await asyncio.gather(*(infer(triton, name, one) for one in singles))
        for one, answer in zip(singles, answers, strict=True):
            assert_like_torch(model, one, answer)
    finally:
        await unloaded(triton, name)
        await model_repository.remove_model(storage, name)
    assert not await storage.exists("models", f"{name}/config.pbtxt")
    assert not await storage.exists("models", f"{name}/1/model.onnx")


async def test_the_config_serves_the_version_it_names(
    storage: Storage, triton: InferenceServerClient, unique: str
) -> None:
    name = f"detector-{unique}"
    # Versions of one model may differ in image size: the config describes the one it serves.
    first, first_bytes = await asyncio.to_thread(exported, 64)
    second, second_bytes = await asyncio.to_thread(exported, 32)
    await model_repository.publish_version(storage, name, 1, first_bytes, backend="python", gpu=False)
    await model_repository.publish_version(storage, name, 2, second_bytes, backend="python", gpu=False)
    try:
        await triton.load_model(name)
        assert await triton.is_model_ready(name, "2") and not await triton.is_model_ready(name, "1")
        images = np.random.default_rng(1).random((2, 3, 32, 32), dtype=np.float32)
        assert_like_torch(second, images, await infer(triton, name, images))

        await model_repository.serve_version(storage, name, 1, backend="python", gpu=False)
        await triton.load_model(name)  # loading again reads the new config
        assert await triton.is_model_ready(name, "1") and not await triton.is_model_ready(name, "2")
        images = np.random.default_rng(2).random((3, 3, 64, 64), dtype=np.float32)
        assert_like_torch(first, images, await infer(triton, name, images))

        await model_repository.remove_version(storage, name, 2)
        assert not await storage.exists("models", f"{name}/2/model.onnx")
        assert await storage.exists("models", f"{name}/1/model.onnx")
        with pytest.raises(LoupeError, match="does not exist") as missing:
            await model_repository.serve_version(storage, name, 2, backend="python", gpu=False)
        assert missing.value.code == "not_found"
    finally:
        await unloaded(triton, name)
        await model_repository.remove_model(storage, name)
