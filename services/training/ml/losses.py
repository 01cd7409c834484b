"""Each family's training loss over forward's outputs and the targets data.py builds."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from shared.predictions import TaskSpec

# CenterNet's weights: box sizes are in cells and larger than offsets, so their L1 counts less.
SIZE_WEIGHT = 0.1
OFFSET_WEIGHT = 1.0


def focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4) over B×C×H×W heatmaps: cells near an object's
    centre are penalised less for a high score; normalised by the number of objects."""
    logits = logits.float()
    probability = logits.sigmoid()
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    positive = target.eq(1.0).float()
    positive_loss = -((1 - probability) ** 2) * log_p * positive
    negative_loss = -((1 - target) ** 4) * probability**2 * log_not_p * (1 - positive)
    return (positive_loss.sum() + negative_loss.sum()) / positive.sum().clamp(min=1.0)


def masked_l1(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """L1 over B×2×H×W maps at the cells where weight (B×H×W) is 1, averaged over those cells."""
    weight = weight[:, None]
    total = F.l1_loss(prediction.float() * weight, target * weight, reduction="sum")
    return total / (2 * weight.sum()).clamp(min=1.0)


def dice_loss(logits: Tensor, mask: Tensor) -> Tensor:
    """1 - soft Dice, averaged over the classes present in the batch (it rewards small objects' overlap,
    which per-pixel cross-entropy drowns in background)."""
    probability = logits.float().softmax(dim=1)
    one_hot = F.one_hot(mask, logits.shape[1]).permute(0, 3, 1, 2).float()
    intersection = (probability * one_hot).sum(dim=(0, 2, 3))
    total = probability.sum(dim=(0, 2, 3)) + one_hot.sum(dim=(0, 2, 3))
    present = one_hot.sum(dim=(0, 2, 3)) > 0
    dice = (2 * intersection + 1.0) / (total + 1.0)
    return 1.0 - dice[present].mean()


def loss(spec: TaskSpec, outputs: tuple[Tensor, ...], targets: dict[str, Tensor]) -> Tensor:
    """The task's outputs by position (shared.predictions.task_output_names); the embedding after them
    learns nothing of its own."""
    if spec.family == "classification":
        return F.cross_entropy(outputs[0].float(), targets["label"])
    if spec.family == "tagging":
        per_group = [F.cross_entropy(outputs[i].float(), targets["tags"][:, i]) for i in range(len(spec.tag_groups))]
        return torch.stack(per_group).mean()
    if spec.family == "detection":
        heatmap, size, offset = outputs[:3]
        return (
            focal_loss(heatmap, targets["heatmap"])
            + SIZE_WEIGHT * masked_l1(size, targets["size"], targets["weight"])
            + OFFSET_WEIGHT * masked_l1(offset, targets["offset"], targets["weight"])
        )
    logits = outputs[0]
    return F.cross_entropy(logits.float(), targets["mask"]) + dice_loss(logits, targets["mask"])
