"""Write a JSON document whose one big array is streamed to the file item by item, so that the array
(all samples, or all annotations of a release) never has to be held in memory.

The document is given whole, with the value `STREAMED_ARRAY` where the array goes (at any depth); the
items are appended while the file is open:

    with streamed_json(path, {"info": info, "images": STREAMED_ARRAY}) as images:
        for image in images_of_release():
            images.append(image)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import msgspec

# A string no real document holds: NUL characters do not occur in names, ids or labels.
STREAMED_ARRAY = "\x00loupe-streamed-array\x00"
_FLUSH_BYTES = 1 << 20


class StreamedArray:
    """The array being written: `append` encodes one item; bytes go out a megabyte at a time."""

    def __init__(self, file: BinaryIO, encoder: msgspec.json.Encoder) -> None:
        self._file = file
        self._encoder = encoder
        self._buffer = bytearray(b"[")
        self.count = 0

    def append(self, item: object) -> None:
        if self.count:
            self._buffer += b","
        self._encoder.encode_into(item, self._buffer, -1)
        self.count += 1
        if len(self._buffer) >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        self._file.write(self._buffer)
        self._buffer.clear()

    def close(self) -> None:
        self._buffer += b"]"
        self.flush()


@contextmanager
def streamed_json(path: Path, document: object, encoder: msgspec.json.Encoder | None = None) -> Iterator[StreamedArray]:
    """Write `document` to `path` with its `STREAMED_ARRAY` value replaced by the items appended to
    the yielded array. When the block raises, the file is left incomplete: the caller discards it."""
    encoder = encoder or msgspec.json.Encoder()
    head, tail = _split_at_placeholder(encoder.encode(document), encoder.encode(STREAMED_ARRAY))
    with path.open("wb") as file:
        file.write(head)
        array = StreamedArray(file, encoder)
        yield array
        array.close()
        file.write(tail)


def _split_at_placeholder(encoded: bytes, placeholder: bytes) -> tuple[bytes, bytes]:
    if encoded.count(placeholder) != 1:
        raise ValueError("the document must hold STREAMED_ARRAY exactly once")
    head, tail = encoded.split(placeholder)
    return head, tail
