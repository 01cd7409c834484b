"""The gateway declares the files it uploads for its callers by SHA-256 and type, told by their first bytes."""

from __future__ import annotations

import hashlib

from services.gateway.uploads import declared
from tests.media_server import jpeg


def test_an_image_is_declared_by_its_hash_and_the_type_its_bytes_name() -> None:
    data = jpeg(7)
    file = declared("photo.png", data)  # the name's extension is not trusted
    assert (file.name, file.sha256, file.content_type) == ("photo.png", hashlib.sha256(data).hexdigest(), "image/jpeg")


def test_a_file_that_is_no_image_is_left_to_staging_and_validation() -> None:
    file = declared("notes.jpg", b"just text, not an image")
    assert (file.name, file.sha256, file.content_type) == ("notes.jpg", None, None)
