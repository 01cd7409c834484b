"""API-key authentication: the catalog verifies a key once; the gateway trusts that for a short while."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import msgspec
from aiohttp import web

from proto import subjects
from proto.catalog import CheckAccess, Role, VerifyApiKey, role_at_least
from proto.common import Caller
from shared.bus import Bus
from shared.errors import LoupeError
from shared.service import RUNTIME

# Paths anyone may read: probes, metrics and the API description.
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")

CALLER = web.RequestKey("caller", Caller)


class CallerCache:
    """Verified keys by their hash, each trusted for `ttl_s`; unknown keys are never cached."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[bytes, tuple[float, Caller]] = {}

    async def resolve(self, bus: Bus, key: str) -> Caller:
        digest = hashlib.sha256(key.encode()).digest()
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        caller = await bus.request(subjects.VERIFY_API_KEY, VerifyApiKey(key=key))
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries[digest] = (now + self.ttl_s, caller)
        return caller


CALLER_CACHE = web.AppKey("caller_cache", CallerCache)


class RoleCache:
    """Each caller's role per project, from the catalog, trusted for `ttl_s` like verified keys: a
    role taken away stops working within that time. Refusals are never cached."""

    MAX_ENTRIES = 50_000

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, str], tuple[float, Role]] = {}

    async def authorize(self, bus: Bus, caller: Caller, project_id: str, needed: Role) -> Caller:
        """The caller with its role on the project set; 404 when it may not see the project, 403 when
        its role is too weak."""
        now = time.monotonic()
        hit = self._entries.get((caller.key_id, project_id))
        if hit is not None and hit[0] > now:
            role = hit[1]
        else:
            access = await bus.request(subjects.CHECK_ACCESS, CheckAccess(project_id=project_id, role="viewer"),
                                       caller=caller)
            role = access.role
            self.remember(caller.key_id, project_id, role)
        if not role_at_least(role, needed):
            raise LoupeError("forbidden", f"this needs the {needed} role on project {project_id}; you are {role}. "
                             "Ask a project admin for a stronger role", role=role, needed=needed)
        return msgspec.structs.replace(caller, role=role)

    def remember(self, key_id: str, project_id: str, role: Role) -> None:
        now = time.monotonic()
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries[(key_id, project_id)] = (now + self.ttl_s, role)


ROLE_CACHE = web.AppKey("role_cache", RoleCache)


def api_key_of(request: web.Request) -> str | None:
    """The key from `Authorization: Bearer|APIKey|Token <key>` or `X-API-Key` (the forms the compat
    clients send)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "apikey", "token") and value.strip():
        return value.strip()
    return request.headers.get("X-API-Key") or None


@web.middleware
async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    rt = request.app[RUNTIME]
    if not rt.ready:
        raise LoupeError("unavailable", "the gateway is starting or stopping; retry in a moment")
    key = api_key_of(request)
    if key is None:
        raise LoupeError("unauthenticated", "send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    request[CALLER] = await request.app[CALLER_CACHE].resolve(rt.nats, key)
    return await handler(request)
