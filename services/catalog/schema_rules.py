"""What makes a label schema valid, and how requests turn into items: pure, no I/O.

An `Edit` holds a project's whole schema (small: at most a few thousand items). A request builds
its items into it with `put` (field rules, checked at once) and `finish` then checks every touched
item against the schema as it ends up (unique names, references), so a PUT may swap two names or
refer to an item it creates later in the same document. Errors name the field with its path in the
request, e.g. `$.attributes[2].default`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from proto.schema import (
    Attribute,
    AttributeDefault,
    AttributeSpec,
    AttributeValue,
    AttributeValueSpec,
    Bound,
    KeypointSchema,
    KeypointSchemaSpec,
    LabelClass,
    LabelClassSpec,
    TagClass,
    TagClassSpec,
    TagGroup,
    TagGroupSpec,
)
from shared.errors import check_version, invalid
from shared.ids import parse_uuid

Item = LabelClass | Attribute | TagGroup | TagClass | KeypointSchema
ItemT = TypeVar("ItemT", LabelClass, Attribute, TagGroup, TagClass, KeypointSchema)
Spec = LabelClassSpec | AttributeSpec | TagGroupSpec | TagClassSpec | KeypointSchemaSpec

KINDS = ("keypoint_schema", "label_class", "attribute", "tag_group", "tag_class")  # referenced before referrers
NOUNS = {
    "keypoint_schema": "keypoint schema",
    "label_class": "label class",
    "attribute": "attribute",
    "tag_group": "tag group",
    "tag_class": "tag class",
}
KIND_OF: dict[type[Item], str] = {
    KeypointSchema: "keypoint_schema",
    LabelClass: "label_class",
    Attribute: "attribute",
    TagGroup: "tag_group",
    TagClass: "tag_class",
}

# Tableau 20: distinct neighbours, so classes created one after another are told apart at a glance.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
)
SELECTIONS = ("SELECTION", "MULTIPLE_SELECTION")
NUMBERS = ("INT", "FLOAT")


def default_color(order: int) -> str:
    return PALETTE[order % len(PALETTE)]


def sort_key(item: Item) -> tuple[int, str, str]:
    return item.order, item.name.lower(), item.id


def changed_fields(old: Item, new: Item) -> list[str]:
    return [f for f in new.__struct_fields__ if f != "version" and getattr(old, f) != getattr(new, f)]


@dataclass
class Change:
    kind: str
    old: Item | None
    new: Item


@dataclass
class Edit:
    """A project's schema being edited: `items[kind][id]`, and what was touched, with its request path."""

    version: int
    items: dict[str, dict[str, Item]]
    original: dict[str, dict[str, Item]] = field(init=False)
    touched: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, id) → path in the request
    client_ids: set[tuple[str, str]] = field(default_factory=set)  # new items whose id the client chose
    merged: tuple[str, str] | None = None  # (source, target) of a class merge
    pending: set[tuple[str, str]] = field(default_factory=set)  # touched items `finish` has yet to check

    def __post_init__(self) -> None:
        self.original = {kind: dict(items) for kind, items in self.items.items()}

    def active(self, kind: str) -> Iterable[Any]:
        """Active items to check an item against: not those still to be checked themselves, so a clash
        inside one request is reported at the later of the two items."""
        return (item for item in self.items[kind].values() if not item.archived and (kind, item.id) not in self.pending)

    def describe(self, kind: str, item: Item) -> str:
        """How an error names `item`: by its place in the request when it is listed there (a new item's
        id means nothing to the client yet), else by id."""
        path = self.touched.get((kind, item.id))
        return f"the {NOUNS[kind]} at {path}" if path and path.endswith("]") else f"{NOUNS[kind]} {item.id}"

    def next_order(self, kind: str) -> int:
        return max((item.order for item in self.items[kind].values()), default=-1) + 1

    def of(self, cls: type[ItemT]) -> dict[str, ItemT]:
        """The items of one kind by id, typed, for code about that kind: `edit.of(Attribute)`."""
        return {ident: item for ident, item in self.items[KIND_OF[cls]].items() if isinstance(item, cls)}

    def get(self, kind: str, ident: str) -> Any:
        """The item `ident` of this project, or None (also for what is not a UUID)."""
        try:
            return self.items[kind].get(str(uuid.UUID(ident)))
        except ValueError:
            return None

    def set(self, kind: str, item: Item, path: str) -> Item:
        self.items[kind][item.id] = item
        self.touched.setdefault((kind, item.id), path)
        return item

    def put(self, kind: str, spec: Spec, current: Item | None, path: str, **context: Any) -> Item:
        """Build `spec` into the item `current` (None: a new one) and keep it."""
        if current is not None:
            check_version(spec.version, current.version, f"{NOUNS[kind]} {current.id}", f"{path}.version")
        if current is None:
            ident = str(uuid.uuid4())
            if spec.id is not None:
                ident = str(parse_uuid(spec.id, NOUNS[kind], path=f"{path}.id"))
                self.client_ids.add((kind, ident))
        else:
            ident = current.id
        return self.set(kind, BUILDERS[kind](self, spec, current, ident, path, **context), path)

    def archive(self, kind: str, item: Item, path: str) -> None:
        if not item.archived:
            self.set(kind, msgspec.structs.replace(item, archived=True), path)

    def finish(self) -> list[Change]:
        """Check every touched item against the final schema; bump the versions of those that changed."""
        changes = []
        self.pending = set(self.touched)
        for (kind, ident), path in self.touched.items():
            self.pending.discard((kind, ident))
            new, old = self.items[kind][ident], self.original[kind].get(ident)
            CHECKS[kind](self, new, path)
            if old is not None and new == old:
                continue
            if old is not None:
                new = self.items[kind][ident] = msgspec.structs.replace(new, version=old.version + 1)
            changes.append(Change(kind, old, new))
        return changes


