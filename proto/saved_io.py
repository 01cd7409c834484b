"""Saved sources and sinks: a pipeline source or sink kept by name in an organisation, for pipelines of any of
its projects to use (Geti Tune's top-level sources and sinks).

A pipeline still carries its source and sinks inline (proto/pipelines.py): using a saved one copies its
config into the pipeline and records the reference. Changing a saved source or sink changes, and restarts,
every pipeline that still carries its config; a pipeline changed by other means no longer follows it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from proto.common import Uuid
from proto.pipelines import Sink, Source

SavedName = Annotated[str, Meta(min_length=1, max_length=200)]


class NewSavedSource(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: SavedName
    source: Source


class NewSavedSink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: SavedName
    sink: Sink


class SavedSourceChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields left out keep their value; a new `source` reaches the pipelines that use it, restarting them."""

    name: SavedName | None = None
    source: Source | None = None


class SavedSinkChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields left out keep their value; a new `sink` reaches the pipelines that use it, restarting them."""

    name: SavedName | None = None
    sink: Sink | None = None


class SavedSource(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    source: Source
    pipelines: list[str]  # ids of the pipelines that use it now
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class SavedSink(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    sink: Sink
    pipelines: list[str]  # ids of the pipelines that use it now
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class SavedSourceList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[SavedSource]  # oldest first


class SavedSinkList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[SavedSink]  # oldest first


class OrgScope(msgspec.Struct, frozen=True, kw_only=True):
    """The caller's organisation: no field, the caller says which."""


class SavedRef(msgspec.Struct, frozen=True, kw_only=True):
    id: str


class CreateSavedSourceRequest(msgspec.Struct, frozen=True, kw_only=True):
    source: NewSavedSource


class CreateSavedSinkRequest(msgspec.Struct, frozen=True, kw_only=True):
    sink: NewSavedSink


class UpdateSavedSourceRequest(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    changes: SavedSourceChanges


class UpdateSavedSinkRequest(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    changes: SavedSinkChanges


class UseSaved(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which saved source and sinks a pipeline uses; left out keeps what it has. The configs are copied into
    the pipeline, which restarts with them if it runs."""

    source_id: Uuid | None = None
    sink_ids: Annotated[list[Uuid], Meta(min_length=1, max_length=8)] | None = None


class UseSavedRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    pipeline_id: str
    use: UseSaved


class PipelineSaved(msgspec.Struct, frozen=True, kw_only=True):
    """The saved source and sinks a pipeline uses now: None (or None at a sink's place) where it carries a
    config of its own."""

    pipeline_id: str
    source_id: str | None
    sink_ids: list[str | None]


class PipelineSavedRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    pipeline_id: str
