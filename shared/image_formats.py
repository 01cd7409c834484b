"""The image formats Loupe accepts, told by their first bytes: ingest validates with it, and the gateway declares
the files it uploads for its callers with it. File names and declared types are never trusted."""

from __future__ import annotations

from proto.ingest import ImageType

# Magic bytes → our format name. WebP needs bytes 8..12 too, so it is checked apart.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
MIME: dict[str, ImageType] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
    "gif": "image/gif",
}


def sniff_format(head: bytes) -> str | None:
    """The format named by the file's first bytes (12 suffice)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)
