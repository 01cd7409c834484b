"""The label schema of a project: label classes, attributes, tag groups and tag classes, keypoint
schemas. Commands read and edit it; every committed edit bumps the schema `version` by one and emits
one event per item it changed, carrying the item and that version, so another service can keep a
copy of the schema from the events alone.

Edits never orphan labels. Labels live in the annotation service and refer to schema items by id, so:
- A rename keeps the id: labels follow it.
- Delete archives: the row stays, hidden from default listings (`include_archived=true` shows it);
  annotation refuses it for new labels, existing labels keep it, and PATCH `archived: false`
  restores it (if its name is still free among active items).
- Merging a class into another (same project and kind) archives the source and emits
  `labelclass.merged`, on which annotation moves the source's objects to the target; attributes that
  applied to the source now also apply to the target, so those objects keep their values.
- Values removed from a selection attribute are archived, not dropped: they stay in `values` with
  `archived: true` and keep their id; listing the value again restores it.
- What would make existing labels unreadable is refused: changing an attribute's subject or type
  (except SELECTION → MULTIPLE_SELECTION), and removing keypoints (labels store points by index).
  Narrowing min/max or making an attribute required does not touch existing labels; they are
  checked when next edited.

The full rules are in docs/decisions.md, "Label schema edits". Every edit locks the project's
`label_schemas` row, loads the whole schema, applies the change with the pure rules of
schema_rules.py (schema_replace.py for PUT), and writes back only the items that changed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import asyncpg
import msgspec

from proto import subjects
from proto.common import Caller, Empty
from proto.schema import (
    Attribute,
    AttributeChanged,
    AttributeList,
    CreateSchemaItem,
    GetSchema,
    KeypointSchema,
    KeypointSchemaChanged,
    KeypointSchemaList,
    LabelClass,
    LabelClassChanged,
    LabelClassList,
    LabelClassMerged,
    LabelSchema,
    ListSchemaItems,
    MergeLabelClassRequest,
    ReplaceSchema,
    SchemaItemRef,
    TagClass,
    TagClassChanged,
    TagClassList,
    TagClassSpec,
    TagGroup,
    TagGroupChanged,
    TagGroupList,
    UpdateSchemaItem,
)
from proto.subjects import SchemaKind
from services.catalog import schema_replace, schema_versions
from services.catalog import schema_rules as rules
from shared import outbox
from shared.bus import RequestContext
from shared.errors import invalid, not_found
from shared.ids import parse_uuid
from shared.service import Answers, Runtime

ANSWERS = Answers()


class Table(NamedTuple):
    name: str
    item: type[rules.Item]
    changed: type  # the data of its events
    items: type  # its list reply
    subjects: SchemaKind
    casts: dict[str, str]  # uuid columns are read as text: items carry ids as strings
    jsonb: frozenset[str]

    @property
    def columns(self) -> list[str]:
        return [f for f in self.item.__struct_fields__ if f != "tags"]  # a group's tags are rows of their own


TABLES = {
    "keypoint_schema": Table(
        "keypoint_schemas",
        KeypointSchema,
        KeypointSchemaChanged,
        KeypointSchemaList,
        subjects.KEYPOINT_SCHEMA,
        {"id": "text"},
        frozenset({"skeleton", "extra"}),
    ),
    "label_class": Table(
        "label_classes",
        LabelClass,
        LabelClassChanged,
        LabelClassList,
        subjects.LABEL_CLASS,
        {"id": "text", "keypoint_schema_id": "text"},
        frozenset({"extra"}),
    ),
    "attribute": Table(
        "attributes",
        Attribute,
        AttributeChanged,
        AttributeList,
        subjects.ATTRIBUTE,
        {"id": "text", "class_ids": "text[]"},
        frozenset({"values", "min", "max", "default", "extra"}),
    ),
    "tag_group": Table(
        "tag_groups", TagGroup, TagGroupChanged, TagGroupList, subjects.TAG_GROUP, {"id": "text"}, frozenset({"extra"})
    ),
    "tag_class": Table(
        "tag_classes",
        TagClass,
        TagClassChanged,
        TagClassList,
        subjects.TAG_CLASS,
        {"id": "text", "group_id": "text"},
        frozenset({"extra"}),
    ),
}


def _select(table: Table) -> str:
    columns = ", ".join(f'"{c}"::{table.casts[c]} AS "{c}"' if c in table.casts else f'"{c}"' for c in table.columns)
    return f"SELECT {columns} FROM {table.name} WHERE project_id = $1"


def _upsert(table: Table) -> str:
    columns = table.columns
    names = ", ".join(f'"{c}"' for c in ["project_id", *columns])
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 2))
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c != "id")
    # The WHERE keeps an id of another project from ever being overwritten (new ids are checked first).
    return (
        f"INSERT INTO {table.name} ({names}) VALUES ({params}) ON CONFLICT (id) DO UPDATE SET {updates} "
        f"WHERE {table.name}.project_id = EXCLUDED.project_id"
    )


def _row(table: Table, project: uuid.UUID, item: Any) -> list[Any]:
    return [
        project,
        *(msgspec.to_builtins(getattr(item, c)) if c in table.jsonb else getattr(item, c) for c in table.columns),
    ]


# -- loading and saving -----------------------------------------------------------------------------


async def _project(conn: asyncpg.Connection, project_id: str, caller: Caller) -> uuid.UUID:
    try:
        ident = uuid.UUID(project_id)
    except ValueError:
        raise not_found("project", project_id) from None
    if not await conn.fetchval(
        "SELECT true FROM projects WHERE id = $1 AND org_id = $2", ident, uuid.UUID(caller.org_id)
    ):
        raise not_found("project", project_id)
    return ident


async def _load(conn: asyncpg.Connection, project: uuid.UUID, kinds: tuple[str, ...]) -> rules.Edit:
    version = await conn.fetchval("SELECT version FROM label_schemas WHERE project_id = $1", project) or 0
    items: dict[str, dict[str, rules.Item]] = {kind: {} for kind in rules.KINDS}
    for kind in kinds:
        table = TABLES[kind]
        for row in await conn.fetch(_select(table), project):
            item = msgspec.convert(dict(row), table.item)
            items[kind][item.id] = item
    return rules.Edit(version, items)


@contextlib.asynccontextmanager
async def _reading(
    rt: Runtime, ctx: RequestContext, project_id: str, kinds: tuple[str, ...] = rules.KINDS
) -> AsyncIterator[rules.Edit]:
    """The project's schema (only `kinds` of it), read in one snapshot."""
    caller = ctx.require_caller()
    async with rt.db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        yield await _load(conn, await _project(conn, project_id, caller), kinds)


