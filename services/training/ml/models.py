"""Models: a small ResNet-style backbone, an FPN-lite neck and one head per task family.

Every model maps images B×3×S×S (float in [0, 1], S a multiple of 32) to a tuple of tensors named by
`shared.predictions.output_names`: the task's outputs, then `embedding` (B×D, unit length, D =
stages[-1] + neck: the average-pooled C5 and P2), for similarity search and active learning. Decoding
(softmax, peak finding, resizing) happens outside the graph in shared/predictions.py so that the graph
exports to ONNX with a dynamic batch axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from proto.training import TrainingConfig
from shared.predictions import TaskSpec

# ImageNet statistics are as good a normalisation as any for images without a known distribution.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# An embedding shorter than this is divided by it rather than by its length: a zero vector stays zero, not NaN.
MIN_NORM = 1e-12


@dataclass(frozen=True)
class Width:
    stem: int
    stages: tuple[int, int, int, int]  # channels of C2..C5 (strides 4, 8, 16, 32)
    blocks: int  # residual blocks per stage
    neck: int  # channels of every FPN level and of the heads


WIDTHS: dict[str, Width] = {
    "small": Width(stem=16, stages=(16, 32, 64, 128), blocks=1, neck=64),
    "medium": Width(stem=32, stages=(32, 64, 128, 256), blocks=2, neck=96),
}


def conv_bn(inputs: int, outputs: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """ResNet's two-convolution residual block; a strided 1×1 projection when the shape changes."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(inputs, outputs, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False), nn.BatchNorm2d(outputs))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class Backbone(nn.Module):
    """Stem at stride 2, then four stages that each halve the resolution: C2..C5 at strides 4..32."""

    mean: Tensor
    std: Tensor

    def __init__(self, width: Width) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        self.stem = conv_bn(3, width.stem, stride=2)
        stages = []
        inputs = width.stem
        for outputs in width.stages:
            blocks = [BasicBlock(inputs, outputs, 2)] + [
                BasicBlock(outputs, outputs, 1) for _ in range(width.blocks - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            inputs = outputs
        self.stages = nn.ModuleList(stages)

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Returns the stem's features (stride 2) and [C2, C3, C4, C5]."""
        x = self.stem((images - self.mean) / self.std)
        stem = x
        levels = []
        for stage in self.stages:
            x = stage(x)
            levels.append(x)
        return stem, levels


class FpnLite(nn.Module):
    """Top-down FPN: 1×1 laterals, nearest upsampling and addition, one 3×3 smoothing conv on P2 only."""

    def __init__(self, stages: tuple[int, ...], channels: int) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in stages)
        self.smooth = conv_bn(channels, channels)

    def forward(self, levels: list[Tensor]) -> Tensor:
        """[C2..C5] -> P2, B×channels×S/4×S/4."""
        x = self.laterals[-1](levels[-1])
        for lateral, level in zip(self.laterals[-2::-1], levels[-2::-1], strict=True):
            x = lateral(level) + F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.smooth(x)


def embedding(c5_mean: Tensor, p2_mean: Tensor) -> Tensor:
    """B×C5 and B×neck average-pooled features -> B×(C5 + neck), each row of unit length (a zero row stays
    zero)."""
    joined = torch.cat([c5_mean, p2_mean], dim=1)
    return joined / joined.norm(dim=1, keepdim=True).clamp_min(MIN_NORM)


def pooled_embedding(c5: Tensor, p2: Tensor) -> Tensor:
    """The embedding of C5 (B×C×S/32×S/32) and P2 (B×neck×S/4×S/4)."""
    return embedding(c5.mean(dim=(2, 3)), p2.mean(dim=(2, 3)))


class Classifier(nn.Module):
    """One linear head per label group (one group for classification) over C5 and the FPN's P2, each
    average- and max-pooled: max pooling over P2 keeps local evidence about one object that averaging over
    the background would wash out. The embedding is the two average pools. Backbone and neck are named as
    in the detector and segmentor, so their weights can initialise this model (train's `pretrained`)."""

    def __init__(self, width: Width, group_sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.backbone = Backbone(width)
        self.neck = FpnLite(width.stages, width.neck)
        features = 2 * (width.stages[-1] + width.neck)
        self.heads = nn.ModuleList(nn.Linear(features, size) for size in group_sizes)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        _, levels = self.backbone(images)
        c5, p2 = levels[-1], self.neck(levels)
        c5_mean, p2_mean = c5.mean(dim=(2, 3)), p2.mean(dim=(2, 3))
        pooled = torch.cat([c5_mean, c5.amax(dim=(2, 3)), p2_mean, p2.amax(dim=(2, 3))], 1)
        # One B×values per head, then the B×(C5 + neck) embedding.
        return *(h(pooled) for h in self.heads), embedding(c5_mean, p2_mean)


class CenterNet(nn.Module):
    """Anchor-free detection (Zhou et al., Objects as Points) at stride 4: per-class centre heatmap logits,
    box width/height in stride-4 cells, and the centre's sub-cell offset."""

    # The heatmap starts predicting a 0.1 prior everywhere, as in CenterNet, so focal loss starts stable.
    HEATMAP_PRIOR_BIAS = -2.19

    def __init__(self, width: Width, classes: int) -> None:
        super().__init__()
        self.backbone = Backbone(width)
        self.neck = FpnLite(width.stages, width.neck)
        # One 3×3 conv shared by the three heads: at stride 4 separate ones would cost more than the backbone.
        self.shared = conv_bn(width.neck, width.neck)
        self.heatmap = nn.Conv2d(width.neck, classes, 1)
        assert self.heatmap.bias is not None
        nn.init.constant_(self.heatmap.bias, self.HEATMAP_PRIOR_BIAS)
        self.size = nn.Conv2d(width.neck, 2, 1)
        self.offset = nn.Conv2d(width.neck, 2, 1)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        _, levels = self.backbone(images)
        p2 = self.neck(levels)
        x = self.shared(p2)
        # B×C×S/4×S/4, B×2×S/4×S/4 (w, h), B×2×S/4×S/4 (dx, dy), B×(C5 + neck)
        return self.heatmap(x), self.size(x), self.offset(x), pooled_embedding(levels[-1], p2)


class Segmenter(nn.Module):
    """FPN P2 upsampled to stride 2 and joined with the stem's features (a U-Net skip for sharp edges),
    then per-pixel logits upsampled bilinearly to the input resolution."""

    def __init__(self, width: Width, classes: int) -> None:
        super().__init__()
        self.backbone = Backbone(width)
        self.neck = FpnLite(width.stages, width.neck)
        self.fuse = conv_bn(width.neck + width.stem, width.neck)
        self.logits = nn.Conv2d(width.neck, classes, 1)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        stem, levels = self.backbone(images)
        p2 = self.neck(levels)
        x = self.fuse(torch.cat([F.interpolate(p2, scale_factor=2.0, mode="nearest"), stem], dim=1))
        logits = F.interpolate(self.logits(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        # B×(1+classes)×S×S (channel 0 is background, k+1 is TaskSpec.classes[k]), B×(C5 + neck)
        return logits, pooled_embedding(levels[-1], p2)


def build_model(spec: TaskSpec, config: TrainingConfig) -> nn.Module:
    width = WIDTHS[config.model_size]
    if spec.family == "classification":
        return Classifier(width, (len(spec.classes),))
    if spec.family == "tagging":
        return Classifier(width, tuple(len(values) for _, values in spec.tag_groups))
    if spec.family == "detection":
        return CenterNet(width, len(spec.classes))
    return Segmenter(width, 1 + len(spec.classes))
