"""Catalog commands and events: API keys and projects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

ProjectName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]
PageLimit = Annotated[int, msgspec.Meta(ge=1, le=500)]


class VerifyApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key: str


class CreateProject(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ProjectName
    description: Description = ""


class UpdateProject(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields left out stay as they are; `version`, when given, must match (else 409)."""

    name: ProjectName | None = None
    description: Description | None = None
    version: int | None = None


class UpdateProjectRequest(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    changes: UpdateProject


class ProjectRef(msgspec.Struct, frozen=True, kw_only=True):
    id: str


class ListProjects(msgspec.Struct, frozen=True, kw_only=True):
    limit: PageLimit = 50
    cursor: str | None = None


class Project(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    description: str
    version: int
    created_at: datetime
    updated_at: datetime


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