@contextlib.asynccontextmanager
async def _editing(rt: Runtime, ctx: RequestContext, project_id: str) -> AsyncIterator[rules.Edit]:
    """The project's whole schema, locked; what the caller changes in it is checked, saved and
    announced when the block ends, or nothing is if it raises. A new version, once committed, is
    published before the edit is answered (schema_versions)."""
    async with _saving(rt, ctx, project_id) as edit:
        loaded = edit.version
        yield edit
    if edit.version != loaded:
        await schema_versions.raise_to(rt.nats, uuid.UUID(project_id), edit.version)


@contextlib.asynccontextmanager
async def _saving(rt: Runtime, ctx: RequestContext, project_id: str) -> AsyncIterator[rules.Edit]:
    caller = ctx.require_caller()
    async with rt.db.acquire() as conn, conn.transaction():
        project = await _project(conn, project_id, caller)
        # Creates the row on the first edit, and either way holds its lock until commit.
        await conn.execute(
            "INSERT INTO label_schemas (project_id) VALUES ($1) "
            "ON CONFLICT (project_id) DO UPDATE SET version = label_schemas.version",
            project,
        )
        edit = await _load(conn, project, rules.KINDS)
        yield edit
        changes = edit.finish()
        if not changes and edit.merged is None:
            return
        edit.version = await conn.fetchval(
            "UPDATE label_schemas SET version = version + 1 WHERE project_id = $1 RETURNING version", project
        )
        for kind in rules.KINDS:  # referenced items first, for the foreign keys
            done = [c for c in changes if c.kind == kind]
            await _refuse_taken_ids(conn, edit, kind, [c.new.id for c in done if c.old is None])
            if done:
                await conn.executemany(_upsert(TABLES[kind]), [_row(TABLES[kind], project, c.new) for c in done])
        await _announce(conn, edit, changes, str(project))


