"""The gateway's caches of verified keys and roles: what each event and each relayed reply makes them forget."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from proto import subjects
from proto.catalog import (ApiKeyRef, ApiKeyRevoked, MemberChanged, MemberRef, Project, ProjectAccess, ProjectDeleted,
                           ProjectRef, ProjectUpdated, UpdateProject, UpdateProjectRequest, UpdateUser,
                           UpdateUserRequest, UserUpdated, VerifyApiKey)
from proto.common import Caller, Empty, EventEnvelope
from services.gateway import auth_events
from services.gateway.auth import CALLER, CALLER_CACHE, ROLE_CACHE, ROLES_GENERATION, CallerCache, RoleCache
from shared.bus import encoder

ORG = "org"
ADA = Caller(org_id=ORG, key_id="ada-laptop", user_id="ada")
ADA_PHONE = Caller(org_id=ORG, key_id="ada-phone", user_id="ada")
BOB = Caller(org_id=ORG, key_id="bob-laptop", user_id="bob")
CALLERS = {caller.key_id: caller for caller in (ADA, ADA_PHONE, BOB)}


class Catalog:
    """Answers as the catalog would; counts the questions, and can change something while answering."""

    def __init__(self, role: str = "labeler") -> None:
        self.role = role
        self.asked = 0
        self.while_answering: Callable[[], None] = lambda: None

    async def request(self, command: subjects.Command, payload: Any, *, caller: Caller | None = None) -> Any:
        self.asked += 1
        self.while_answering()
        if isinstance(payload, VerifyApiKey):
            return CALLERS[payload.key]
        return ProjectAccess(project_id=payload.project_id, role=self.role)


async def cached(callers: CallerCache, roles: RoleCache, catalog: Catalog) -> None:
    """Every caller verified, with a role on projects p1 and p2."""
    for key_id, caller in CALLERS.items():
        await callers.resolve(catalog, key_id)
        for project in ("p1", "p2"):
            await roles.authorize(catalog, caller, project, "viewer")


def caller_kept(callers: CallerCache, key_id: str) -> bool:
    return callers.get(hashlib.sha256(key_id.encode()).digest()) is not None


def roles_kept(roles: RoleCache) -> set[tuple[str, str]]:
    return {(key_id, project) for key_id in CALLERS for project in ("p1", "p2")
            if roles.get((key_id, project)) is not None}


ALL_ROLES = {(key_id, project) for key_id in CALLERS for project in ("p1", "p2")}


async def test_a_verified_key_and_a_role_are_asked_for_once() -> None:
    callers, roles, catalog = CallerCache(60), RoleCache(60), Catalog()
    await cached(callers, roles, catalog)
    asked = catalog.asked
    await cached(callers, roles, catalog)
    assert catalog.asked == asked == 9


async def test_forgetting_a_key_drops_its_caller_and_its_roles_only() -> None:
    callers, roles, catalog = CallerCache(60), RoleCache(60), Catalog()
    await cached(callers, roles, catalog)
    auth_events.Caches(callers, roles).forget_key("ada-phone")
    assert [caller_kept(callers, key_id) for key_id in CALLERS] == [True, False, True]
    assert roles_kept(roles) == ALL_ROLES - {("ada-phone", "p1"), ("ada-phone", "p2")}


async def test_forgetting_a_user_drops_every_key_of_theirs() -> None:
    callers, roles, catalog = CallerCache(60), RoleCache(60), Catalog()
    await cached(callers, roles, catalog)
    auth_events.Caches(callers, roles).forget_user("ada")
    assert [caller_kept(callers, key_id) for key_id in CALLERS] == [False, False, True]
    assert roles_kept(roles) == {("bob-laptop", "p1"), ("bob-laptop", "p2")}


async def test_a_member_change_drops_that_users_roles_on_that_project_only() -> None:
    callers, roles, catalog = CallerCache(60), RoleCache(60), Catalog()
    await cached(callers, roles, catalog)
    roles.forget_member("p1", "ada")
    assert roles_kept(roles) == ALL_ROLES - {("ada-laptop", "p1"), ("ada-phone", "p1")}
    roles.forget_project("p2")
    assert roles_kept(roles) == {("bob-laptop", "p1")}


async def test_an_answer_asked_for_before_a_forget_is_used_but_not_kept() -> None:
    """A check that read the membership just before it was removed must not outlive the removal's event."""
    callers, roles, catalog = CallerCache(60), RoleCache(60), Catalog()
    catalog.while_answering = lambda: roles.forget_member("p1", "ada")
    assert (await roles.authorize(catalog, ADA, "p1", "labeler")).role == "labeler"
    catalog.while_answering = lambda: callers.forget_key("ada-laptop")
    assert await callers.resolve(catalog, "ada-laptop") == ADA
    assert roles.get(("ada-laptop", "p1")) is None and not caller_kept(callers, "ada-laptop")
    catalog.while_answering = lambda: None
    await roles.authorize(catalog, ADA, "p1", "labeler")
    await callers.resolve(catalog, "ada-laptop")
    assert roles.get(("ada-laptop", "p1")) == ("labeler", "ada") and caller_kept(callers, "ada-laptop")


def envelope(event: subjects.Event, data: Any) -> bytes:
    return encoder.encode(EventEnvelope(id=str(uuid.uuid4()), type=event.subject.removeprefix(subjects.EVENT_PREFIX),
                                        time=datetime.now(UTC), project=None, data=data))


def project(public: bool) -> Project:
    now = datetime.now(UTC)
    return Project(id="p1", org_id=ORG, name="p", description="", task_type="bboxes", content_type="image",
                   public=public, metadata={}, version=2, created_at=now, updated_at=now)


