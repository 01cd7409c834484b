"""Where an image's thumbnail is: the one rule ingest (which makes thumbnails) and the catalog (which hands
out their URLs) share.

Ingest makes a thumbnail, a JPEG of at most `ingest_thumb_side` px a side, in the thumbs bucket under the
original's SHA-256, only where it pays. A JPEG of at most SMALL_SIDE px a side is already what a thumbnail
would be: it is neither made nor stored (a PUT and an encode saved per image), and the original is served
in its place. The bound is fixed rather than the setting, so that changing `ingest_thumb_side` never sends
an image stored before to a thumbnail that was never made.
"""

from __future__ import annotations

from shared import object_keys

SMALL_SIDE = 256


def original_serves(format: str | None, width: int, height: int) -> bool:
    """Whether an image of this format (ingest's name: "jpeg", …) and display size is its own thumbnail.

    An unknown format (a sample registered by hash without one) counts as a JPEG: ingest stores a thumbnail
    for a small image of another format, but serving its original instead is no harm, since all of them
    except TIFF and BMP show in a browser."""
    return format in ("jpeg", None) and max(width, height) <= SMALL_SIDE


def location(sha256: str, format: str | None, width: int, height: int) -> tuple[str, str]:
    """The bucket and key of the thumbnail of the image stored under `sha256`."""
    if original_serves(format, width, height):
        return "media", object_keys.original(sha256)
    return "thumbs", object_keys.thumbnail(sha256)