async def _refuse_taken_ids(conn: asyncpg.Connection, edit: rules.Edit, kind: str, new_ids: list[str]) -> None:
    """A PUT may choose the ids of new items; one already used elsewhere is refused."""
    chosen = [ident for ident in new_ids if (kind, ident) in edit.client_ids]
    if chosen:
        taken = await conn.fetchval(
            f"SELECT id::text FROM {TABLES[kind].name} WHERE id = ANY($1::uuid[]) LIMIT 1", chosen
        )
        if taken is not None:
            raise invalid(
                f"the id {taken} is already in use; leave `id` out, or choose a new UUID",
                path=f"{edit.touched[(kind, taken)]}.id",
            )


async def _announce(conn: asyncpg.Connection, edit: rules.Edit, changes: list[rules.Change], project: str) -> None:
    for change in changes:
        if edit.merged is not None and change.new.id == edit.merged[0]:
            continue  # the merged event below says it
        kind = TABLES[change.kind].subjects
        old, new = change.old, change.new
        event, changed = kind.created, []
        if old is not None:
            changed = rules.changed_fields(old, new)
            event = (
                kind.archived
                if new.archived and not old.archived
                else kind.restored
                if old.archived and not new.archived
                else kind.updated
            )
        await outbox.emit(
            conn, event, TABLES[change.kind].changed(item=new, changed=changed, schema_version=edit.version), project
        )
    if edit.merged is not None:
        source, target = (edit.of(LabelClass)[i] for i in edit.merged)
        await outbox.emit(
            conn,
            subjects.LABEL_CLASS_MERGED,
            LabelClassMerged(source=source, target=target, schema_version=edit.version),
            project,
        )


# -- reading ----------------------------------------------------------------------------------------


def _listed(items: dict[str, Any], include_archived: bool) -> list[Any]:
    return sorted((i for i in items.values() if include_archived or not i.archived), key=rules.sort_key)


def _with_tags(edit: rules.Edit, group: TagGroup, include_archived: bool) -> TagGroup:
    tags = {t.id: t for t in edit.of(TagClass).values() if t.group_id == group.id}
    return msgspec.structs.replace(group, tags=_listed(tags, include_archived))


def _document(edit: rules.Edit, include_archived: bool = False) -> LabelSchema:
    listed = {kind: _listed(edit.items[kind], include_archived) for kind in rules.KINDS}
    return LabelSchema(
        version=edit.version,
        label_classes=listed["label_class"],
        attributes=listed["attribute"],
        tag_groups=[_with_tags(edit, g, include_archived) for g in listed["tag_group"]],
        keypoint_schemas=listed["keypoint_schema"],
    )


def _item(edit: rules.Edit, kind: str, ident: str) -> Any:
    item = edit.get(kind, ident)
    if item is None:
        raise not_found(rules.NOUNS[kind], ident)
    return _with_tags(edit, item, include_archived=False) if kind == "tag_group" else item


@ANSWERS(subjects.GET_LABEL_SCHEMA)
async def get_schema(rt: Runtime, request: GetSchema, ctx: RequestContext) -> LabelSchema:
    async with _reading(rt, ctx, request.project_id) as edit:
        return _document(edit, request.include_archived)


