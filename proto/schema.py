"""The label schema of a project: label classes, attributes, tag groups with their tag classes, and
keypoint schemas; the commands that read and edit it and the events every edit emits.

Each kind comes in four shapes:
- `X`: what the API returns and events carry;
- `CreateX`: the POST body;
- `UpdateX`: the PATCH body, every field optional (left out = unchanged), `version` checked when given;
- `XSpec`: one item of the PUT .../schema document: `CreateX` plus optional `id`, `version` and
  `archived`, so that a document from GET .../schema can be sent back unchanged.

Items are never removed: deleting one archives it (see services/catalog/schema.py for the rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from proto.catalog import Description

ItemName = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
Color = Annotated[str, Meta(pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb", examples=["#1f77b4"])]
ExternalId = Annotated[
    str, Meta(min_length=1, max_length=200, description="The id of this item in another system; unique per project")
]
Order = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1, description="Lists are sorted by it, then by name")]
ItemId = Annotated[str, Meta(description="A UUID")]
# Fields of other products kept as they were sent (compat dialects use it); Loupe does not read it.
Extra = dict[str, Any]

ClassKind = Literal["object", "background"]
AttributeType = Literal["SELECTION", "MULTIPLE_SELECTION", "TEXT", "INT", "FLOAT", "BOOL"]
AttributeSubject = Literal["IMAGE", "LABEL"]  # IMAGE: one value per image; LABEL: one per labelled object
TagSelection = Literal["SINGLE", "MULTIPLE"]  # how many tags of the group one image may have
ValueText = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
KeypointName = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
Bound = int | float
AttributeDefault = str | int | float | bool | list[str] | None
# Indexes into `keypoints`. A two-item list rather than a tuple: OpenAPI tools choke on the tuple's
# `prefixItems`, and both ends are integers anyway.
SkeletonEdge = Annotated[list[int], Meta(min_length=2, max_length=2)]


# -- label classes ----------------------------------------------------------------------------------


class LabelClass(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    kind: ClassKind
    color: str
    order: int
    description: str
    external_id: str | None
    keypoint_schema_id: str | None
    extra: Extra
    archived: bool  # hidden from default listings and refused for new labels; existing labels keep it
    version: int


class CreateLabelClass(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ItemName  # unique among the project's active classes, case-insensitively
    kind: ClassKind = "object"
    color: Color | None = None  # left out: picked from a fixed palette by `order`
    order: Order | None = None  # left out: after the last class
    description: Description = ""
    external_id: ExternalId | None = None
    keypoint_schema_id: ItemId | None = None
    extra: Extra = {}


# Subclasses repeat `frozen=True`: msgspec inherits it, but type checkers only see it where it is written.
class LabelClassSpec(CreateLabelClass, frozen=True):
    id: ItemId | None = None  # matched by id when given (a new UUID creates the item with it), else by name
    version: int | None = None  # when given, must be the item's current version (else 409)
    archived: bool = False


class UpdateLabelClass(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ItemName | UnsetType = UNSET
    kind: ClassKind | UnsetType = UNSET
    color: Color | UnsetType = UNSET
    order: Order | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    external_id: ExternalId | None | UnsetType = UNSET
    keypoint_schema_id: ItemId | None | UnsetType = UNSET
    extra: Extra | UnsetType = UNSET
    archived: bool | UnsetType = UNSET  # false restores an archived class
    version: int | None = None


class MergeLabelClass(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    into: ItemId  # an active class of the same project and kind


class LabelClassList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[LabelClass]
    schema_version: int


# -- attributes -------------------------------------------------------------------------------------


class AttributeValue(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    value: str
    archived: bool  # removed from the list: kept so existing labels still resolve, refused for new ones


class AttributeValueSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: ItemId | None = None  # matched by id when given, else by value (case-insensitively)
    value: ValueText
    archived: bool = False


class Attribute(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    type: AttributeType
    subject: AttributeSubject
    values: list[AttributeValue]  # SELECTION and MULTIPLE_SELECTION only
    min: Bound | None
    max: Bound | None
    required: bool
    default: AttributeDefault
    description: str
    order: int
    class_ids: list[str]  # subject LABEL: the classes it applies to; empty: all classes
    extra: Extra
    archived: bool
    version: int


class CreateAttribute(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ItemName
    type: AttributeType
    subject: AttributeSubject = "LABEL"
    # Required for the selection types, refused for the others; a plain string is a new value.
    values: list[ValueText | AttributeValueSpec] = []
    min: Bound | None = None  # INT and FLOAT only
    max: Bound | None = None
    required: bool = False
    default: AttributeDefault = None  # must be a valid value itself (SELECTION: one of `values`)
    description: Description = ""
    order: Order | None = None
    class_ids: list[ItemId] = []
    extra: Extra = {}


class AttributeSpec(CreateAttribute, frozen=True):
    id: ItemId | None = None
    version: int | None = None
    archived: bool = False


class UpdateAttribute(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`values` replaces the list: values left out are archived, not removed. `type` may only go from
    SELECTION to MULTIPLE_SELECTION and `subject` may not change: existing labels would no longer fit."""

    name: ItemName | UnsetType = UNSET
    type: AttributeType | UnsetType = UNSET
    subject: AttributeSubject | UnsetType = UNSET
    values: list[ValueText | AttributeValueSpec] | UnsetType = UNSET
    min: Bound | None | UnsetType = UNSET
    max: Bound | None | UnsetType = UNSET
    required: bool | UnsetType = UNSET
    default: AttributeDefault | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    order: Order | UnsetType = UNSET
    class_ids: list[ItemId] | UnsetType = UNSET
    extra: Extra | UnsetType = UNSET
    archived: bool | UnsetType = UNSET
    version: int | None = None


