"""Each dialect answers a failure in its product's shape; catching it is the part they share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from shared.errors import HTTP_STATUS, ErrorCode, LoupeError

# aiohttp's own refusals (no route, wrong method, body too large), as the error codes the dialects render.
HTTP_CODES: dict[int, ErrorCode] = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 413: "too_large"}

# The seed products answer a refused field with 400 where Loupe's native API answers 422.
STATUS: dict[str, int] = {**HTTP_STATUS, "invalid": 400}

# How a dialect answers a failure: the error, and the HTTP status aiohttp chose (None for a LoupeError,
# whose status the dialect decides, since each product's SDK reads statuses its own way).
Render = Callable[[LoupeError, int | None], web.StreamResponse]


def answering_errors(render: Render) -> Any:
    """A middleware that turns every LoupeError and every aiohttp refusal into `render`'s answer."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except LoupeError as error:
            return render(error, None)
        except web.HTTPException as refusal:
            if refusal.status < 400:
                raise
            message = f"{request.method} {request.path}: {refusal.reason.lower()}"
            return render(LoupeError(HTTP_CODES.get(refusal.status, "invalid"), message), refusal.status)

    return middleware
