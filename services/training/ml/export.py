"""ONNX export of a trained model, and the check that onnxruntime computes what torch computes.

The graph takes `images` (B×3×S×S float32 in [0, 1]) with B dynamic and returns the model's outputs
under the names `models.output_names` gives them, so Triton and the inference service address them
by name. The file is self-contained (weights inside): Triton's repository holds exactly one
`model.onnx` per version.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import onnxruntime
import onnxscript  # noqa: F401  torch's dynamo exporter needs it: a missing install fails at import, by name
import torch

from shared.errors import LoupeError

INPUT_NAME = "images"
# Largest absolute difference allowed between onnxruntime's and torch's outputs, both fp32 on the CPU.
# Operator fusion (convolution with batch norm) reorders float sums: the models differ by about 1e-6
# in practice, so 1e-4 leaves room for deep models while still catching a wrong graph.
TOLERANCE = 1e-4
# The traced batch: above 1, so torch.export does not specialise the batch axis to a constant.
EXAMPLE_BATCH = 2


def export_onnx(model: torch.nn.Module, output_names: Sequence[str], image_size: int) -> bytes:
    """The model, in eval mode, as one ONNX file with a dynamic batch axis."""
    example = torch.rand(EXAMPLE_BATCH, 3, image_size, image_size)
    program = torch.onnx.export(
        _on_cpu(model),
        (example,),
        input_names=[INPUT_NAME],
        output_names=list(output_names),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
        dynamo=True,
        verbose=False,
    )
    assert program is not None  # the dynamo exporter always returns the program when `f` is not given
    return program.model_proto.SerializeToString()


def check_onnx(model: torch.nn.Module, onnx_bytes: bytes, images: torch.Tensor, tolerance: float = TOLERANCE) -> float:
    """The largest absolute difference between onnxruntime's and torch's outputs on ``images``;
    raises when it exceeds ``tolerance`` or an output's shape differs."""
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    images = images.detach().cpu().float()
    ours = session.run(None, {INPUT_NAME: images.numpy()})
    with torch.no_grad():
        theirs = [output.numpy() for output in _on_cpu(model)(images)]
    names = [output.name for output in session.get_outputs()]
    if len(ours) != len(theirs):
        raise _mismatch(f"the ONNX graph has {len(ours)} outputs, the model {len(theirs)}")
    differences = [0.0]
    for name, onnx_output, torch_output in zip(names, ours, theirs, strict=True):
        if onnx_output.shape != torch_output.shape:
            raise _mismatch(f"output {name!r} is {onnx_output.shape} in ONNX but {torch_output.shape} in torch")
        differences.append(float(np.max(np.abs(onnx_output - torch_output), initial=0.0)))
    difference = float(np.max(differences))  # np.max, unlike max, keeps a NaN
    if not difference <= tolerance:
        raise _mismatch(
            f"onnxruntime's outputs differ from torch's by up to {difference:.3g} (tolerance {tolerance:g})"
        )
    return difference


def _on_cpu(model: torch.nn.Module) -> torch.nn.Module:
    """An fp32 copy in eval mode on the CPU, leaving the caller's model as it is: a model trained on a GPU
    computes with TF32 convolutions there, which alone would differ from onnxruntime by more than the
    tolerance."""
    return copy.deepcopy(model).cpu().float().eval()


def _mismatch(message: str) -> LoupeError:
    return LoupeError("internal", f"the exported ONNX model does not match the trained model: {message}")
