"""Geometry of annotation shapes (proto/annotation.py): COCO RLE masks, bounding boxes, areas and IoU,
for validation, exports, review and search.

Coordinates are those of proto/annotation.py: image pixels, origin at the top-left corner, a W × H
image spans [0, W] × [0, H]. Masks are COCO RLE, made and read by pycocotools (the reference
implementation, so exports match COCO's tools); polygon areas are shapely's exact ones. Box paths stay
in plain Python, without numpy or pycocotools: bulk writes aim at 20,000 objects a second.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import overload

import numpy as np
import shapely
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as coco_mask

from proto.annotation import BoxShape, KeypointsShape, MaskShape, PointShape, PolygonShape, PolylineShape, Rle, Shape
from shared.errors import invalid

XYWH = tuple[float, float, float, float]
AREA_SHAPES = (BoxShape, PolygonShape, MaskShape)  # the shapes that cover pixels
AreaShape = BoxShape | PolygonShape | MaskShape


# -- RLE --------------------------------------------------------------------------------------------


def rle_counts(rle: Rle) -> list[int]:
    """The plain run lengths of `rle`. A compressed string is read here, not by pycocotools: it does
    not expose the runs, and its decoder does not check that they add up to the image (short runs
    leave pixels undefined), which validation must. ValueError if the string is malformed.

    COCO's string holds each count in 5-bit groups, least significant first, as characters from '0'
    (48); bit 0x20 of a group says another group follows, bit 0x10 of the last one is the sign; from
    the fourth count on, each is stored as its difference with the count two before it."""
    if isinstance(rle.counts, list):
        return rle.counts
    counts: list[int] = []
    value = shift = 0
    for char in rle.counts:
        group = ord(char) - 48
        if not 0 <= group < 64:
            raise ValueError(f"{char!r} is not a character of COCO's compressed RLE")
        value |= (group & 0x1F) << shift
        shift += 5
        if group & 0x20:
            continue
        if group & 0x10:
            value -= 1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
        value = shift = 0
    if shift:
        raise ValueError("the string ends in the middle of a count")
    return counts


def compress_rle(rle: Rle) -> Rle:
    """`rle` with COCO's compressed string as counts; one that has it already is returned as is."""
    if isinstance(rle.counts, str):
        return rle
    height, width = rle.size
    coco = coco_mask.frPyObjects({"size": [height, width], "counts": rle.counts}, height, width)
    return Rle(size=rle.size, counts=coco["counts"].decode("ascii"))


def rle_to_mask(rle: Rle) -> np.ndarray:
    """The (height, width) uint8 array of `rle`, 1 inside the mask."""
    return coco_mask.decode(_coco(rle))


def mask_to_rle(mask: np.ndarray) -> Rle:
    """The compressed RLE of a (height, width) array whose non-zero pixels are the mask."""
    coco = coco_mask.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return Rle(size=tuple(coco["size"]), counts=coco["counts"].decode("ascii"))


def png_to_rle(png_base64: str, height: int, width: int, *, path: str = "$", what: str = "the mask") -> Rle:
    """The compressed RLE of a base64 PNG of the image's size whose non-zero pixels are the mask (any
    non-zero channel for colour PNGs, the palette index for palette ones). `invalid` at `path` if it is
    not such a PNG; its message starts with `what`, the object it is the mask of."""
    try:
        image = Image.open(io.BytesIO(base64.b64decode(png_base64, validate=True)))
    except (binascii.Error, ValueError, UnidentifiedImageError) as error:
        raise invalid(f"{what}: `png` is not a base64-encoded PNG ({error})", path=path) from None
    if image.format != "PNG":
        raise invalid(f"{what}: `png` is a {image.format} image; send a PNG", path=path)
    if image.size != (width, height):
        raise invalid(
            f"{what}: the mask's PNG is {image.width}×{image.height} pixels but the image is "
            f"{width}×{height}; send a mask of the image's size",
            path=path,
        )
    try:
        pixels = np.asarray(image)
    except OSError as error:
        raise invalid(f"{what}: the mask's PNG cannot be read ({error})", path=path) from None
    return mask_to_rle(pixels.any(axis=2) if pixels.ndim == 3 else pixels)


