"""Revocations take effect at once: the gateway forgets cached keys and roles as soon as the catalog
announces that they changed, instead of trusting them for `LOUPE_AUTH_CACHE_S`.

Every replica must hear every such event, so this is a plain core NATS subscription: no queue group,
no durable consumer (messages published to JetStream reach core subscribers too). The gateway that
relayed a revoking command also forgets on its reply, so its very next request is refused even before
the event arrives. An event missed while NATS reconnects is covered by the caches' time limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import msgspec
from aiohttp import web
from nats.aio.msg import Msg

from proto import subjects
from proto.catalog import (
    MemberRef,
    ProjectUpdated,
    Role,
    SetMemberRequest,
    UpdateProjectRequest,
    UpdateUserRequest,
    UserUpdated,
)
from proto.subjects import Command, Event
from services.gateway.auth import CALLER, CALLER_CACHE, ROLE_CACHE, ROLES_GENERATION, CallerCache, RoleCache
from shared.bus import decoder
from shared.service import RUNTIME, RawEnvelope, Runtime, StateKey

log = logging.getLogger(__name__)


class Caches(NamedTuple):
    callers: CallerCache
    roles: RoleCache

    def forget_key(self, key_id: str) -> None:
        self.callers.forget_key(key_id)
        self.roles.forget_key(key_id)

    def forget_user(self, user_id: str) -> None:
        """Every key of the user: their admin flag, which keys carry, or their being active changed."""
        self.callers.forget_user(user_id)
        self.roles.forget_user(user_id)


# The app's caches, for the start-up hook that subscribes to the catalog's events.
CACHES = StateKey("auth caches", Caches)


def caches_of(app: web.Application | Mapping[Any, Any]) -> Caches:
    """The caches of an app, or of the app chain a request runs in (`request.config_dict`), which is where a
    dialect's sub-application finds them."""
    return Caches(app[CALLER_CACHE], app[ROLE_CACHE])


# -- events: every replica forgets --------------------------------------------------------------------------

# A user's name changing changes nothing a key may do.
CREDENTIAL_FIELDS = frozenset({"is_admin", "active"})


def user_updated(caches: Caches, user: UserUpdated) -> None:
    if CREDENTIAL_FIELDS.intersection(user.changed):
        caches.forget_user(user.user_id)


def project_updated(caches: Caches, update: ProjectUpdated) -> None:
    # A project made private takes the viewer role from everyone who had it only because it was public.
    if "public" in update.changed:
        caches.roles.forget_project(update.project.id)


ON_EVENT: dict[Event, Callable[[Caches, Any], None]] = {
    subjects.APIKEY_REVOKED: lambda caches, key: caches.forget_key(key.key_id),
    subjects.USER_UPDATED: user_updated,
    subjects.MEMBER_CHANGED: lambda caches, member: caches.roles.forget_member(member.project_id, member.user_id),
    subjects.PROJECT_UPDATED: project_updated,
    subjects.PROJECT_DELETED: lambda caches, project: caches.roles.forget_project(project.id),
}


def on_event(caches: Caches, event: Event, body: bytes) -> None:
    try:
        data = decoder(event.data).decode(decoder(RawEnvelope).decode(body).data)
    except msgspec.DecodeError as exc:
        log.warning("ignoring a malformed %s event: %s", event.subject, exc)
        return
    ON_EVENT[event](caches, data)


async def share_caches(app: web.Application) -> None:
    """An aiohttp start-up hook. The bus connects only after the HTTP server has started, so the hook that
    subscribes (`follow_events`) runs later, and finds the caches in the runtime."""
    app[RUNTIME].state[CACHES] = caches_of(app)


def receiver(caches: Caches, event: Event) -> Callable[[Msg], Any]:
    async def receive(msg: Msg) -> None:
        on_event(caches, event, msg.data)

    return receive


async def follow_events(rt: Runtime) -> None:
    """A service start-up hook, so the gateway subscribes before it is ready. The subscriptions end when
    the bus drains at shutdown."""
    caches = rt.state[CACHES]
    for event in ON_EVENT:
        await rt.nats.nc.subscribe(event.subject, cb=receiver(caches, event))
    await rt.nats.nc.flush()  # a round trip: the server has every subscription before we are ready


# -- replies: the relaying gateway forgets before the event arrives -----------------------------------


class ProjectRole(msgspec.Struct):
    """The two fields of a Project reply the role cache learns from; the rest is skipped unparsed."""

    id: str
    role: Role | None = None


def learn_role(caches: Caches, request: web.Request, sent: Any, reply: bytes) -> None:
    """A project in a reply carries the caller's role on it: the next call on it needs no check."""
    seen = decoder(ProjectRole).decode(reply)
    if seen.role is not None:
        caches.roles.remember(request[CALLER], seen.id, seen.role, request[ROLES_GENERATION])


def project_updated_reply(caches: Caches, request: web.Request, sent: UpdateProjectRequest, reply: bytes) -> None:
    if sent.changes.public is not None:
        caches.roles.forget_project(sent.id)
    learn_role(caches, request, sent, reply)


def user_updated_reply(caches: Caches, request: web.Request, sent: UpdateUserRequest, reply: bytes) -> None:
    if sent.changes.is_admin is not None or sent.changes.active is not None:
        caches.forget_user(sent.id)


def member_changed_reply(
    caches: Caches, request: web.Request, sent: SetMemberRequest | MemberRef, reply: bytes
) -> None:
    caches.roles.forget_member(sent.project_id, sent.user_id)


# By command, what its successful reply makes the relaying gateway learn or forget, given the request sent.
ON_REPLY: dict[str, Callable[[Caches, web.Request, Any, bytes], None]] = {
    subjects.CREATE_PROJECT.subject: learn_role,
    subjects.GET_PROJECT.subject: learn_role,
    subjects.UPDATE_PROJECT.subject: project_updated_reply,
    subjects.DELETE_PROJECT.subject: lambda caches, request, sent, reply: caches.roles.forget_project(sent.id),
    subjects.REVOKE_API_KEY.subject: lambda caches, request, sent, reply: caches.forget_key(sent.id),
    subjects.UPDATE_USER.subject: user_updated_reply,
    subjects.SET_MEMBER.subject: member_changed_reply,
    subjects.REMOVE_MEMBER.subject: member_changed_reply,
}


def after_reply(request: web.Request, command: Command, sent: msgspec.Struct, reply: bytes) -> None:
    react = ON_REPLY.get(command.subject)
    if react is not None:
        react(caches_of(request.config_dict), request, sent, reply)
