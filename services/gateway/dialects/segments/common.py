"""What every Segments.ai handler shares: its error shape, the caller's organisation, and how an
`owner/name` dataset id, a username or a sample uuid names a Loupe project, user or sample.

A Segments dataset is a Loupe project; its owner is the organisation (a user's own name is accepted
too, since the SDK lists `/users/<me>/datasets`). Project names are unique in an organisation and
organisation names are unique, so the name is the mapping: nothing is kept on the side.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from proto import subjects
from proto.catalog import Me, Project, Role, User
from proto.common import Empty
from proto.samples import LocateSample, SampleRef
from services.gateway.auth import CALLER, ROLE_CACHE
from services.gateway.dialects.errors import answering_errors
from services.gateway.dialects.native import ask, project_named
from shared.bus import decode
from shared.errors import LoupeError
from shared.service import RUNTIME

# Segments' SDK picks its exception by the words of the error body; these carry the ones it looks for.
STATUS = {"malformed": 400, "invalid": 400, "unauthenticated": 401, "forbidden": 403, "not_found": 404}
PAGE = 500  # the most a native listing gives per call


def error_body(exc: LoupeError) -> tuple[int, dict[str, Any]]:
    path = exc.details.get("path")
    detail = f"{path}: {exc.message}" if path and path not in exc.message else exc.message
    if exc.code == "forbidden":
        detail = f"You do not have permission to perform this action: {detail}"
    elif exc.code == "not_found" and "not found" not in detail and "does not exist" not in detail:
        detail = f"{detail} (not found)"
    elif exc.code == "unauthenticated":
        detail = f"Invalid API key: {detail}"
    body: dict[str, Any] = {"detail": detail, "code": exc.code}
    if path:
        body["field"] = path
    return STATUS.get(exc.code, exc.http_status), body


def segments_error(exc: LoupeError, http_status: int | None) -> web.Response:
    """Errors as Segments answers them: `{"detail": ...}` (DRF's shape), with the words its SDK reads."""
    status, body = error_body(exc)
    return web.json_response(body, status=http_status or status)


segments_errors = answering_errors(segments_error)


@contextlib.contextmanager
def named(what: str) -> Iterator[None]:
    """A name already taken answers in the words the SDK reads as AlreadyExistsError."""
    try:
        yield
    except LoupeError as exc:
        if exc.code == "conflict":
            raise LoupeError("conflict", f"{what} already exists", path="name") from None
        raise


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json", charset="utf-8")


async def body_of(request: web.Request, kind: type) -> Any:
    """The JSON body as `kind` (aiohttp has already undone a `Content-Encoding: gzip`)."""
    return decode(kind, await request.read() or b"{}")


def query_int(request: web.Request, name: str, default: int, low: int = 1, high: int = 1_000_000) -> int:
    raw = request.query.get(name)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        raise LoupeError("invalid", f"{name} must be a whole number, not {raw!r}", path=f"query.{name}") from None
    if not low <= value <= high:
        raise LoupeError("invalid", f"{name} must be from {low} to {high}", path=f"query.{name}")
    return value


def page_slice(request: web.Request, items: list[Any]) -> list[Any]:
    """Segments' `page`/`per_page` over a list already in hand."""
    per_page = query_int(request, "per_page", 1000)
    page = query_int(request, "page", 1)
    return items[(page - 1) * per_page : page * per_page]


# -- who is asking --------------------------------------------------------------------------------


async def me(request: web.Request) -> Me:
    return await ask(request, subjects.GET_ME, Empty())


def user_json(user: User) -> dict[str, Any]:
    return {
        "username": user.name,
        "email": user.email,
        "created_at": iso(user.created_at),
        "is_organization": False,
    }


def org_json(caller: Me) -> dict[str, Any]:
    return {"username": caller.org_name, "created_at": iso(caller.org_created_at), "is_organization": True}


async def users(request: web.Request) -> list[User]:
    return (await ask(request, subjects.LIST_USERS, Empty())).items


async def user_named(request: web.Request, username: str, path: str = "user") -> User:
    """A user of the organisation by name (case-insensitive; it must be unique), email or id."""
    wanted = username.strip().lower()
    everyone = await users(request)
    for field in ("id", "email"):
        found = [user for user in everyone if (getattr(user, field) or "").lower() == wanted]
        if found:
            return found[0]
    named = [user for user in everyone if user.name.lower() == wanted]
    if len(named) > 1:
        raise LoupeError(
            "invalid", f"{len(named)} users are named {username!r}; name the one you mean by email", path=path
        )
    if not named:
        raise LoupeError("not_found", f"user {username!r} does not exist", path=path)
    return named[0]


# -- datasets (projects) --------------------------------------------------------------------------


def check_owner(caller: Me, owner: str) -> None:
    names = {caller.org_name.lower()} | ({caller.user.name.lower()} if caller.user else set())
    if owner.lower() not in names:
        raise LoupeError(
            "not_found",
            f"owner {owner!r} does not exist: datasets here belong to the organisation {caller.org_name!r}",
            path="owner",
        )


async def dataset(request: web.Request, role: Role = "viewer") -> tuple[Me, Project]:
    """The project that `{owner}/{name}` of the path names, once the caller holds `role` on it."""
    owner, name = request.match_info["owner"], request.match_info["name"]
    caller = await me(request)
    check_owner(caller, owner)
    project = await project_named(request, name)
    if project is not None:
        await authorize(request, project.id, role)
        return caller, project
    raise LoupeError("not_found", f"dataset {owner}/{name} does not exist", path="dataset")


async def authorize(request: web.Request, project_id: str, role: Role) -> None:
    """The caller holds `role` on the project (403), or may not see it (404); from the gateway's cache."""
    cache = request.config_dict[ROLE_CACHE]
    await cache.authorize(request.config_dict[RUNTIME].nats, request[CALLER], project_id, role)


async def locate_sample(request: web.Request, sample_id: str, role: Role = "viewer") -> SampleRef:
    """The project of a sample named by its uuid alone, once the caller holds `role` on it."""
    ref = await ask(request, subjects.LOCATE_SAMPLE, LocateSample(sample_id=sample_id))
    await authorize(request, ref.project_id, role)
    return ref


def segments_settings(project: Project) -> dict[str, Any]:
    """What Loupe does not model of a Segments dataset (category, readme, the editor's switches), kept
    in the project's free `metadata` under `segments`."""
    kept = project.metadata.get("segments")
    return kept if isinstance(kept, dict) else {}
