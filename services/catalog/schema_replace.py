"""PUT .../schema: match each item of the document to the project's current items, put it, and
archive the active items nothing matched. Pure, like schema_rules.py.

An item with an `id` is that item (a UUID the project does not have yet creates the item with it, so
a document can refer to items it creates); without one it is the item of the same name, an active one
before an archived one (attributes: of the same subject, one sharing a class first). A tag belongs to
the group it is listed under.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from proto.schema import Attribute, AttributeSpec, SchemaDocument
from services.catalog.schema_rules import NOUNS, Edit
from shared.errors import check_version, invalid
from shared.ids import parse_uuid

Entry = tuple[Any, str, dict[str, str]]  # (spec, its path, what `put` and `candidates` need besides the spec)
# (the kind's current items, a spec, its context) → the items a spec without id may mean, best first
Candidates = Callable[[list[Any], Any, dict[str, str]], Iterable[Any]]


def _named(items: Iterable[Any], name: str) -> list[Any]:
    """Items called `name`, active ones first: a name means the item in use, if there is one."""
    return sorted((i for i in items if i.name.lower() == name.strip().lower()), key=lambda i: (i.archived, i.order))


def _by_name(items: list[Any], spec: Any, context: dict[str, str]) -> list[Any]:
    return _named(items, spec.name)


def _same_attribute(items: list[Attribute], spec: AttributeSpec, context: dict[str, str]) -> list[Attribute]:
    """One name may be used by different attributes of disjoint classes: prefer one sharing a class."""
    return sorted(
        (a for a in _named(items, spec.name) if a.subject == spec.subject),
        key=lambda a: (a.archived, bool(a.class_ids) and not set(a.class_ids) & set(spec.class_ids)),
    )


def _same_group(items: list[Any], spec: Any, context: dict[str, str]) -> list[Any]:
    return _named((t for t in items if t.group_id == context["group_id"]), spec.name)


def _replace(edit: Edit, kind: str, entries: Sequence[Entry], path: str, candidates: Candidates) -> list[str]:
    """Put every spec of one kind; archive the active items none of them matched. Returns the ids put."""
    existing = list(edit.items[kind].values())
    ids = [
        str(parse_uuid(spec.id, NOUNS[kind], path=f"{item_path}.id")) if spec.id is not None else None
        for spec, item_path, _ in entries
    ]
    for i, ident in enumerate(ids):
        if ident is not None and ident in ids[:i]:
            raise invalid(f"{NOUNS[kind]} {ident} is listed twice", path=f"{entries[i][1]}.id")
    claimed = {ident for ident in ids if ident is not None}
    put = []
    for ident, (spec, item_path, context) in zip(ids, entries, strict=True):
        if ident is not None:
            current = edit.items[kind].get(ident)
        else:
            current = next((c for c in candidates(existing, spec, context) if c.id not in claimed), None)
            if current is not None:
                claimed.add(current.id)
        put.append(edit.put(kind, spec, current, item_path, **context).id)
    kept = set(put)
    for item in existing:
        if item.id not in kept:
            edit.archive(kind, item, path)
    return put


def replace_schema(edit: Edit, document: SchemaDocument) -> None:
    check_version(document.version, edit.version, "the schema")

    def entries(specs: Sequence[Any], path: str) -> list[Entry]:
        return [(spec, f"{path}[{i}]", {}) for i, spec in enumerate(specs)]

    # Referenced kinds first, so `next_order` and the checks in `Edit.finish` see what they need.
    _replace(
        edit,
        "keypoint_schema",
        entries(document.keypoint_schemas, "$.keypoint_schemas"),
        "$.keypoint_schemas",
        _by_name,
    )
    _replace(edit, "label_class", entries(document.label_classes, "$.label_classes"), "$.label_classes", _by_name)
    _replace(edit, "attribute", entries(document.attributes, "$.attributes"), "$.attributes", _same_attribute)
    group_ids = _replace(edit, "tag_group", entries(document.tag_groups, "$.tag_groups"), "$.tag_groups", _by_name)
    tags: list[Entry] = []
    for g, (group_id, group) in enumerate(zip(group_ids, document.tag_groups, strict=True)):
        for t, spec in enumerate(group.tags):
            path = f"$.tag_groups[{g}].tags[{t}]"
            if (
                spec.group_id is not None
                and str(parse_uuid(spec.group_id, "tag group", path=f"{path}.group_id")) != group_id
            ):
                raise invalid(
                    "a tag's group_id must be the group it is listed under; to move a tag, list it under its new group",
                    path=f"{path}.group_id",
                )
            tags.append((spec, path, {"group_id": group_id}))
    _replace(edit, "tag_class", tags, "$.tag_groups", _same_group)