def _unique(
    edit: Edit,
    kind: str,
    item: Any,
    key: Callable[[Any], Any],
    message: str,
    path: str,
    among: Callable[[Any], bool] = lambda other: True,
) -> None:
    """`message` is formatted with `other` (the clashing item) and `it` (how to find it)."""
    for other in edit.active(kind):
        if other.id != item.id and among(other) and key(other) == key(item):
            raise invalid(message.format(other=other, it=edit.describe(kind, other)), path=path)


# -- label classes ----------------------------------------------------------------------------------


def build_label_class(
    edit: Edit, spec: LabelClassSpec, current: LabelClass | None, ident: str, path: str
) -> LabelClass:
    order = spec.order if spec.order is not None else current.order if current else edit.next_order("label_class")
    color = spec.color or (current.color if current else default_color(order))
    schema_id = spec.keypoint_schema_id
    return LabelClass(
        id=ident,
        name=spec.name.strip(),
        kind=spec.kind,
        color=color.lower(),
        order=order,
        description=spec.description,
        external_id=spec.external_id,
        keypoint_schema_id=schema_id
        and str(parse_uuid(schema_id, "keypoint schema", path=f"{path}.keypoint_schema_id")),
        extra=spec.extra,
        archived=spec.archived,
        version=current.version if current else 1,
    )


def check_label_class(edit: Edit, item: LabelClass, path: str) -> None:
    if item.keypoint_schema_id is not None and item.keypoint_schema_id not in edit.items["keypoint_schema"]:
        raise invalid(
            f"{item.keypoint_schema_id} is not a keypoint schema of this project", path=f"{path}.keypoint_schema_id"
        )
    if item.archived:
        return
    _unique(
        edit,
        "label_class",
        item,
        lambda c: c.name.lower(),
        "{it} is already named {other.name!r}; class names are unique per project (case-insensitively): "
        "choose another name, or merge the classes",
        f"{path}.name",
    )
    if item.external_id is not None:
        _unique(
            edit,
            "label_class",
            item,
            lambda c: c.external_id,
            "{it} ({other.name!r}) already has this external_id",
            f"{path}.external_id",
        )


def merge_label_class(edit: Edit, source: LabelClass, into: str) -> LabelClass:
    """Archive `source` for good of `into`; attributes that applied to `source` now apply to the target
    too, so the objects moved there keep their attribute values."""
    target = edit.get("label_class", into)
    if target is None:
        raise invalid(f"{into!r} is not a label class of this project", path="$.into")
    if target.id == source.id:
        raise invalid("a class cannot be merged into itself; name another class in `into`", path="$.into")
    if target.archived:
        raise invalid(
            f"label class {target.name!r} is archived; restore it first or merge into another class", path="$.into"
        )
    if target.kind != source.kind:
        raise invalid(
            f"{source.name!r} is an {source.kind} class and {target.name!r} a {target.kind} class; "
            "only classes of the same kind can be merged",
            path="$.into",
        )
    if source.keypoint_schema_id not in (None, target.keypoint_schema_id):
        raise invalid(
            f"{source.name!r} and {target.name!r} use different keypoint schemas, so its keypoints "
            "would not fit the target",
            path="$.into",
        )
    edit.merged = (source.id, target.id)
    edit.archive("label_class", source, "$")
    for attribute in edit.of(Attribute).values():
        if source.id in attribute.class_ids and target.id not in attribute.class_ids:
            edit.set(
                "attribute", msgspec.structs.replace(attribute, class_ids=[*attribute.class_ids, target.id]), "$.into"
            )
    return target


