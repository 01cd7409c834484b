"""Synthetic images for tests, and a small HTTP server on 127.0.0.1 that serves them and redirects."""

from __future__ import annotations

import asyncio
import io
import random
import socket
import struct
import threading
import zlib

from aiohttp import web
from PIL import Image, ImageDraw


def jpeg(seed: int, size: tuple[int, int] = (64, 48), **save: object) -> bytes:
    """A JPEG whose content (and so its SHA-256) is unique to `seed`."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.rectangle((x, y, x + size[0] // 4, y + size[1] // 4), fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, **save)
    return out.getvalue()


def png_bomb(side: int = 30_000) -> bytes:
    """A valid PNG header claiming side × side pixels, with a tiny compressed body: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    # Only the first rows are there: the header alone must be enough to refuse it.
    rows = zlib.compress(bytes(1024 * ((side + 7) // 8 + 1)), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


class MediaServer:
    """`/img/<seed>.jpg` serves `jpeg(seed)`; `/redirect?to=<url>` answers 302 to it; a POST to
    `/hooks/<name>` is kept in `hooks[name]` (webhooks)."""

    PUBLIC_NAME = "images.example.com"

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.files: dict[str, bytes] = {}  # `/files/<name>` serves these, for tests that bring their own images
        self.hooks: dict[str, list[bytes]] = {}

    def url(self, path: str, public: bool = False) -> str:
        host = self.PUBLIC_NAME if public else "127.0.0.1"
        return f"http://{host}:{self.port}{path}"

    async def _start(self) -> None:
        async def image(request: web.Request) -> web.Response:
            return web.Response(body=jpeg(int(request.match_info["seed"])), content_type="image/jpeg")

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPFound(request.query["to"])

        async def hook(request: web.Request) -> web.Response:
            self.hooks.setdefault(request.match_info["name"], []).append(await request.read())
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hooks/{name}", hook)
        app.router.add_get("/img/{seed:\\d+}.jpg", image)
        app.router.add_get("/redirect", redirect)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["name"]])

    def __enter__(self) -> MediaServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