def user_updated(*changed: str) -> UserUpdated:
    return UserUpdated(user_id="ada", org_id=ORG, changed=list(changed), name="Ada", is_admin=False, active=True)


async def after_event(event: subjects.Event, data: Any) -> tuple[list[bool], set[tuple[str, str]]]:
    """Which callers and roles are still cached after the event arrives."""
    callers, roles, catalog = CallerCache(60), RoleCache(60), Catalog()
    await cached(callers, roles, catalog)
    auth_events.on_event(auth_events.Caches(callers, roles), event, envelope(event, data))
    return [caller_kept(callers, key_id) for key_id in CALLERS], roles_kept(roles)


EVERY_CALLER = [True, True, True]
ADAS_GONE = ([False, False, True], {("bob-laptop", "p1"), ("bob-laptop", "p2")})
P1_GONE = {("ada-laptop", "p2"), ("ada-phone", "p2"), ("bob-laptop", "p2")}


async def test_each_event_forgets_what_it_changed() -> None:
    revoked = ApiKeyRevoked(key_id="ada-phone", user_id="ada", org_id=ORG)
    assert await after_event(subjects.APIKEY_REVOKED, revoked) == (
        [True, False, True], ALL_ROLES - {("ada-phone", "p1"), ("ada-phone", "p2")})
    assert await after_event(subjects.USER_UPDATED, user_updated("active")) == ADAS_GONE
    assert await after_event(subjects.USER_UPDATED, user_updated("name", "is_admin")) == ADAS_GONE
    assert await after_event(subjects.MEMBER_CHANGED, MemberChanged(project_id="p1", user_id="bob", role=None)) == (
        EVERY_CALLER, ALL_ROLES - {("bob-laptop", "p1")})
    assert await after_event(subjects.PROJECT_DELETED, ProjectDeleted(id="p1", org_id=ORG, name="p")) == (
        EVERY_CALLER, P1_GONE)
    assert await after_event(subjects.PROJECT_UPDATED, ProjectUpdated(project=project(False), changed=["public"])) == (
        EVERY_CALLER, P1_GONE)


async def test_events_that_change_no_access_forget_nothing() -> None:
    assert await after_event(subjects.USER_UPDATED, user_updated("name")) == (EVERY_CALLER, ALL_ROLES)
    assert await after_event(subjects.PROJECT_UPDATED, ProjectUpdated(project=project(True), changed=["name"])) == (
        EVERY_CALLER, ALL_ROLES)
    callers, roles, catalog = CallerCache(60), RoleCache(60), Catalog()
    await cached(callers, roles, catalog)
    auth_events.on_event(auth_events.Caches(callers, roles), subjects.APIKEY_REVOKED, b'{"data": {"key": 1}}')
    assert roles_kept(roles) == ALL_ROLES


def bobs_request(callers: CallerCache, roles: RoleCache) -> web.Request:
    """A request of Bob's as the gateway sees it once authenticated."""
    app = web.Application()
    app[CALLER_CACHE], app[ROLE_CACHE] = callers, roles
    request = make_mocked_request("POST", "/", app=app)
    request[CALLER], request[ROLES_GENERATION] = BOB, roles.generation
    return request


async def after_reply(command: subjects.Command, sent: Any, reply: Any) -> tuple[list[bool], set[tuple[str, str]]]:
    """Which callers and roles the gateway that relayed `command` for Bob still has cached."""
    callers, roles, catalog = CallerCache(60), RoleCache(60), Catalog()
    await cached(callers, roles, catalog)
    auth_events.after_reply(bobs_request(callers, roles), command, sent, encoder.encode(reply))
    return [caller_kept(callers, key_id) for key_id in CALLERS], roles_kept(roles)


async def test_the_relaying_gateway_forgets_on_the_reply() -> None:
    assert await after_reply(subjects.REVOKE_API_KEY, ApiKeyRef(user_id=None, id="ada-phone"), Empty()) == (
        [True, False, True], ALL_ROLES - {("ada-phone", "p1"), ("ada-phone", "p2")})
    deactivate = UpdateUserRequest(id="ada", changes=UpdateUser(active=False))
    assert await after_reply(subjects.UPDATE_USER, deactivate, Empty()) == ADAS_GONE
    rename = UpdateUserRequest(id="ada", changes=UpdateUser(name="Ada L."))
    assert await after_reply(subjects.UPDATE_USER, rename, Empty()) == (EVERY_CALLER, ALL_ROLES)
    assert await after_reply(subjects.REMOVE_MEMBER, MemberRef(project_id="p1", user_id="ada"), Empty()) == (
        EVERY_CALLER, ALL_ROLES - {("ada-laptop", "p1"), ("ada-phone", "p1")})
    assert await after_reply(subjects.DELETE_PROJECT, ProjectRef(id="p1"), Empty()) == (EVERY_CALLER, P1_GONE)
    hide = UpdateProjectRequest(id="p1", changes=UpdateProject(public=False))
    assert await after_reply(subjects.UPDATE_PROJECT, hide, project(False)) == (EVERY_CALLER, P1_GONE)


async def test_a_project_in_a_reply_teaches_the_callers_role_unless_something_was_forgotten_meanwhile() -> None:
    created = encoder.encode(msgspec.structs.replace(project(False), role="admin"))
    callers, roles = CallerCache(60), RoleCache(60)
    auth_events.after_reply(bobs_request(callers, roles), subjects.CREATE_PROJECT, None, created)
    assert roles.get(("bob-laptop", "p1")) == ("admin", "bob")
    callers, roles = CallerCache(60), RoleCache(60)
    request = bobs_request(callers, roles)
    roles.forget_project("p1")
    auth_events.after_reply(request, subjects.GET_PROJECT, ProjectRef(id="p1"), created)
    assert roles.get(("bob-laptop", "p1")) is None