def to_rle(shape: Shape, height: int, width: int) -> dict:
    """COCO's compressed RLE dict `{"size": [h, w], "counts": str}` of a box, polygon (holes removed)
    or mask, as pycocotools rasterises them. ValueError for shapes that cover no pixels."""
    match shape:
        case BoxShape(box=(x1, y1, x2, y2)):
            coco = coco_mask.frPyObjects(np.array([[x1, y1, x2 - x1, y2 - y1]], dtype=np.float64), height, width)[0]
        case PolygonShape(points=points, holes=[]):
            coco = coco_mask.frPyObjects([_flat(points)], height, width)[0]
        case PolygonShape(points=points, holes=holes):
            rings = coco_mask.decode(coco_mask.frPyObjects([_flat(ring) for ring in (points, *holes)], height, width))
            coco = coco_mask.encode(np.asfortranarray(rings[:, :, 0] & ~rings[:, :, 1:].any(axis=2)))
        case MaskShape(rle=Rle() as rle):
            return _coco(rle)
        case MaskShape(png=str(png)):
            return _coco(png_to_rle(png, height, width))
        case _:
            raise ValueError(f"a {type(shape).__name__} covers no pixels: it has no mask")
    return {"size": list(coco["size"]), "counts": coco["counts"].decode("ascii")}


def _coco(rle: Rle) -> dict:
    """`rle` as the dict pycocotools takes."""
    return {"size": list(rle.size), "counts": compress_rle(rle).counts}


def _flat(points: list[tuple[float, float]]) -> list[float]:
    return [c for point in points for c in point]


# -- measures ---------------------------------------------------------------------------------------


@overload
def bbox_xywh(shape: AreaShape, height: int, width: int) -> XYWH: ...
@overload
def bbox_xywh(shape: Shape, height: int, width: int) -> XYWH | None: ...
def bbox_xywh(shape: Shape, height: int, width: int) -> XYWH | None:
    """COCO's bounding box (x, y, width, height) of a shape: the extent of its points (for keypoints,
    of the labelled ones: None when there are none); a point is a box of size zero; a mask's box is
    pycocotools'."""
    match shape:
        case BoxShape(box=(x1, y1, x2, y2)):
            return (x1, y1, x2 - x1, y2 - y1)
        case PointShape(point=(x, y)):
            return (x, y, 0.0, 0.0)
        case PolygonShape(points=points) | PolylineShape(points=points):
            return _extent(points)
        case KeypointsShape(keypoints=keypoints):
            labelled = [(x, y) for x, y, visibility in keypoints if visibility > 0]
            return _extent(labelled) if labelled else None
        case MaskShape():
            x, y, w, h = coco_mask.toBbox(to_rle(shape, height, width))
            return (float(x), float(y), float(w), float(h))
    raise TypeError(f"not a shape: {shape!r}")


def _extent(points: list) -> XYWH:
    xs = [point[0] for point in points]
    ys = [point[1] for point in points]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def area(shape: Shape, height: int, width: int) -> float:
    """Area in square pixels: exact for boxes and polygons (holes removed), pixel count for masks, 0
    for points, polylines and keypoints (COCO keypoint exports use the box's area instead)."""
    match shape:
        case BoxShape(box=(x1, y1, x2, y2)):
            return (x2 - x1) * (y2 - y1)
        case PolygonShape(points=points, holes=holes):
            return shapely.Polygon(points, holes).area
        case MaskShape():
            return float(coco_mask.area(to_rle(shape, height, width)))
    return 0.0


def iou(a: Shape, b: Shape, height: int, width: int) -> float:
    """Intersection over union of two shapes: exact for two boxes; on pycocotools' masks when either is a
    polygon or mask. Points, polylines and keypoints cover no pixels: two of the same type are compared
    by their boxes (for keypoints a stand-in for OKS, which needs per-keypoint sigmas the schema does
    not have; two equal points or lines count as 1); anything else is 0."""
    if isinstance(a, BoxShape) and isinstance(b, BoxShape):
        return _box_iou(a.box, b.box)
    if isinstance(a, AREA_SHAPES) and isinstance(b, AREA_SHAPES):
        return float(coco_mask.iou([to_rle(a, height, width)], [to_rle(b, height, width)], [0])[0][0])
    if type(a) is not type(b):
        return 0.0
    box_a, box_b = bbox_xywh(a, height, width), bbox_xywh(b, height, width)
    if box_a is None or box_b is None:
        return 0.0
    return _box_iou(_xyxy(box_a), _xyxy(box_b))


def _xyxy(box: XYWH) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return (x, y, x + w, y + h)


def _box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    inter = inter_w * inter_h if inter_w > 0 and inter_h > 0 else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if union <= 0:  # two boxes of no area: the same one or not
        return 1.0 if a == b else 0.0
    return inter / union
