"""Errors as `application/problem+json` (RFC 9457), with a stable `code` and a request id."""

from __future__ import annotations

import functools
import logging
import re
import time
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import Counter, Histogram

from shared import metrics
from shared.bus import encoder
from shared.errors import LoupeError
from shared.logs import new_request_id, request_id_var

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://loupe.dev/problems/"
REQUEST_ID_HEADER = "X-Request-Id"
BODY_LIMIT = web.AppKey("body_limit", int)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# aiohttp's own refusals, mapped onto our codes.
_HTTP_CODES = {400: "malformed", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "invalid",
               409: "conflict", 413: "too_large", 415: "invalid"}


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
    problem = Problem(type=PROBLEM_TYPE + code, title=code.replace("_", " "), status=status, detail=detail,
                      code=code, request_id=request_id_var.get() or "", path=path, details=details)
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
            response = await handler(request)
        except LoupeError as exc:
            response = from_error(exc)
        except web.HTTPRequestEntityTooLarge:
            limit = request.app[BODY_LIMIT]
            response = problem_response(413, "too_large", f"the body is larger than the limit of {limit} bytes "
                                        "(LOUPE_MAX_BODY_BYTES); send less per request", {"limit": limit})
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = _HTTP_CODES.get(exc.status, "invalid")
            response = problem_response(exc.status, code, _http_detail(request, exc))
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = problem_response(500, "internal", f"the gateway failed on this request; quote request id "
                                        f"{request_id} when reporting it")
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
        return f"{request.method} is not allowed on {request.path}"
    return exc.text or exc.reason
