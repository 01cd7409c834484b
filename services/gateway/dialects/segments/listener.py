"""The Segments.ai dialect's own listener. Its SDK builds every URL with `urljoin(api_url, "/path")`,
which drops any path prefix, so the dialect must answer at the root of a host and port of its own.

It runs in the gateway process, beside the native API: one process less, and it shares the gateway's bus
connection and its key and role caches, so a revocation reaches both at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from services.gateway.dialects.segments.app import create_app
from shared.service import HTTP_PARSER_LIMITS, RUNTIME


async def segments_listener(gateway: web.Application) -> AsyncIterator[None]:
    """A cleanup context of the gateway's app: the listener starts and stops with it."""
    settings = gateway[RUNTIME].settings
    if not settings.segments_port:
        yield
        return
    runner = web.AppRunner(
        create_app(gateway),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.shutdown_grace_s,
        **HTTP_PARSER_LIMITS,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.http_host, settings.segments_port).start()
        yield
    finally:
        await runner.cleanup()
