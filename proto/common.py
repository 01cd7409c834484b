"""Messages every service shares: callers, typed errors, the event envelope, dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

# An id the services parse as a UUID, in its canonical form (any case); anything else names nothing.
Uuid = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        extra_json_schema={"format": "uuid"},
    ),
]

ErrorCode = Literal[
    "malformed",  # the body is not JSON at all
    "invalid",  # the request is malformed or breaks a rule; details say which field
    "unauthenticated",  # no or unknown API key
    "forbidden",  # known caller, not allowed
    "not_found",
    "conflict",  # clashes with current state (duplicate name, stale version)
    "too_large",
    "unavailable",  # a dependency is down or did not answer in time
    "internal",
]


class ErrorReply(msgspec.Struct, frozen=True, kw_only=True):
    """The reply of a command that failed; `code` decides the HTTP status at the gateway."""

    code: ErrorCode
    message: str
    details: dict[str, Any] = {}


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """Who sent a command; the gateway sets it from the verified API key."""

    org_id: str
    key_id: str
    user_id: str = ""  # the user the key belongs to; "" for keys that act for the organisation itself
    is_admin: bool = False  # an organisation admin: every role on every project of the organisation
    role: str | None = None  # the caller's role on the project of the request, set by the gateway


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """Every event on `loupe.evt.>`; `id` is also the JetStream `Nats-Msg-Id`."""

    id: str
    type: str  # the subject without the `loupe.evt.` prefix, e.g. `catalog.project.created`
    time: datetime
    project: str | None
    data: Any


class Empty(msgspec.Struct, frozen=True):
    """A request or reply that carries nothing."""


class Redirect(msgspec.Struct, frozen=True, kw_only=True):
    """The reply of a command whose REST operation answers 302 with `Location: <url>`."""

    url: str


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    consumer: str
    subject: str
    msg_id: str
    payload: str  # the message body as text (JSON); what a replay publishes again
    error: str
    deliveries: int
    failed_at: datetime
    replayed_at: datetime | None = None


class ListDeadLetters(msgspec.Struct, frozen=True, kw_only=True):
    include_replayed: bool = False
    limit: int = 100


class DeadLetterList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DeadLetter]


class ReplayDeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: int


class ServiceInfo(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    version: str
    consumers: list[str]
    commands: list[str]
