"""Images in, model input out: decode, resize to the model's square input, scale to [0, 1], in worker
threads (Pillow releases the GIL while it decodes and resizes), off the event loop."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, UnidentifiedImageError

from shared.errors import invalid

# Decoding more pixels than this is refused: a model looks at a few hundred pixels a side.
MAX_PIXELS = 100_000_000


class Unreadable(Exception):
    """The bytes are not an image Pillow can decode."""


def to_input(data: bytes, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Image bytes -> (3×size×size float32 in [0, 1], the original (height, width)). The resize is
    aspect-changing and bilinear with antialiasing, as training's (torch's antialiased bilinear matches
    Pillow's)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise Unreadable(f"the image has {opened.width}×{opened.height} pixels, more than {MAX_PIXELS}")
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise Unreadable(f"not an image Loupe can decode ({error})") from None
    original = (image.height, image.width)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) / 255.0  # size×size×3
    return pixels.transpose(2, 0, 1).copy(), original


class Decoder:
    """A thread pool for `to_input`, shared by every request and job of the process."""

    def __init__(self, threads: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="decode")

    async def one(self, data: bytes, size: int, path: str = "$.image") -> tuple[np.ndarray, tuple[int, int]]:
        """For a single image a request names at `path`: unreadable bytes are the caller's mistake (422)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, to_input, data, size)
        except Unreadable as error:
            raise invalid(str(error), path=path) from None

    async def many(self, images: Sequence[bytes | None], size: int) -> list[tuple[np.ndarray, tuple[int, int]] | None]:
        """None where the bytes are missing or unreadable; the job counts those as failed."""
        loop = asyncio.get_running_loop()

        async def decode(data: bytes | None) -> tuple[np.ndarray, tuple[int, int]] | None:
            if data is None:
                return None
            try:
                return await loop.run_in_executor(self.pool, to_input, data, size)
            except Unreadable:
                return None

        return list(await asyncio.gather(*(decode(data) for data in images)))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
