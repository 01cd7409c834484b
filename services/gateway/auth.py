"""API-key authentication: the catalog verifies a key and a role once; the gateway trusts that until the
catalog announces a change (auth_events), and for `LOUPE_AUTH_CACHE_S` at most, in case it missed one."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
from aiohttp import web

from proto import subjects
from proto.catalog import CheckAccess, Role, VerifyApiKey, role_at_least
from proto.common import Caller
from shared.bus import Bus
from shared.errors import LoupeError
from shared.service import RUNTIME

# Paths anyone may read: probes, metrics, the API description and the web console's static files (the
# console then signs in with an API key like any client).
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/console/")
PUBLIC_PATHS = ("/",)

CALLER = web.RequestKey("caller", Caller)
# The role cache's generation when the request came in: a role learned from its reply is kept only if
# nothing was forgotten meanwhile.
ROLES_GENERATION = web.RequestKey("roles_generation", int)


K = TypeVar("K")
V = TypeVar("V")


class Trusted(Generic[K, V]):
    """Answers of the catalog, each trusted for `ttl_s` or until an event says it changed (auth_events).

    An answer asked for before something was forgotten may predate that change, so it is used once but
    not kept: `put` takes the `generation` read before asking and drops the answer if it moved since.
    Forgetting scans every entry: it happens on rare admin actions, and there are at most `max_entries`.
    """

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def put(self, key: K, value: V, generation: int) -> None:
        if generation != self.generation:
            return
        now = time.monotonic()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries[key] = (now + self.ttl_s, value)

    def forget(self, gone: Callable[[K, V], bool]) -> None:
        self._entries = {k: v for k, v in self._entries.items() if not gone(k, v[1])}
        self.generation += 1


class CallerCache(Trusted[bytes, Caller]):
    """Verified keys by their hash; unknown keys are never cached."""

    def __init__(self, ttl_s: float) -> None:
        super().__init__(ttl_s, max_entries=10_000)

    async def resolve(self, bus: Bus, key: str) -> Caller:
        digest = hashlib.sha256(key.encode()).digest()
        caller = self.get(digest)
        if caller is None:
            generation = self.generation
            caller = await bus.request(subjects.VERIFY_API_KEY, VerifyApiKey(key=key))
            self.put(digest, caller, generation)
        return caller

    def forget_key(self, key_id: str) -> None:
        self.forget(lambda digest, caller: caller.key_id == key_id)

    def forget_user(self, user_id: str) -> None:
        self.forget(lambda digest, caller: caller.user_id == user_id)


CALLER_CACHE = web.AppKey("caller_cache", CallerCache)


class RoleCache(Trusted[tuple[str, str], tuple[Role, str]]):
    """Each key's role per project, from the catalog: (key id, project id) → (role, user id of the key).
    Refusals are never cached."""

    def __init__(self, ttl_s: float) -> None:
        super().__init__(ttl_s, max_entries=50_000)

    async def authorize(self, bus: Bus, caller: Caller, project_id: str, needed: Role) -> Caller:
        """The caller with its role on the project set; 404 when it may not see the project, 403 when
        its role is too weak."""
        hit = self.get((caller.key_id, project_id))
        if hit is not None:
            role = hit[0]
        else:
            generation = self.generation
            access = await bus.request(
                subjects.CHECK_ACCESS, CheckAccess(project_id=project_id, role="viewer"), caller=caller
            )
            role = access.role
            self.remember(caller, project_id, role, generation)
        if not role_at_least(role, needed):
            raise LoupeError(
                "forbidden",
                f"this needs the {needed} role on project {project_id}; you are {role}. "
                "Ask a project admin for a stronger role",
                role=role,
                needed=needed,
            )
        return msgspec.structs.replace(caller, role=role)

    def remember(self, caller: Caller, project_id: str, role: Role, generation: int) -> None:
        self.put((caller.key_id, project_id), (role, caller.user_id), generation)

    def forget_key(self, key_id: str) -> None:
        self.forget(lambda key, entry: key[0] == key_id)

    def forget_user(self, user_id: str) -> None:
        self.forget(lambda key, entry: entry[1] == user_id)

    def forget_member(self, project_id: str, user_id: str) -> None:
        self.forget(lambda key, entry: key[1] == project_id and entry[1] == user_id)

    def forget_project(self, project_id: str) -> None:
        self.forget(lambda key, entry: key[1] == project_id)


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
    if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    rt = request.app[RUNTIME]
    if not rt.ready:
        raise LoupeError("unavailable", "the gateway is starting or stopping; retry in a moment")
    key = api_key_of(request)
    if key is None:
        raise LoupeError("unauthenticated", "send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    request[ROLES_GENERATION] = request.app[ROLE_CACHE].generation
    request[CALLER] = await request.app[CALLER_CACHE].resolve(rt.nats, key)
    return await handler(request)
