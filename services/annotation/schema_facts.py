"""Annotation's read model of each project's label schema (the catalog's whole document, archived items
included), so that a label write is validated without asking the catalog.

A schema item archived before a write is refused by that write. The catalog raises the project's
schema version in the JetStream key-value bucket `subjects.SCHEMA_VERSIONS` after each edit commits
and before it answers (services/catalog/schema_versions.py). A write reads that version (from NATS,
not from the catalog) and validates with the schema held here only if it is of that version or newer;
otherwise, and for a project never seen, it asks the catalog once (GET_LABEL_SCHEMA) and stores the
answer for every later write. Each process also keeps the schemas it used lately in memory (`Held`),
so a write whose project's schema has not changed costs one key-value read and nothing else.

The catalog's schema events keep the stored schema current off the write path: an event of a newer
version than the stored one fetches the whole schema. Its item is not applied on its own: one edit
may emit several events with the same version (a PUT of the whole schema, a tag group made with its
tags, a merge) and none says how many, so a schema pieced together from events could not tell that
it is whole; a fetched one is. A redelivered, older or out-of-order event finds the stored version at
or past its own and changes nothing, and so does one of a project not seen yet (its first write fetches
the schema). A project's deletion forgets its schema (sample_facts.on_project_deleted).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import NamedTuple

import msgspec
import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from proto import subjects
from proto.common import Caller
from proto.schema import (
    AttributeChanged,
    KeypointSchemaChanged,
    LabelClassChanged,
    LabelClassMerged,
    LabelSchema,
    TagClassChanged,
    TagGroupChanged,
)
from services.annotation.refs import label_schema
from services.annotation.validation import SchemaIndex
from shared.bus import RequestContext, encoder
from shared.callers import service_caller
from shared.consumers import Delivery
from shared.errors import LoupeError, not_found
from shared.ids import parse_uuid
from shared.service import Runtime, StateKey

log = logging.getLogger(__name__)

SchemaEvent = (
    LabelClassChanged | AttributeChanged | TagGroupChanged | TagClassChanged | KeypointSchemaChanged | LabelClassMerged
)

STORE = """
INSERT INTO label_schemas (project_id, org_id, version, document) VALUES ($1, $2, $3, $4::text::json)
ON CONFLICT (project_id) DO UPDATE SET version = EXCLUDED.version, document = EXCLUDED.document
WHERE label_schemas.version < EXCLUDED.version
"""

decode_schema = msgspec.json.Decoder(LabelSchema).decode


class Known(NamedTuple):
    """A project's schema at one version, and the organisation the project belongs to."""

    org_id: str
    version: int
    schema: SchemaIndex


class Held:
    """The schemas this process validated with lately, by project, the newest version of each; at most
    `capacity` projects, the one used least recently going first. A version never changes, so a schema
    held is right for every write until the catalog names a newer version."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._known: dict[uuid.UUID, Known] = {}

    def get(self, project: uuid.UUID, version: int) -> Known | None:
        """The project's schema if it is of `version` or newer."""
        known = self._known.get(project)
        return known if known is not None and known.version >= version else None

    def put(self, project: uuid.UUID, known: Known) -> None:
        held = self._known.pop(project, None)
        if held is not None and held.version > known.version:
            known = held
        elif held is None and len(self._known) >= self.capacity:
            del self._known[next(iter(self._known))]
        self._known[project] = known


class Schemas(NamedTuple):
    versions: KeyValue  # the catalog's bucket of schema versions
    held: Held


SCHEMAS = StateKey("label schemas", Schemas)


async def open_schemas(rt: Runtime) -> AsyncIterator[None]:
    """A service context: the bucket's handle (made by `Bus.ensure_streams`) and an empty `Held`."""
    rt.state[SCHEMAS] = Schemas(await rt.nats.js.key_value(subjects.SCHEMA_VERSIONS), Held())
    yield


async def current_version(versions: KeyValue, project: uuid.UUID) -> int:
    """The catalog's version of the project's schema; 0 while it was never edited."""
    try:
        entry = await versions.get(str(project))
    except nats.js.errors.KeyNotFoundError:
        return 0
    except nats.errors.TimeoutError:
        raise LoupeError("unavailable", "NATS did not answer in time; retry later") from None
    return int(entry.value or b"0")


async def for_write(rt: Runtime, project_id: str, ctx: RequestContext) -> SchemaIndex:
    """The project's schema as it is now, archived items included (labels that use them stay valid)."""
    caller = ctx.require_caller()
    project = parse_uuid(project_id, "project")
    schemas = rt.state[SCHEMAS]
    version = await current_version(schemas.versions, project)
    known = schemas.held.get(project, version)
    if known is None:
        known = await _stored(rt, project, version) or await _fetch(rt, project, caller)
    schemas.held.put(project, known)
    # The catalog checks the organisation when asked; answering from the copy must not skip that.
    if known.org_id != caller.org_id:
        raise not_found("project", project_id)
    return known.schema


async def _stored(rt: Runtime, project: uuid.UUID, version: int) -> Known | None:
    row = await rt.db.fetchrow(
        "SELECT org_id, version, document::text AS document FROM label_schemas WHERE project_id = $1 AND version >= $2",
        project,
        version,
    )
    if row is None:
        return None
    return Known(str(row["org_id"]), row["version"], SchemaIndex.from_schema(decode_schema(row["document"])))


async def _fetch(rt: Runtime, project: uuid.UUID, caller: Caller) -> Known:
    """Ask the catalog, and store its answer unless a newer version is stored already."""
    schema = await label_schema(rt, str(project), caller)
    await rt.db.execute(STORE, project, uuid.UUID(caller.org_id), schema.version, encoder.encode(schema).decode())
    return Known(caller.org_id, schema.version, SchemaIndex.from_schema(schema))


async def on_changed(rt: Runtime, project_id: str | None, event: SchemaEvent, delivery: Delivery) -> None:
    """Any schema event: fetch the schema if the event is newer than the stored one."""
    if project_id is None:
        return
    project = uuid.UUID(project_id)
    row = await rt.db.fetchrow(
        "SELECT org_id FROM label_schemas WHERE project_id = $1 AND version < $2", project, event.schema_version
    )
    if row is None:
        return
    try:
        rt.state[SCHEMAS].held.put(project, await _fetch(rt, project, service_caller("annotation", str(row["org_id"]))))
    except LoupeError as error:
        # Not retried here, where it would hold up the sample events behind it: the project's next write
        # finds the stored schema behind the catalog's version and asks for it itself.
        log.warning(
            "could not refresh the label schema of project %s after version %d: %s",
            project,
            event.schema_version,
            error,
        )