class AttributeList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Attribute]
    schema_version: int


# -- tag groups and tag classes ---------------------------------------------------------------------


class TagClass(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    group_id: str
    name: str
    color: str
    order: int
    description: str
    external_id: str | None
    extra: Extra
    archived: bool
    version: int


class TagClassFields(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ItemName  # unique among the group's active tags, case-insensitively
    color: Color | None = None
    order: Order | None = None
    description: Description = ""
    external_id: ExternalId | None = None  # unique among the project's active tags
    extra: Extra = {}


class CreateTagClass(TagClassFields, frozen=True):
    group_id: ItemId


class TagClassSpec(TagClassFields, frozen=True):
    id: ItemId | None = None
    group_id: ItemId | None = None  # when given, the id of the group it is listed under
    version: int | None = None
    archived: bool = False


class UpdateTagClass(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ItemName | UnsetType = UNSET
    group_id: ItemId | UnsetType = UNSET  # moves the tag to another group
    color: Color | UnsetType = UNSET
    order: Order | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    external_id: ExternalId | None | UnsetType = UNSET
    extra: Extra | UnsetType = UNSET
    archived: bool | UnsetType = UNSET
    version: int | None = None


class TagClassList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TagClass]
    schema_version: int


class TagGroup(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    selection: TagSelection
    required: bool  # every image needs a tag of this group
    order: int
    description: str
    extra: Extra
    archived: bool  # its tags can't be used for new labels either
    version: int
    tags: list[TagClass] = []  # sorted by order; archived ones only when archived items are asked for


class CreateTagGroup(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ItemName  # unique among the project's active groups, case-insensitively
    selection: TagSelection = "SINGLE"
    required: bool = False
    order: Order | None = None
    description: Description = ""
    extra: Extra = {}
    # A Sequence, so that TagGroupSpec may narrow it to its own kind of tag.
    tags: Sequence[TagClassFields] = []  # created with the group


class TagGroupSpec(CreateTagGroup, frozen=True):
    id: ItemId | None = None
    version: int | None = None
    archived: bool = False
    tags: list[TagClassSpec] = []  # the group's tags; its tags left out are archived


class UpdateTagGroup(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The group's own fields; its tags are edited as tag classes."""

    name: ItemName | UnsetType = UNSET
    selection: TagSelection | UnsetType = UNSET
    required: bool | UnsetType = UNSET
    order: Order | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    extra: Extra | UnsetType = UNSET
    archived: bool | UnsetType = UNSET
    version: int | None = None


class TagGroupList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TagGroup]
    schema_version: int


# -- keypoint schemas -------------------------------------------------------------------------------


class KeypointSchema(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    description: str
    keypoints: list[str]  # labels store points by index into this list
    skeleton: list[SkeletonEdge]
    colors: list[str] | None  # one per keypoint
    order: int
    extra: Extra
    archived: bool
    version: int


class CreateKeypointSchema(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ItemName
    keypoints: Annotated[list[KeypointName], Meta(min_length=1, max_length=1000)]  # unique names
    skeleton: list[SkeletonEdge] = []  # no self-loops, each edge once (either direction)
    colors: list[Color] | None = None
    description: Description = ""
    order: Order | None = None
    extra: Extra = {}


class KeypointSchemaSpec(CreateKeypointSchema, frozen=True):
    id: ItemId | None = None
    version: int | None = None
    archived: bool = False


class UpdateKeypointSchema(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`keypoints` may rename points in place and add new ones at the end, never drop one."""

    name: ItemName | UnsetType = UNSET
    keypoints: Annotated[list[KeypointName], Meta(min_length=1, max_length=1000)] | UnsetType = UNSET
    skeleton: list[SkeletonEdge] | UnsetType = UNSET
    colors: list[Color] | None | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    order: Order | UnsetType = UNSET
    extra: Extra | UnsetType = UNSET
    archived: bool | UnsetType = UNSET
    version: int | None = None


class KeypointSchemaList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[KeypointSchema]
    schema_version: int


# -- the whole schema -------------------------------------------------------------------------------


class LabelSchema(msgspec.Struct, frozen=True, kw_only=True):
    version: int  # grows by one with every committed change to the project's schema
    label_classes: list[LabelClass]
    attributes: list[Attribute]
    tag_groups: list[TagGroup]
    keypoint_schemas: list[KeypointSchema]


class SchemaDocument(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole schema as PUT takes it. Items are matched by id, else by name; active items left out
    are archived. Nothing that is already so changes, so a GET document sent back changes nothing."""

    version: int | None = None  # when given, must be the schema's current version (else 409)
    label_classes: list[LabelClassSpec] = []
    attributes: list[AttributeSpec] = []
    tag_groups: list[TagGroupSpec] = []
    keypoint_schemas: list[KeypointSchemaSpec] = []


# -- command requests -------------------------------------------------------------------------------

Body = TypeVar("Body")


class IncludeArchived(msgspec.Struct, frozen=True, kw_only=True):
    include_archived: bool = False


class GetSchema(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    include_archived: bool = False


class ListSchemaItems(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    include_archived: bool = False


class SchemaItemRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    id: str


class CreateSchemaItem(msgspec.Struct, Generic[Body], frozen=True, kw_only=True):
    project_id: str
    item: Body


class UpdateSchemaItem(msgspec.Struct, Generic[Body], frozen=True, kw_only=True):
    project_id: str
    id: str
    changes: Body


class MergeLabelClassRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    id: str
    into: str


class ReplaceSchema(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    document: SchemaDocument


# -- events: each carries the item as it now is and the schema version it is part of ---------------


class LabelClassChanged(msgspec.Struct, frozen=True, kw_only=True):
    item: LabelClass
    changed: list[str]  # fields that changed; empty for `created`
    schema_version: int


class LabelClassMerged(msgspec.Struct, frozen=True, kw_only=True):
    """Move every object of class `source` to `target`; `source` is now archived."""

    source: LabelClass
    target: LabelClass
    schema_version: int


class AttributeChanged(msgspec.Struct, frozen=True, kw_only=True):
    item: Attribute
    changed: list[str]
    schema_version: int


class TagGroupChanged(msgspec.Struct, frozen=True, kw_only=True):
    item: TagGroup  # without its tags: they have their own events
    changed: list[str]
    schema_version: int


class TagClassChanged(msgspec.Struct, frozen=True, kw_only=True):
    item: TagClass
    changed: list[str]
    schema_version: int


class KeypointSchemaChanged(msgspec.Struct, frozen=True, kw_only=True):
    item: KeypointSchema
    changed: list[str]
    schema_version: int
