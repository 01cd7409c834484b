"""What Loupe's Hasty dialect and its Hasty json_v1.1 export share: Hasty's spelling of image statuses, and its
masks, run-length encoded differently from Loupe's.

Hasty: the runs cover the label's bbox [x1, y1, x2, y2] only, row by row (x to the right, then down),
as [start, length, start, length, ...] with 1-based starts (the SDK's `rle_encoding`).
Loupe: COCO RLE of the whole image, column-major, alternating background and foreground run lengths.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

from proto.annotation import Rle
from proto.samples import SampleStatus
from shared.errors import invalid

Box = tuple[int, int, int, int]

# Hasty's image statuses are Loupe's sample statuses, spelt with a space or a hyphen.
IMAGE_STATUSES: dict[SampleStatus, str] = {
    "NEW": "NEW",
    "IN_PROGRESS": "IN PROGRESS",
    "TO_REVIEW": "TO REVIEW",
    "DONE": "DONE",
    "SKIPPED": "SKIPPED",
    "AUTO_LABELLED": "AUTO-LABELLED",
    "COMPLETED": "COMPLETED",
}


def to_coco(bbox: Box, runs: list[int], height: int, width: int, path: str) -> Rle:
    x1, y1, x2, y2 = bbox
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise invalid(
            f"a mask's bbox must be whole pixels inside the {width}×{height} image, not {list(bbox)}",
            path=f"{path}.bbox",
        )
    if len(runs) < 2 or len(runs) % 2:
        raise invalid("a mask is pairs of [start, length]: an even number of integers", path=f"{path}.mask")
    inside = np.zeros((y2 - y1) * (x2 - x1), dtype=np.uint8)
    for start, length in zip(runs[::2], runs[1::2], strict=True):
        if start < 1 or length < 1 or start - 1 + length > inside.size:
            raise invalid(
                f"the mask's run ({start}, {length}) leaves its bbox of {x2 - x1}×{y2 - y1} pixels "
                "(starts count from 1, row by row)",
                path=f"{path}.mask",
            )
        inside[start - 1 : start - 1 + length] = 1
    image = np.zeros((height, width), dtype=np.uint8)
    image[y1:y2, x1:x2] = inside.reshape(y2 - y1, x2 - x1)
    encoded = coco_mask.encode(np.asfortranarray(image))
    return Rle(size=(height, width), counts=encoded["counts"].decode("ascii"))


def from_coco(rle: Rle) -> tuple[Box, list[int]] | None:
    """(bbox, runs) of a Loupe mask: the bbox is the mask's tight box; None for an empty mask."""
    height, width = rle.size
    if isinstance(rle.counts, str):
        image = coco_mask.decode({"size": [height, width], "counts": rle.counts.encode("ascii")})
    else:
        image = (
            np.repeat(np.arange(len(rle.counts)) % 2, rle.counts).astype(np.uint8).reshape((height, width), order="F")
        )
    ys, xs = np.nonzero(image)
    if not len(xs):
        return None
    x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    inside = image[y1:y2, x1:x2].flatten()
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inside, [0]))))
    starts, ends = edges[::2], edges[1::2]
    runs = [int(value) for pair in zip(starts + 1, ends - starts, strict=True) for value in pair]
    return (x1, y1, x2, y2), runs
