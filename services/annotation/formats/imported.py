"""What the import parsers yield: one record per image of the imported file, with classes, tags and
attributes by NAME, so that the import can resolve them in the target project (creating classes
when asked)."""

from __future__ import annotations

from typing import Any

import msgspec

from proto.annotation import LabelStatus, Shape


class ImportedObject(msgspec.Struct, kw_only=True):
    class_name: str
    shape: Shape
    z_index: int = 0
    confidence: float | None = None
    external_id: str | None = None
    # By attribute name; values are texts (selections by their value text), numbers, booleans or
    # lists of texts.
    attributes: dict[str, Any] = {}


class ImportedImage(msgspec.Struct, kw_only=True):
    file_name: str  # the image's path below the images root, as the format names it
    width: int | None  # None: the format does not say; the image itself tells
    height: int | None
    objects: list[ImportedObject]
    tags: list[str] = []  # tag names
    status: LabelStatus | None = None  # for formats that carry one (native)
    # The rest only the native format carries; importing it is lossless.
    content_hash: str | None = None  # the original in Loupe's media bucket
    external_id: str | None = None
    metadata: dict[str, Any] = {}
    score: float | None = None
    attributes: dict[str, Any] = {}  # image attributes, by name like the objects'
