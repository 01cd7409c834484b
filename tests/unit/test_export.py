"""ONNX export with onnxruntime's check, and the Triton model configuration of both flavours."""

from __future__ import annotations

import onnxruntime
import pytest
import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from services.training.ml.export import INPUT_NAME, TOLERANCE, check_onnx, export_onnx
from services.training.model_repository import TensorSpec, config_pbtxt, tensor_specs
from shared.errors import LoupeError

SIZE = 32
NAMES = ("logits", "features")


class Tiny(torch.nn.Module):
    """A tuple of two outputs of different ranks, through a batch norm that must run in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.norm = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4, 5)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.relu(self.norm(self.conv(images)))
        return self.head(features.mean(dim=(2, 3))), features


@pytest.fixture(scope="module")
def tiny() -> tuple[Tiny, bytes]:
    torch.manual_seed(0)
    model = Tiny()
    model.norm.running_mean.uniform_(-1, 1)  # statistics unlike a training batch's
    # As training leaves it: in train mode, channels_last (as on a GPU).
    model.train().to(memory_format=torch.channels_last)
    return model, export_onnx(model, NAMES, SIZE)


def test_the_export_takes_any_batch_and_matches_torch(tiny: tuple[Tiny, bytes]) -> None:
    model, onnx_bytes = tiny
    assert model.training  # the caller's model is left as it was; the graph predicts as in eval mode
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert [o.name for o in session.get_outputs()] == list(NAMES)
    # Traced with a batch of 2, run with 5.
    images = torch.rand(5, 3, SIZE, SIZE)
    logits, features = session.run(None, {INPUT_NAME: images.numpy()})
    assert logits.shape == (5, 5) and features.shape == (5, 4, SIZE // 2, SIZE // 2)
    difference = check_onnx(model, onnx_bytes, images)
    assert 0.0 <= difference <= TOLERANCE


def test_the_check_refuses_a_graph_that_computes_something_else(tiny: tuple[Tiny, bytes]) -> None:
    _, onnx_bytes = tiny
    torch.manual_seed(1)
    other = Tiny()
    with pytest.raises(LoupeError, match="onnxruntime's outputs differ from torch's by up to"):
        check_onnx(other, onnx_bytes, torch.rand(3, 3, SIZE, SIZE))


def test_tensor_specs_read_the_graph(tiny: tuple[Tiny, bytes]) -> None:
    inputs, outputs = tensor_specs(tiny[1])
    assert inputs == (TensorSpec(INPUT_NAME, "TYPE_FP32", (3, SIZE, SIZE)),)
    assert outputs == (
        TensorSpec("logits", "TYPE_FP32", (5,)),
        TensorSpec("features", "TYPE_FP32", (4, SIZE // 2, SIZE // 2)),
    )


INPUTS = (TensorSpec("images", "TYPE_FP32", (3, 64, 64)),)
OUTPUTS = (TensorSpec("heatmap", "TYPE_FP32", (3, 16, 16)), TensorSpec("size", "TYPE_FP32", (2, 16, 16)))


def parsed(text: str) -> model_config_pb2.ModelConfig:
    """Triton's own schema for config.pbtxt: a typo in a field name fails here."""
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_the_python_flavour_batches_dynamically_on_the_cpu() -> None:
    config = parsed(config_pbtxt("detector", 3, INPUTS, OUTPUTS, backend="python", gpu=False, max_batch_size=16))
    assert config.name == "detector" and config.backend == "python" and config.max_batch_size == 16
    assert list(config.version_policy.specific.versions) == [3]
    assert [(t.name, list(t.dims)) for t in config.input] == [("images", [3, 64, 64])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("heatmap", [3, 16, 16]), ("size", [2, 16, 16])]
    assert config.output[0].data_type == model_config_pb2.TYPE_FP32
    assert config.HasField("dynamic_batching")
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator


def test_the_gpu_flavour_runs_onnxruntime_through_tensorrt() -> None:
    config = parsed(config_pbtxt("detector", 1, INPUTS, OUTPUTS, backend="onnxruntime", gpu=True, max_batch_size=16))
    assert config.backend == "onnxruntime" and config.HasField("dynamic_batching")
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert accelerator.parameters["trt_engine_cache_enable"] == "1"
    assert accelerator.parameters["trt_profile_min_shapes"] == "images:1x3x64x64"
    assert accelerator.parameters["trt_profile_max_shapes"] == "images:16x3x64x64"


def test_the_onnxruntime_flavour_on_cpus_has_no_accelerator() -> None:
    config = parsed(config_pbtxt("detector", 1, INPUTS, OUTPUTS, backend="onnxruntime", gpu=False))
    assert config.backend == "onnxruntime"
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    assert not config.HasField("optimization")


@pytest.mark.parametrize(
    ("name", "version", "backend", "gpu", "path"),
    [
        ("detector", 1, "python", True, "gpu"),
        ("detector", 1, "tensorflow", False, "backend"),
        ("a/b", 1, "python", False, "model"),
        ("", 1, "python", False, "model"),
        ("detector", 0, "python", False, "version"),
    ],
)
def test_a_config_triton_cannot_serve_is_refused(name: str, version: int, backend: str, gpu: bool, path: str) -> None:
    with pytest.raises(LoupeError) as refused:
        config_pbtxt(name, version, INPUTS, OUTPUTS, backend=backend, gpu=gpu)  # type: ignore[arg-type]
    assert refused.value.code == "invalid" and refused.value.details["path"] == path


def test_a_graph_without_a_dynamic_batch_is_refused() -> None:
    model = Tiny().eval()
    program = torch.onnx.export(
        model,
        (torch.rand(1, 3, SIZE, SIZE),),
        input_names=[INPUT_NAME],
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    assert program is not None
    with pytest.raises(ValueError, match="no dynamic batch axis"):
        tensor_specs(program.model_proto.SerializeToString())


def test_check_onnx_reports_nan_as_a_mismatch(tiny: tuple[Tiny, bytes]) -> None:
    model, onnx_bytes = tiny
    images = torch.full((2, 3, SIZE, SIZE), float("nan"))
    with pytest.raises(LoupeError, match="differ"):
        check_onnx(model, onnx_bytes, images)