@ANSWERS(subjects.REPLACE_LABEL_SCHEMA)
async def replace_schema(rt: Runtime, request: ReplaceSchema, ctx: RequestContext) -> LabelSchema:
    async with _editing(rt, ctx, request.project_id) as edit:
        schema_replace.replace_schema(edit, request.document)
    return _document(edit)


def _kinds_for(kind: str) -> tuple[str, ...]:
    return (kind, "tag_class") if kind == "tag_group" else (kind,)


def handlers(kind: str) -> dict[str, Any]:
    """The create, list, get, update and delete commands of one kind of item."""
    table = TABLES[kind]

    async def create(rt: Runtime, request: CreateSchemaItem[Any], ctx: RequestContext) -> Any:
        fields = msgspec.structs.asdict(request.item)
        tags = fields.pop("tags", [])
        context = (
            {"group_id": str(parse_uuid(fields.pop("group_id"), "tag group", path="$.group_id"))}
            if kind == "tag_class"
            else {}
        )
        async with _editing(rt, ctx, request.project_id) as edit:
            item = edit.put(kind, rules.SPECS[kind](**fields), None, "$", **context)
            for i, tag in enumerate(tags):  # a group created with its tags
                edit.put(
                    "tag_class", TagClassSpec(**msgspec.structs.asdict(tag)), None, f"$.tags[{i}]", group_id=item.id
                )
        return _item(edit, kind, item.id)

    async def list_items(rt: Runtime, request: ListSchemaItems, ctx: RequestContext) -> Any:
        async with _reading(rt, ctx, request.project_id, _kinds_for(kind)) as edit:
            items = _listed(edit.items[kind], request.include_archived)
            if kind == "tag_group":
                items = [_with_tags(edit, g, request.include_archived) for g in items]
            return table.items(items=items, schema_version=edit.version)

    async def get(rt: Runtime, request: SchemaItemRef, ctx: RequestContext) -> Any:
        async with _reading(rt, ctx, request.project_id, _kinds_for(kind)) as edit:
            return _item(edit, kind, request.id)

    async def update(rt: Runtime, request: UpdateSchemaItem[Any], ctx: RequestContext) -> Any:
        async with _editing(rt, ctx, request.project_id) as edit:
            current = _item(edit, kind, request.id)
            changes = request.changes
            spec = rules.spec_of(kind, current, changes)
            if changes.version is not None:
                spec = msgspec.structs.replace(spec, version=changes.version)
            context = {}
            if kind == "tag_class":
                group_id = current.group_id if changes.group_id is msgspec.UNSET else changes.group_id
                context = {"group_id": str(parse_uuid(group_id, "tag group", path="$.group_id"))}
            edit.put(kind, spec, edit.items[kind][current.id], "$", **context)
        return _item(edit, kind, current.id)

    async def delete(rt: Runtime, request: SchemaItemRef, ctx: RequestContext) -> Empty:
        async with _editing(rt, ctx, request.project_id) as edit:
            edit.archive(kind, _item(edit, kind, request.id), "$")
        return Empty()

    return {"create": create, "list": list_items, "get": get, "update": update, "delete": delete}


@ANSWERS(subjects.MERGE_LABEL_CLASS)
async def merge_label_class(rt: Runtime, request: MergeLabelClassRequest, ctx: RequestContext) -> LabelClassMerged:
    async with _editing(rt, ctx, request.project_id) as edit:
        source = _item(edit, "label_class", request.id)
        target = rules.merge_label_class(edit, source, request.into)
    classes = edit.of(LabelClass)
    return LabelClassMerged(source=classes[source.id], target=classes[target.id], schema_version=edit.version)


# The commands of each kind's table (create, list, get, update, delete) are answered by handlers made per kind.
ANSWERS.extend(
    (getattr(table.subjects, verb), handler)
    for kind, table in TABLES.items()
    for verb, handler in handlers(kind).items()
)
