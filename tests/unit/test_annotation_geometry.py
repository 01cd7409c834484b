"""Shape geometry against pycocotools, the reference: RLE, areas, boxes and IoU."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from proto.annotation import (BoxShape, KeypointsShape, MaskShape, PointShape, PolygonShape, PolylineShape, Rle)
from services.annotation import geometry
from shared.errors import LoupeError

HEIGHT, WIDTH = 60, 90
TRIANGLE = PolygonShape(points=[(10.0, 10.0), (70.0, 15.0), (30.0, 50.0)])


def random_mask(seed: int) -> np.ndarray:
    mask = np.random.default_rng(seed).random((HEIGHT, WIDTH)) > 0.7
    mask[:, 0] = False  # starting with background and with foreground are both covered below
    return mask.astype(np.uint8)


def coco_string(mask: np.ndarray) -> str:
    return coco_mask.encode(np.asfortranarray(mask))["counts"].decode()


@pytest.mark.parametrize("seed", range(5))
def test_rle_counts_read_coco_strings(seed: int) -> None:
    mask = random_mask(seed)
    if seed % 2:
        mask[0, 0] = 1  # a first run of length 0
    counts = geometry.rle_counts(Rle(size=(HEIGHT, WIDTH), counts=coco_string(mask)))
    assert sum(counts) == HEIGHT * WIDTH and sum(counts[1::2]) == mask.sum()
    assert geometry.compress_rle(Rle(size=(HEIGHT, WIDTH), counts=counts)).counts == coco_string(mask)
    assert np.array_equal(geometry.rle_to_mask(Rle(size=(HEIGHT, WIDTH), counts=counts)), mask)


def test_rle_counts_refuse_malformed_strings() -> None:
    for counts in ("ab", "1\x7f", "0 "):
        with pytest.raises(ValueError):
            geometry.rle_counts(Rle(size=(1, 1), counts=counts))


def test_area_and_bbox_of_a_mask_are_pycocotools() -> None:
    mask = random_mask(7)
    rle = Rle(size=(HEIGHT, WIDTH), counts=coco_string(mask))
    coco = {"size": [HEIGHT, WIDTH], "counts": rle.counts}
    assert geometry.area(MaskShape(rle=rle), HEIGHT, WIDTH) == float(coco_mask.area(coco))
    assert geometry.bbox_xywh(MaskShape(rle=rle), HEIGHT, WIDTH) == tuple(coco_mask.toBbox(coco))


def test_polygons_rasterise_as_pycocotools() -> None:
    rle = geometry.to_rle(TRIANGLE, HEIGHT, WIDTH)
    expected = coco_mask.frPyObjects([[10, 10, 70, 15, 30, 50]], HEIGHT, WIDTH)[0]
    assert rle == {"size": [HEIGHT, WIDTH], "counts": expected["counts"].decode()}
    as_mask = MaskShape(rle=Rle(size=tuple(rle["size"]), counts=rle["counts"]))
    assert geometry.area(as_mask, HEIGHT, WIDTH) == float(coco_mask.area(expected))
    assert geometry.bbox_xywh(as_mask, HEIGHT, WIDTH) == tuple(coco_mask.toBbox(expected))
    assert geometry.area(TRIANGLE, HEIGHT, WIDTH) == pytest.approx(1150.0)  # exact, by shapely
    assert geometry.bbox_xywh(TRIANGLE, HEIGHT, WIDTH) == (10.0, 10.0, 60.0, 40.0)


def test_holes_are_cut_out() -> None:
    outer = [(0.0, 0.0), (40.0, 0.0), (40.0, 40.0), (0.0, 40.0)]
    hole = [(10.0, 10.0), (20.0, 10.0), (20.0, 20.0), (10.0, 20.0)]
    shape = PolygonShape(points=outer, holes=[hole])
    assert geometry.area(shape, HEIGHT, WIDTH) == 1500.0
    rings = coco_mask.decode(coco_mask.frPyObjects([[c for p in ring for c in p] for ring in (outer, hole)],
                                                   HEIGHT, WIDTH))
    cut = geometry.rle_to_mask(Rle(**{k: tuple(v) if k == "size" else v
                                      for k, v in geometry.to_rle(shape, HEIGHT, WIDTH).items()}))
    assert np.array_equal(cut, rings[:, :, 0] & (1 - rings[:, :, 1]))
    assert cut.sum() == rings[:, :, 0].sum() - rings[:, :, 1].sum()


@pytest.mark.parametrize("mode", ["L", "1", "RGB", "P"])
def test_png_to_rle_round_trips(mode: str) -> None:
    mask = random_mask(3)
    image = Image.fromarray(mask * 255).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    rle = geometry.png_to_rle(base64.b64encode(buffer.getvalue()).decode(), HEIGHT, WIDTH)
    assert rle.size == (HEIGHT, WIDTH) and isinstance(rle.counts, str)
    assert np.array_equal(geometry.rle_to_mask(rle), mask)
    with pytest.raises(LoupeError) as caught:
        geometry.png_to_rle(base64.b64encode(buffer.getvalue()).decode(), WIDTH, HEIGHT, path="$.png")
    assert caught.value.details["path"] == "$.png"


def test_box_iou_is_exact() -> None:
    a = BoxShape(box=(0.0, 0.0, 10.0, 10.0))
    assert geometry.iou(a, BoxShape(box=(5.0, 0.0, 15.0, 10.0)), HEIGHT, WIDTH) == pytest.approx(1 / 3)
    assert geometry.iou(a, BoxShape(box=(2.5, 2.5, 7.5, 7.5)), HEIGHT, WIDTH) == 0.25
    assert geometry.iou(a, a, HEIGHT, WIDTH) == 1.0
    assert geometry.iou(a, BoxShape(box=(10.0, 0.0, 20.0, 10.0)), HEIGHT, WIDTH) == 0.0  # touching
    assert geometry.area(a, HEIGHT, WIDTH) == 100.0 and geometry.bbox_xywh(a, HEIGHT, WIDTH) == (0, 0, 10, 10)


def test_iou_with_polygons_and_masks_is_pycocotools() -> None:
    box = BoxShape(box=(20.0, 10.0, 60.0, 40.0))
    mask = MaskShape(rle=Rle(size=(HEIGHT, WIDTH), counts=coco_string(random_mask(4))))
    for a, b in ((box, TRIANGLE), (TRIANGLE, mask), (mask, box)):
        expected = coco_mask.iou([geometry.to_rle(a, HEIGHT, WIDTH)], [geometry.to_rle(b, HEIGHT, WIDTH)], [0])[0][0]
        assert geometry.iou(a, b, HEIGHT, WIDTH) == pytest.approx(expected) and 0 < expected < 1


def test_shapes_without_area() -> None:
    point = PointShape(point=(3.0, 4.0))
    line = PolylineShape(points=[(0.0, 0.0), (10.0, 0.0)])
    keypoints = KeypointsShape(keypoints=[(1.0, 2.0, 2), (99.0, 99.0, 0), (5.0, 8.0, 1)])
    assert geometry.bbox_xywh(point, HEIGHT, WIDTH) == (3.0, 4.0, 0.0, 0.0)
    assert geometry.bbox_xywh(keypoints, HEIGHT, WIDTH) == (1.0, 2.0, 4.0, 6.0)
    assert geometry.bbox_xywh(KeypointsShape(keypoints=[(0.0, 0.0, 0)]), HEIGHT, WIDTH) is None
    assert [geometry.area(s, HEIGHT, WIDTH) for s in (point, line, keypoints)] == [0.0, 0.0, 0.0]
    assert geometry.iou(point, point, HEIGHT, WIDTH) == 1.0
    assert geometry.iou(point, PointShape(point=(3.0, 5.0)), HEIGHT, WIDTH) == 0.0
    assert geometry.iou(line, line, HEIGHT, WIDTH) == 1.0
    assert geometry.iou(keypoints, keypoints, HEIGHT, WIDTH) == 1.0
    assert geometry.iou(point, BoxShape(box=(0.0, 0.0, 10.0, 10.0)), HEIGHT, WIDTH) == 0.0
    with pytest.raises(ValueError):
        geometry.to_rle(line, HEIGHT, WIDTH)
