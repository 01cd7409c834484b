"""From `Example`s to batches: resize to the model's square input, augment, build each family's targets.

All randomness draws from torch's generator (the global one in the main process, the loader's per-worker
seeds in workers), so a run is reproducible by seed and a checkpoint's RNG state resumes it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from services.training.ml.examples import Example
from shared.predictions import OUTPUT_STRIDE, TaskSpec, resize_labels

Batch = tuple[Tensor, dict[str, Tensor]]

# Colour jitter stays small and hue is left alone: colour is a label in tagging ("red" must stay red).
JITTER = 0.2
# TTFNet's Gaussian: sigma = alpha * box side / 6, elliptical, so thin boxes get thin peaks.
GAUSSIAN_ALPHA = 0.54


def image_tensor(image: np.ndarray, size: int) -> Tensor:
    """H×W×3 uint8 RGB (numpy) -> 3×size×size float in [0, 1], plain (aspect-changing) bilinear resize."""
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1).div_(255.0)
    if x.shape[1:] != (size, size):
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    return x


def colour_jitter(image: Tensor) -> Tensor:
    """Random brightness, contrast and saturation, each a factor in [1 - JITTER, 1 + JITTER]."""
    brightness, contrast, saturation = (1.0 + JITTER * (2 * torch.rand(3) - 1)).tolist()
    image = image * brightness
    image = (image - image.mean()) * contrast + image.mean()
    grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    image = (image - grey) * saturation + grey
    return image.clamp_(0.0, 1.0)


def centernet_targets(boxes: Tensor, classes: Tensor, num_classes: int, size: int) -> dict[str, Tensor]:
    """Dense CenterNet targets at stride 4 for boxes (N×4, input pixels): a Gaussian peak per object in
    its class's heatmap, and at each centre cell its size (w, h in cells) and sub-cell offset."""
    cells = size // OUTPUT_STRIDE
    heatmap = torch.zeros(num_classes, cells, cells)
    box_size = torch.zeros(2, cells, cells)
    offset = torch.zeros(2, cells, cells)
    weight = torch.zeros(cells, cells)
    ys, xs = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
    for box, cls in zip(boxes / OUTPUT_STRIDE, classes.tolist(), strict=True):
        x0, y0, x1, y1 = box.tolist()
        width, height = x1 - x0, y1 - y0
        centre = torch.tensor([(x0 + x1) / 2, (y0 + y1) / 2]).clamp_(0, cells - 1e-3)
        cx, cy = centre.long().tolist()
        sigma_x = max(GAUSSIAN_ALPHA * width / 6, 0.5)
        sigma_y = max(GAUSSIAN_ALPHA * height / 6, 0.5)
        peak = torch.exp(-((xs - cx) ** 2) / (2 * sigma_x**2) - ((ys - cy) ** 2) / (2 * sigma_y**2))
        heatmap[cls] = torch.maximum(heatmap[cls], peak)
        box_size[:, cy, cx] = torch.tensor([width, height])
        offset[:, cy, cx] = centre - centre.floor()
        weight[cy, cx] = 1.0
    return {"heatmap": heatmap, "size": box_size, "offset": offset, "weight": weight}


class ExampleDataset(Dataset[Batch]):
    """Examples as (image 3×S×S float, targets) pairs; `augment` adds a random horizontal flip and colour
    jitter, applied to image, boxes and mask alike."""

    def __init__(self, spec: TaskSpec, examples: Sequence[Example], image_size: int, augment: bool) -> None:
        self.spec = spec
        self.examples = examples
        self.size = image_size
        self.augment = augment

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        example = self.examples[index]
        height, width = example.image.shape[:2]
        image = image_tensor(example.image, self.size)
        scale = torch.tensor([self.size / width, self.size / height] * 2)
        boxes = torch.tensor(example.boxes, dtype=torch.float32).reshape(-1, 4) * scale
        mask = None
        if example.mask is not None:
            mask = torch.from_numpy(resize_labels(example.mask, (self.size, self.size)).astype(np.int64))
        if self.augment:
            if torch.rand(1).item() < 0.5:
                image = image.flip(-1)
                boxes = torch.stack([self.size - boxes[:, 2], boxes[:, 1], self.size - boxes[:, 0], boxes[:, 3]], 1)
                mask = None if mask is None else mask.flip(-1)
            image = colour_jitter(image)
        return image, self.targets(example, boxes, mask)

    def targets(self, example: Example, boxes: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        family = self.spec.family
        if family == "classification":
            return {"label": torch.tensor(example.label)}
        if family == "tagging":
            return {"tags": torch.tensor(example.tags)}
        if family == "detection":
            classes = torch.tensor(example.box_classes, dtype=torch.long).reshape(-1)
            return centernet_targets(boxes, classes, len(self.spec.classes), self.size)
        assert mask is not None, "validate() requires a mask on every segmentation example"
        return {"mask": mask}


def collate(items: list[tuple[Tensor, dict[str, Tensor]]]) -> Batch:
    images = torch.stack([image for image, _ in items])
    targets = {key: torch.stack([t[key] for _, t in items]) for key in items[0][1]}
    return images, targets


def loader(
    dataset: ExampleDataset,
    batch_size: int,
    *,
    shuffle: bool,
    workers: int,
    pin_memory: bool,
    generator: torch.Generator | None = None,
) -> DataLoader[Batch]:
    # A training batch of one makes BatchNorm's statistics meaningless, so a ragged last batch is dropped.
    drop_last = shuffle and len(dataset) > batch_size
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        drop_last=drop_last,
        generator=generator,
        persistent_workers=workers > 0,
    )
