"""Catalog commands and events: organisations, users, API keys, roles and projects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

ProjectName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]
PageLimit = Annotated[int, msgspec.Meta(ge=1, le=500)]

# Project roles, least to most; each can do what the ones before it can.
Role = Literal["viewer", "labeler", "reviewer", "manager", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "labeler", "reviewer", "manager", "admin")


def role_at_least(role: str | None, needed: Role) -> bool:
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


# What is labelled: image-level classes/tags, boxes only, vector shapes (polygons, polylines, points,
# boxes), per-pixel masks, or keypoint skeletons (Segments.ai's task types plus the two it lacks).
TaskType = Literal["classification", "bboxes", "vector", "segmentation-bitmap", "keypoints"]
ContentType = Literal["image"]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
PersonName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]


class VerifyApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key: str


class CreateProject(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ProjectName
    description: Description = ""
    task_type: TaskType = "bboxes"
    content_type: ContentType = "image"
    public: bool = False  # public: every user of the organisation may view it
    metadata: dict[str, Any] = {}  # free settings, e.g. what a compat dialect must remember


class UpdateProject(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields left out stay as they are; `version`, when given, must match (else 409)."""

    name: ProjectName | None = None
    description: Description | None = None
    public: bool | None = None
    metadata: dict[str, Any] | None = None
    version: int | None = None


class UpdateProjectRequest(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    changes: UpdateProject


class ProjectRef(msgspec.Struct, frozen=True, kw_only=True):
    id: str


class Page(msgspec.Struct, frozen=True, kw_only=True):
    """A page of a keyset listing: pass the reply's `next_cursor` back as `cursor` for the next one."""

    limit: PageLimit = 50
    cursor: str | None = None


class ListProjects(Page, frozen=True, kw_only=True):
    """Query parameters of listing projects."""

    # Only the project of this name (names are unique in an organisation, whatever their case): how a
    # client that knows projects by name, as Segments.ai's `owner/name` does, finds one in one query.
    name: ProjectName | None = None


class Project(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    description: str
    task_type: TaskType
    content_type: ContentType
    public: bool
    metadata: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    role: Role | None = None  # the caller's role on it


class ProjectPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Project]
    next_cursor: str | None = None


class ProjectUpdated(msgspec.Struct, frozen=True, kw_only=True):
    project: Project
    changed: list[str]  # names of the fields that changed, e.g. ["name"] for a rename


class ProjectDeleted(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str


# -- organisations, users, API keys, roles -----------------------------------------------------------


class CreateOrg(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new organisation and its first admin user, who gets the first API key."""

    name: ProjectName
    admin_name: PersonName
    admin_email: Email


class Org(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    created_at: datetime


class CreateUser(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: PersonName
    email: Email
    is_admin: bool = False


class UpdateUser(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: PersonName | None = None
    is_admin: bool | None = None
    active: bool | None = None  # false deactivates the user and every key of theirs


class UpdateUserRequest(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    changes: UpdateUser


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    email: str | None  # shown only to organisation admins and to the user themself
    is_admin: bool
    active: bool
    created_at: datetime


class UserRef(msgspec.Struct, frozen=True, kw_only=True):
    id: str


class UserList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[User]


class CreateApiKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ProjectName


class CreateApiKeyRequest(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str | None  # None: a key for the caller's own user
    key: CreateApiKey


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    user_id: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None = None
    key: str | None = None  # the secret, returned once when the key is created


class ApiKeyList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ApiKey]


class ApiKeyRef(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str | None
    id: str


class OrgCreated(msgspec.Struct, frozen=True, kw_only=True):
    org: Org
    admin: User
    api_key: ApiKey


class Me(msgspec.Struct, frozen=True, kw_only=True):
    org_id: str
    key_id: str
    user: User | None  # None for an organisation key (the bootstrap admin key)
    is_admin: bool
    org_name: str = ""  # the organisation's name (the owner of its projects in the Segments.ai dialect)
    org_created_at: datetime | None = None


class CheckAccess(msgspec.Struct, frozen=True, kw_only=True):
    """May the caller act on this project with at least `role`? Answers not_found when the caller
    may not even see the project, so a private project's existence never leaks."""

    project_id: str
    role: Role


class ProjectAccess(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    role: Role  # the caller's actual role, at least the one asked for


class Member(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    user_id: str
    role: Role
    created_at: datetime


class MemberList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Member]


class SetMember(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role


class SetMemberRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    user_id: str
    member: SetMember


class MemberRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    user_id: str


class MemberChanged(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    user_id: str
    role: Role | None  # None: removed from the project


class ApiKeyRevoked(msgspec.Struct, frozen=True, kw_only=True):
    """Which key stopped working; never the key itself or its hash."""

    key_id: str
    user_id: str | None  # None for a key of the organisation itself
    org_id: str


class UserUpdated(msgspec.Struct, frozen=True, kw_only=True):
    """A user's fields after a change; `changed` names those that changed (`name`, `is_admin`, `active`)."""

    user_id: str
    org_id: str
    changed: list[str]
    name: str
    is_admin: bool
    active: bool  # false: deactivated, and every key of theirs revoked