# -- attributes -------------------------------------------------------------------------------------


def build_values(
    specs: Sequence[str | AttributeValueSpec], current: Sequence[AttributeValue], path: str
) -> list[AttributeValue]:
    """Values listed, matched to the current ones by id, else by text; current values left out are kept,
    archived, after them: labels may still hold them."""
    listed_specs = [AttributeValueSpec(value=s) if isinstance(s, str) else s for s in specs]
    by_id = {v.id: v for v in current}
    named = {s.id for s in listed_specs if s.id is not None}
    by_text = {v.value.lower(): v for v in current if v.id not in named}
    values: list[AttributeValue] = []
    for i, spec in enumerate(listed_specs):
        text = spec.value.strip()
        if spec.id is not None and spec.id not in by_id:
            raise invalid(
                f"{spec.id!r} is not a value of this attribute; leave `id` out to add a value",
                path=f"{path}.values[{i}].id",
            )
        old = by_id[spec.id] if spec.id is not None else by_text.get(text.lower())
        if any(v.value.lower() == text.lower() or (old and v.id == old.id) for v in values):
            raise invalid(
                f"the value {text!r} is listed twice (values are compared case-insensitively)",
                path=f"{path}.values[{i}]",
            )
        values.append(AttributeValue(id=old.id if old else str(uuid.uuid4()), value=text, archived=spec.archived))
    listed = {v.id for v in values}
    return values + [msgspec.structs.replace(v, archived=True) for v in current if v.id not in listed]


def _bound(value: Bound | None, kind: str, path: str) -> Bound | None:
    return None if value is None else _number(value, kind, path)


def _number(value: Bound, kind: str, path: str) -> Bound:
    if kind == "FLOAT":
        return float(value)
    if isinstance(value, float) and not value.is_integer():
        raise invalid(f"an INT attribute takes whole numbers, not {value}", path=path)
    return int(value)


def _default(attribute: Attribute, path: str) -> AttributeDefault:
    """The default normalised to the attribute's type, or an error saying what it must be."""
    value, kind = attribute.default, attribute.type
    if value is None:
        return None
    active = [v.value for v in attribute.values if not v.archived]
    if kind == "MULTIPLE_SELECTION" and isinstance(value, str):
        value = [value]
    ok = {
        "TEXT": isinstance(value, str),
        "BOOL": isinstance(value, bool),
        "SELECTION": isinstance(value, str) and value in active,
        "MULTIPLE_SELECTION": isinstance(value, list)
        and len(set(value)) == len(value)
        and all(v in active for v in value),
        "INT": isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer(),
        "FLOAT": isinstance(value, int | float) and not isinstance(value, bool),
    }[kind]
    if not ok:
        expected = {
            "TEXT": "a string",
            "BOOL": "true or false",
            "INT": "a whole number",
            "FLOAT": "a number",
            "SELECTION": f"one of the active values {active}",
            "MULTIPLE_SELECTION": f"a list of distinct active values from {active}",
        }[kind]
        raise invalid(f"the default of a {kind} attribute must be {expected}, not {value!r}", path=path)
    if kind in NUMBERS and isinstance(value, int | float):  # always so once `ok`; the isinstance is for mypy
        value = _number(value, kind, path)
        low, high = attribute.min, attribute.max
        if (low is not None and value < low) or (high is not None and value > high):
            raise invalid(f"the default {value} is outside [{low}, {high}], the attribute's min and max", path=path)
    return value


