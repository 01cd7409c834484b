"""Validate an uploaded image and make its thumbnail, refusing hostile files before they cost memory.

Pillow is the decoder: it is the maintained, libjpeg-turbo/libpng/libwebp/libtiff-backed reader for every
format Loupe accepts (JPEG, PNG, WebP, TIFF, BMP, GIF).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from collections.abc import Iterator
from typing import cast

import msgspec
from PIL import ExifTags, Image, ImageFile

from services.ingest.rejection import FileRejected
from shared import thumbnails
from shared.image_formats import MIME, sniff_format


class ImageLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 100_000_000  # width * height
    max_side: int = 20_000
    thumb_side: int = 256  # longest side of the thumbnail


DEFAULT_LIMITS = ImageLimits()


class ProcessedImage(msgspec.Struct, frozen=True, kw_only=True):
    sha256: str  # hex digest of the original bytes
    format: str  # "jpeg" | "png" | "webp" | "tiff" | "bmp" | "gif"
    mime: str
    width: int  # display size, after the EXIF orientation
    height: int
    size: int  # bytes of the original
    orientation: int  # EXIF orientation applied, 1 when absent or invalid
    # RGB JPEG, longest side <= thumb_side, display orientation; None where the original serves as its own
    # thumbnail (shared/thumbnails.py)
    thumbnail: bytes | None


class MediaError(FileRejected):
    """An image Loupe refuses: empty, too large, not an image, or not decodable."""


_PILLOW_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF", "bmp": "BMP", "gif": "GIF"}
# EXIF orientation → the transpose that brings the stored pixels to display orientation (as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = frozenset({5, 6, 7, 8})
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: no data, fixed CRC
_THUMB_QUALITY = 80
_BOMB_WARNING_RAISES = ("error", None, Image.DecompressionBombWarning, None, 0)  # as warnings.filters holds it


def process_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> ProcessedImage:
    """Check `data` is a decodable image within `limits` and make its thumbnail; raise MediaError otherwise.

    JPEGs are decoded at the reduced DCT scale nearest above the thumbnail's size, which skips most of the inverse
    DCT and colour work. The entropy decoding of every block still runs (it is most of the cost left), and that
    is what detects truncation. Pillow releases the GIL while it decodes and encodes, so worker threads scale.
    """
    if not data:
        raise MediaError("empty", "the file is empty (0 bytes); upload the image's contents")
    if len(data) > limits.max_bytes:
        raise MediaError(
            "too_large",
            f"the file is {len(data):,} bytes, over the limit of {limits.max_bytes:,}; "
            "recompress or downscale it before uploading",
        )
    fmt = sniff_format(data[:12])
    if fmt is None:
        raise MediaError(
            "unsupported_format",
            "the file is not a JPEG, PNG, WebP, TIFF, BMP or GIF image (judged by "
            "its first bytes); convert it to one of those",
        )
    if fmt == "png" and data.rfind(_PNG_END) < 0:
        # Pillow stops reading after the last pixel row, so a cut in the final chunks would pass unnoticed.
        raise MediaError(
            "corrupt", "the PNG image ends before its IEND chunk, so the file is truncated: export or download it again"
        )
    with _decoding(fmt, limits):
        img = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[fmt]])
        width, height = img.size
        _check_dimensions(width, height, limits)
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation not in _TRANSPOSE:
            orientation = 1
        if thumbnails.original_serves(fmt, width, height):
            img.load()  # decoded all the same: that is what finds a truncated file
            thumbnail = None
        else:
            thumbnail = _thumbnail(img, orientation, limits.thumb_side)
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    return ProcessedImage(
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        mime=MIME[fmt],
        width=width,
        height=height,
        size=len(data),
        orientation=orientation,
        thumbnail=thumbnail,
    )


@contextlib.contextmanager
def _decoding(fmt: str, limits: ImageLimits) -> Iterator[None]:
    """Run Pillow with its safety switches on and turn whatever it raises into a MediaError.

    The error never quotes Pillow's message: those can quote the file's own bytes (a TIFF's header, a PNG
    chunk's name), and an item's error is shown to whoever reads the run.

    Pillow's switches are process-wide globals, so they are pinned on every call rather than trusted to be as
    we left them. Its bomb guard backs up our header check where a size grows after the header (GIF frames,
    TIFF tiles); between max_pixels and twice that it only warns, so that warning is made an error. That is
    a process-wide filter rather than warnings.catch_warnings, which swaps the whole filter list and so lets
    overlapping calls on worker threads restore each other's state; it is re-installed whenever it is no
    longer first, since anything (pytest, for one) may reset the filters. Untrusted bytes can make a decoder
    raise almost any exception type, hence the broad catch; it wraps only Pillow calls and our own MediaError.
    """
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    if not warnings.filters or warnings.filters[0] != _BOMB_WARNING_RAISES:
        warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    try:
        yield
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise MediaError(
            "image_too_large",
            f"the image is over the limit of {limits.max_pixels:,} pixels; downscale or tile it before uploading",
        ) from e
    except Exception as e:
        raise MediaError(
            "corrupt",
            f"the {fmt.upper()} image cannot be decoded: the file is truncated or damaged; export or download it again",
        ) from e


def _check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise MediaError(
            "image_too_large",
            f"the image is {width}×{height} ({width * height:,} pixels); the limits "
            f"are {limits.max_pixels:,} pixels and {limits.max_side:,} per side: "
            "downscale or tile it before uploading",
        )


def _thumbnail(img: ImageFile.ImageFile, orientation: int, side: int) -> bytes:
    """The RGB JPEG thumbnail, sized in stored orientation and turned last, when it is small and cheap to turn."""
    width, height = img.size
    scale = min(1.0, side / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    img.draft("RGB", size)  # JPEG only (a no-op elsewhere): decode at 1/2, 1/4 or 1/8 scale, still >= size
    small = _eight_bit(img).resize(size, Image.Resampling.BOX, reducing_gap=2.0)
    if small.mode in ("LA", "RGBA"):
        flat = Image.new("RGB", size, "white")
        flat.paste(small.convert("RGBA"), mask=small.getchannel("A"))
        small = flat
    elif small.mode != "RGB":
        small = small.convert("RGB")
    if orientation in _TRANSPOSE:
        small = small.transpose(_TRANSPOSE[orientation])
    out = io.BytesIO()
    small.save(out, "JPEG", quality=_THUMB_QUALITY)
    return out.getvalue()


def _eight_bit(img: Image.Image) -> Image.Image:
    """`img` in L, LA, RGB or RGBA, the modes that resize and composite with their meaning intact.

    Palettes must be expanded before resampling; 16-bit and float greys are stretched over their own range,
    because a plain conversion clips everything above 255 to white (depth maps, thermal, medical images).
    """
    if img.mode in ("LA", "RGBA") or (img.mode in ("L", "RGB") and not img.has_transparency_data):
        return img
    if img.mode == "F" or img.mode.startswith("I"):
        grey = img.convert("F")
        low, high = cast(tuple[float, float], grey.getextrema())
        scale = 255.0 / (high - low) if high > low else 0.0
        return grey.point(lambda v: (v - low) * scale).convert("L")
    return img.convert("RGBA" if img.has_transparency_data else "RGB")
