"""Hasty's bbox-relative masks and Loupe's whole-image COCO RLE, both ways."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from proto.annotation import Rle
from shared import hasty_format
from shared.errors import LoupeError


def hasty_runs(inside: np.ndarray) -> list[int]:
    """The SDK's `rle_encoding`: 1-based starts of runs of ones, row by row."""
    runs: list[int] = []
    previous = -2
    for index in np.flatnonzero(inside.flatten()):
        if index > previous + 1:
            runs.extend((int(index) + 1, 0))
        runs[-1] += 1
        previous = index
    return runs


def test_a_mask_keeps_its_pixels_and_reads_back_with_its_tight_bbox() -> None:
    inside = np.zeros((10, 12), dtype=np.uint8)  # the bbox [20, 5, 32, 15]: 12 wide, 10 high
    inside[2:8, 3:9] = 1
    inside[9, 0] = 1
    rle = hasty_format.to_coco((20, 5, 32, 15), hasty_runs(inside), 40, 50, "[0]")
    image = coco_mask.decode({"size": [40, 50], "counts": str(rle.counts).encode()})
    expected = np.zeros((40, 50), dtype=np.uint8)
    expected[5:15, 20:32] = inside
    assert rle.size == (40, 50) and np.array_equal(image, expected)

    bbox, runs = hasty_format.from_coco(rle)
    assert bbox == (20, 7, 29, 15)
    x1, y1, x2, y2 = bbox
    assert runs == hasty_runs(expected[y1:y2, x1:x2])


def test_plain_counts_read_like_compressed_ones() -> None:
    image = np.zeros((4, 5), dtype=np.uint8)
    image[1:3, 2:4] = 1
    flat = image.flatten(order="F")
    counts = [len(run) for run in np.split(flat, np.flatnonzero(np.diff(flat)) + 1)]
    assert hasty_format.from_coco(Rle(size=(4, 5), counts=counts)) == ((2, 1, 4, 3), [1, 4])
    assert hasty_format.from_coco(Rle(size=(4, 5), counts=[20])) is None


@pytest.mark.parametrize(("bbox", "runs", "field"), [
    ((0, 0, 60, 10), [1, 4], "[3].bbox"),  # wider than the 50-pixel image
    ((0, 0, 5, 5), [1, 4, 9], "[3].mask"),  # not pairs
    ((0, 0, 5, 5), [20, 10], "[3].mask"),  # runs past the 25 pixels of the bbox
    ((0, 0, 5, 5), [0, 3], "[3].mask"),  # starts count from 1
])
def test_a_mask_that_does_not_fit_names_its_field(bbox: tuple[int, int, int, int], runs: list[int], field: str) -> None:
    with pytest.raises(LoupeError) as refused:
        hasty_format.to_coco(bbox, runs, 40, 50, "[3]")
    assert refused.value.code == "invalid" and refused.value.details["path"] == field