def build_attribute(edit: Edit, spec: AttributeSpec, current: Attribute | None, ident: str, path: str) -> Attribute:
    if current is not None and spec.subject != current.subject:
        raise invalid(
            f"the subject of an attribute cannot change ({current.subject} → {spec.subject}): its "
            "values on existing labels would no longer fit; create a new attribute",
            path=f"{path}.subject",
        )
    if current is not None and spec.type != current.type and (current.type, spec.type) != SELECTIONS:
        raise invalid(
            f"the type of an attribute can only change from SELECTION to MULTIPLE_SELECTION, not "
            f"{current.type} → {spec.type}: values on existing labels would no longer fit; create a new "
            "attribute and archive this one",
            path=f"{path}.type",
        )
    if spec.type in SELECTIONS:
        values = build_values(spec.values, current.values if current else [], path)
        if all(v.archived for v in values):
            raise invalid(
                f"a {spec.type} attribute needs at least one (active) value in `values`", path=f"{path}.values"
            )
    elif spec.values:
        raise invalid(
            f"only SELECTION and MULTIPLE_SELECTION attributes take values, not {spec.type}", path=f"{path}.values"
        )
    else:
        values = []
    for name in ("min", "max"):
        if getattr(spec, name) is not None and spec.type not in NUMBERS:
            raise invalid(f"only INT and FLOAT attributes take {name}, not {spec.type}", path=f"{path}.{name}")
    low, high = _bound(spec.min, spec.type, f"{path}.min"), _bound(spec.max, spec.type, f"{path}.max")
    if low is not None and high is not None and low > high:
        raise invalid(f"min ({low}) is greater than max ({high})", path=f"{path}.min")
    if spec.subject == "IMAGE" and spec.class_ids:
        raise invalid(
            "an IMAGE attribute applies to whole images, not to classes: leave class_ids empty",
            path=f"{path}.class_ids",
        )
    class_ids = [str(parse_uuid(c, "label class", path=f"{path}.class_ids[{i}]")) for i, c in enumerate(spec.class_ids)]
    for i, class_id in enumerate(class_ids):
        if class_id in class_ids[:i]:
            raise invalid(f"class {class_id} is listed twice", path=f"{path}.class_ids[{i}]")
    order = spec.order if spec.order is not None else current.order if current else edit.next_order("attribute")
    attribute = Attribute(
        id=ident,
        name=spec.name.strip(),
        type=spec.type,
        subject=spec.subject,
        values=values,
        min=low,
        max=high,
        required=spec.required,
        default=spec.default,
        description=spec.description,
        order=order,
        class_ids=class_ids,
        extra=spec.extra,
        archived=spec.archived,
        version=current.version if current else 1,
    )
    return msgspec.structs.replace(attribute, default=_default(attribute, f"{path}.default"))


def _overlap(a: Attribute, b: Attribute) -> bool:
    """Whether some label could see both: empty class_ids means every class."""
    return a.subject == b.subject and (not a.class_ids or not b.class_ids or bool(set(a.class_ids) & set(b.class_ids)))


def check_attribute(edit: Edit, item: Attribute, path: str) -> None:
    for i, class_id in enumerate(item.class_ids):
        if class_id not in edit.items["label_class"]:
            raise invalid(f"{class_id} is not a label class of this project", path=f"{path}.class_ids[{i}]")
    if not item.archived:
        _unique(
            edit,
            "attribute",
            item,
            lambda a: a.name.lower(),
            "{it} is already named {other.name!r} and applies to the same subject and some of the same "
            "classes; nothing can have two attributes of one name: rename one, or give them disjoint class_ids",
            f"{path}.name",
            among=lambda other: _overlap(other, item),
        )


# -- tag groups and tag classes ---------------------------------------------------------------------


def build_tag_group(edit: Edit, spec: TagGroupSpec, current: TagGroup | None, ident: str, path: str) -> TagGroup:
    order = spec.order if spec.order is not None else current.order if current else edit.next_order("tag_group")
    return TagGroup(
        id=ident,
        name=spec.name.strip(),
        selection=spec.selection,
        required=spec.required,
        order=order,
        description=spec.description,
        extra=spec.extra,
        archived=spec.archived,
        version=current.version if current else 1,
    )


def check_tag_group(edit: Edit, item: TagGroup, path: str) -> None:
    if not item.archived:
        _unique(
            edit,
            "tag_group",
            item,
            lambda g: g.name.lower(),
            "{it} is already named {other.name!r}; group names are unique per project (case-insensitively)",
            f"{path}.name",
        )


def build_tag_class(
    edit: Edit, spec: TagClassSpec, current: TagClass | None, ident: str, path: str, *, group_id: str
) -> TagClass:
    in_group = [t for t in edit.of(TagClass).values() if t.group_id == group_id]
    order = (
        spec.order
        if spec.order is not None
        else current.order
        if current
        else max((t.order for t in in_group), default=-1) + 1
    )
    color = spec.color or (current.color if current else default_color(order))
    return TagClass(
        id=ident,
        group_id=group_id,
        name=spec.name.strip(),
        color=color.lower(),
        order=order,
        description=spec.description,
        external_id=spec.external_id,
        extra=spec.extra,
        archived=spec.archived,
        version=current.version if current else 1,
    )


