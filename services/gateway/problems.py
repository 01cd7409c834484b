"""Errors as `application/problem+json` (RFC 9457), with a stable `code` and a request id."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from prometheus_client import Counter, Histogram

from shared import metrics
from shared.bus import encoder, nests_too_deeply, text_fault
from shared.errors import LoupeError, invalid
from shared.logs import new_request_id, request_id_var

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://loupe.dev/problems/"
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# The longest URL (path and query) and header line (name and value) the gateway takes: aiohttp's own
# defaults. The HTTP parser itself is set far above them (shared/service.py), so that a request over
# them reaches the middleware below and is answered as a problem rather than as aiohttp's plain text.
MAX_URL_BYTES = 8190
MAX_HEADER_BYTES = 8190

# aiohttp's own refusals, mapped onto our codes.
_HTTP_CODES = {
    400: "malformed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "invalid",
    409: "conflict",
    413: "too_large",
    415: "invalid",
}

T = TypeVar("T")


class BodyLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_bytes: int  # LOUPE_MAX_BODY_BYTES
    timeout_s: float  # LOUPE_REQUEST_TIMEOUT_S: how long a body may take to arrive
    # Operations whose handlers read their bodies themselves, as a stream with their own limits
    # (multipart uploads); every other body is read whole before its handler runs.
    streamed: frozenset[str] = frozenset()


BODY_LIMITS = web.AppKey("body_limits", BodyLimits)


class HttpProblem(Exception):
    """A refusal of the HTTP exchange itself, whose status no bus error code has (408, 414, 431)."""

    def __init__(self, status: int, code: str, detail: str, **details: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.details = status, code, detail, details


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem; `code` is stable, `detail` says what to fix."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str
    path: str | None = None  # where in the request the problem is, e.g. `$.name` or `query.limit`
    details: dict[str, Any] = {}


def problem_response(status: int, code: str, detail: str, details: dict[str, Any] | None = None) -> web.Response:
    details = dict(details or {})
    path = details.pop("path", None)
    problem = Problem(
        type=PROBLEM_TYPE + code,
        title=code.replace("_", " "),
        status=status,
        detail=detail,
        code=code,
        request_id=request_id_var.get() or "",
        path=path,
        details=details,
    )
    return web.Response(body=encoder.encode(problem), status=status, content_type="application/problem+json")


def from_error(exc: LoupeError) -> web.Response:
    return problem_response(exc.http_status, exc.code, exc.message, exc.details)


@web.middleware
async def request_context(request: web.Request, handler: Any) -> web.StreamResponse:
    """Request id in, request id out; every failure becomes a problem; every request is counted."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else new_request_id()
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    try:
        try:
            check_request(request)
            response = await handler(request)
        except LoupeError as exc:
            response = from_error(exc)
        except HttpProblem as exc:
            response = problem_response(exc.status, exc.code, exc.detail, exc.details)
        except RecursionError:
            # A body decoded just below the recursion limit can still exceed it when encoded for the bus.
            response = from_error(nests_too_deeply())
        except web.HTTPRequestEntityTooLarge:
            limit = request.app[BODY_LIMITS].max_bytes
            response = problem_response(
                413,
                "too_large",
                f"the body is larger than the limit of {limit} bytes (LOUPE_MAX_BODY_BYTES); send less per request",
                {"limit": limit},
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = _HTTP_CODES.get(exc.status, "invalid")
            response = problem_response(exc.status, code, _http_detail(request, exc))
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = problem_response(
                500, "internal", f"the gateway failed on this request; quote request id {request_id} when reporting it"
            )
        response.headers[REQUEST_ID_HEADER] = request_id
        operation = request.match_info.route.name or "unmatched"
        requests, seconds = _metrics_of(operation, response.status)
        requests.inc()
        seconds.observe(time.perf_counter() - started)
        return response
    finally:
        request_id_var.reset(token)


@functools.lru_cache(maxsize=1024)
def _metrics_of(operation: str, status: int) -> tuple[Counter, Histogram]:
    """The labelled metrics of one operation and status, looked up once instead of on every request."""
    return metrics.HTTP_REQUESTS.labels(operation, str(status)), metrics.HTTP_SECONDS.labels(operation)


def _http_detail(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"no endpoint at {request.path}; see /openapi.json for the API"
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path}; it takes {exc.headers.get('Allow')}"
    return exc.text or exc.reason


def check_request(request: web.Request) -> None:
    """Refuse what no handler should see: a URL or header over its limit, a header that is not UTF-8
    text, a path or query parameter that is not storable text (a NUL character reaching Postgres)."""
    if len(request.raw_path) > MAX_URL_BYTES:
        raise HttpProblem(
            414,
            "too_large",
            f"the URL is {len(request.raw_path)} bytes long, over the limit of "
            f"{MAX_URL_BYTES}; send long filters in a body (POST .../samples/search)",
            path="url",
            limit=MAX_URL_BYTES,
        )
    for raw_name, raw_value in request.raw_headers:
        name = raw_name.decode("latin-1")
        if len(raw_name) + len(raw_value) > MAX_HEADER_BYTES:
            raise HttpProblem(
                431,
                "too_large",
                f"the {name} header is over the limit of {MAX_HEADER_BYTES} bytes",
                path=f"header.{name}",
                limit=MAX_HEADER_BYTES,
            )
        if not raw_value.isascii():
            try:
                raw_value.decode()
            except UnicodeDecodeError:
                raise LoupeError("malformed", f"the {name} header is not UTF-8 text", path=f"header.{name}") from None
    for name, value in request.match_info.items():
        if fault := text_fault(value):
            raise invalid(f"the {name} in the URL holds {fault}", path=name)
    for name, value in request.query.items():
        if fault := text_fault(name):
            raise invalid(f"a query parameter's name holds {fault}", path="query[...]")
        if fault := text_fault(value):
            raise invalid(f"query parameter `{name}` holds {fault}", path=f"query.{name}")


async def within(timeout_s: float, reading: Awaitable[T]) -> T:
    """What `reading` (of the request body) gives; a client that takes longer than `timeout_s` to send
    it gets 408, rather than holding the request open for as long as it likes.

    `asyncio.timeout` rather than `wait_for`: on every request with a body, and `wait_for` runs the
    read as a task of its own (Python 3.11), a fixed cost the read does not need."""
    try:
        async with asyncio.timeout(timeout_s):
            return await reading
    except TimeoutError:
        raise HttpProblem(
            408,
            "timeout",
            f"the body did not arrive within {timeout_s:g} s "
            "(LOUPE_REQUEST_TIMEOUT_S); send all of it, as long as its Content-Length says",
            limit_s=timeout_s,
        ) from None


@web.middleware
async def read_body(request: web.Request, handler: Any) -> web.StreamResponse:
    """A body is in hand before its handler runs: one declared over the limit is refused unread (413),
    one that stops arriving ends the request (408). Streamed operations check their own."""
    limits = request.app[BODY_LIMITS]
    if request.body_exists and request.match_info.route.name not in limits.streamed:
        declared = request.content_length or 0
        if declared > limits.max_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=limits.max_bytes, actual_size=declared)
        await within(limits.timeout_s, request.read())  # aiohttp keeps it: the handler's read() gets it
    return await handler(request)