def check_tag_class(edit: Edit, item: TagClass, path: str) -> None:
    if item.group_id not in edit.items["tag_group"]:
        raise invalid(f"{item.group_id} is not a tag group of this project", path=f"{path}.group_id")
    if item.archived:
        return
    _unique(
        edit,
        "tag_class",
        item,
        lambda t: t.name.lower(),
        "{it}, of the same group, is already named {other.name!r}; tag names are unique per group (case-insensitively)",
        f"{path}.name",
        among=lambda t: t.group_id == item.group_id,
    )
    if item.external_id is not None:
        _unique(
            edit,
            "tag_class",
            item,
            lambda t: t.external_id,
            "{it} ({other.name!r}) already has this external_id",
            f"{path}.external_id",
        )


# -- keypoint schemas -------------------------------------------------------------------------------


def build_keypoint_schema(
    edit: Edit, spec: KeypointSchemaSpec, current: KeypointSchema | None, ident: str, path: str
) -> KeypointSchema:
    keypoints = [k.strip() for k in spec.keypoints]
    for i, name in enumerate(keypoints):
        if name.lower() in (k.lower() for k in keypoints[:i]):
            raise invalid(
                f"keypoint {name!r} is listed twice (names are compared case-insensitively)",
                path=f"{path}.keypoints[{i}]",
            )
    if current is not None and len(keypoints) < len(current.keypoints):
        raise invalid(
            f"keypoints can't be removed: labels store points by their index. The schema has "
            f"{len(current.keypoints)}, the request {len(keypoints)}; rename points in place or add "
            "them at the end, or create a new keypoint schema",
            path=f"{path}.keypoints",
        )
    edges: set[frozenset[int]] = set()
    for i, (a, b) in enumerate(spec.skeleton):
        for j, index in enumerate((a, b)):
            if not 0 <= index < len(keypoints):
                raise invalid(
                    f"keypoint index {index} is out of range: there are {len(keypoints)} keypoints "
                    f"(0 to {len(keypoints) - 1})",
                    path=f"{path}.skeleton[{i}][{j}]",
                )
        if a == b:
            raise invalid(f"edge [{a}, {b}] joins a keypoint to itself", path=f"{path}.skeleton[{i}]")
        if frozenset((a, b)) in edges:
            raise invalid(f"edge [{a}, {b}] is listed twice (in either direction)", path=f"{path}.skeleton[{i}]")
        edges.add(frozenset((a, b)))
    if spec.colors is not None and len(spec.colors) != len(keypoints):
        raise invalid(
            f"colors has {len(spec.colors)} entries for {len(keypoints)} keypoints; give one per "
            "keypoint, or leave it out",
            path=f"{path}.colors",
        )
    order = spec.order if spec.order is not None else current.order if current else edit.next_order("keypoint_schema")
    return KeypointSchema(
        id=ident,
        name=spec.name.strip(),
        description=spec.description,
        keypoints=keypoints,
        skeleton=list(spec.skeleton),
        colors=spec.colors and [c.lower() for c in spec.colors],
        order=order,
        extra=spec.extra,
        archived=spec.archived,
        version=current.version if current else 1,
    )


def check_keypoint_schema(edit: Edit, item: KeypointSchema, path: str) -> None:
    if not item.archived:
        _unique(
            edit,
            "keypoint_schema",
            item,
            lambda k: k.name.lower(),
            "{it} is already named {other.name!r}; names are unique per project (case-insensitively)",
            f"{path}.name",
        )


BUILDERS: dict[str, Callable[..., Item]] = {
    "label_class": build_label_class,
    "attribute": build_attribute,
    "tag_group": build_tag_group,
    "tag_class": build_tag_class,
    "keypoint_schema": build_keypoint_schema,
}
CHECKS: dict[str, Callable[[Edit, Any, str], None]] = {
    "label_class": check_label_class,
    "attribute": check_attribute,
    "tag_group": check_tag_group,
    "tag_class": check_tag_class,
    "keypoint_schema": check_keypoint_schema,
}
SPECS: dict[str, type] = {
    "label_class": LabelClassSpec,
    "attribute": AttributeSpec,
    "tag_group": TagGroupSpec,
    "tag_class": TagClassSpec,
    "keypoint_schema": KeypointSchemaSpec,
}


def spec_of(kind: str, current: Item, changes: msgspec.Struct) -> Any:
    """The spec of `current` with the fields `changes` sets (a PATCH body), for `Edit.put`."""
    given = {
        name: value
        for name, value in msgspec.structs.asdict(changes).items()
        if value is not msgspec.UNSET and name != "version"
    }
    merged = {**msgspec.to_builtins(current), **msgspec.to_builtins(given)}
    merged.pop("tags", None)  # a group's tags are edited as tag classes
    return msgspec.convert(merged, SPECS[kind])  # both parts were validated already: this cannot fail
