"""The label schema: label classes, attributes and their links to classes, tag groups, tag classes and
keypoint schemas. Every item keeps Loupe's id; Hasty fields Loupe has no place for stay in `extra`."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from proto import schema, subjects
from proto.subjects import SchemaKind
from services.gateway.dialects.hasty.common import PROJECT, Routes, ask, json, no_content, norder, page_of
from services.gateway.dialects.hasty.labels import keypoint_class_id
from services.gateway.dialects.requests import body, project_id, uuid_param
from shared.errors import invalid

UNSET = msgspec.UNSET
DEFAULT_TAG_GROUP = "Tags"  # where tag classes created without a group go


# -- reading and writing items of any kind ----------------------------------------------------------


async def items_of(request: web.Request, kind: SchemaKind, pid: str) -> list[Any]:
    listed = await ask(request, kind.list, schema.ListSchemaItems(project_id=pid), project_id=pid, role="viewer")
    return listed.items


async def item_of(request: web.Request, kind: SchemaKind, pid: str, item_id: str) -> Any:
    return await ask(request, kind.get, schema.SchemaItemRef(project_id=pid, id=item_id), project_id=pid, role="viewer")


async def create_item(request: web.Request, kind: SchemaKind, pid: str, item: msgspec.Struct) -> Any:
    return await ask(
        request, kind.create, schema.CreateSchemaItem(project_id=pid, item=item), project_id=pid, role="manager"
    )


async def update_item(request: web.Request, kind: SchemaKind, pid: str, item_id: str, changes: msgspec.Struct) -> Any:
    return await ask(
        request,
        kind.update,
        schema.UpdateSchemaItem(project_id=pid, id=item_id, changes=changes),
        project_id=pid,
        role="manager",
    )


async def no_context(request: web.Request, pid: str) -> None:
    return None


def crud(
    kind: SchemaKind, path: str, param: str, to_json: Any, to_create: Any, to_update: Any, context: Any = no_context
) -> Routes:
    """List, create, get, replace and delete of one kind, at PROJECT/path[/{param}]; `to_json(item, context)`
    gets what `context(request, project_id)` read."""

    async def list_all(request: web.Request) -> web.Response:
        pid = project_id(request)
        known = await context(request, pid)
        return page_of(request, [to_json(item, known) for item in await items_of(request, kind, pid)])

    async def create(request: web.Request) -> web.Response:
        pid = project_id(request)
        item = await create_item(request, kind, pid, await to_create(request, pid))
        return json(to_json(item, await context(request, pid)), status=201)

    async def get(request: web.Request) -> web.Response:
        pid = project_id(request)
        item = await item_of(request, kind, pid, uuid_param(request, param))
        return json(to_json(item, await context(request, pid)))

    async def replace(request: web.Request) -> web.Response:
        pid = project_id(request)
        item_id = uuid_param(request, param)
        item = await update_item(request, kind, pid, item_id, await to_update(request, pid, item_id))
        return json(to_json(item, await context(request, pid)))

    async def delete(request: web.Request) -> web.Response:
        pid = project_id(request)
        await ask(
            request,
            kind.delete,
            schema.SchemaItemRef(project_id=pid, id=uuid_param(request, param)),
            project_id=pid,
            role="manager",
        )
        return no_content()

    many, one = f"{PROJECT}/{path}", f"{PROJECT}/{path}/{{{param}}}"
    return [
        ("GET", many, list_all),
        ("POST", many, create),
        ("GET", one, get),
        ("PUT", one, replace),
        ("PATCH", one, replace),
        ("DELETE", one, delete),
    ]


def color(value: str | None) -> str | None:
    """Hasty colours may carry an alpha (#rrggbbaa); Loupe's are opaque #rrggbb."""
    return value[:7] if value and len(value) == 9 else value


def extra_fields(struct: msgspec.Struct, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in names if getattr(struct, name) is not None}


# -- label classes ----------------------------------------------------------------------------------


class LabelClassBody(msgspec.Struct, kw_only=True):
    name: str
    description: str | None = None
    type: schema.ClassKind = "object"
    color: str | None = None
    norder: float | None = None
    external_id: str | None = None
    icon_url: str | None = None
    parent_id: str | None = None
    use_description_as_prompt: bool | None = None


CLASS_EXTRA = ("icon_url", "parent_id", "use_description_as_prompt")


def label_class_json(item: schema.LabelClass, context: None = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "description": item.description,
        "type": item.kind,
        "color": f"{item.color}ff",  # Hasty's #RRGGBBAA; Loupe's colours are opaque
        "norder": item.order,
        "external_id": item.external_id,
        "keypoint_schema_id": item.keypoint_schema_id,
        **{name: item.extra.get(name) for name in CLASS_EXTRA},
    }


async def new_label_class(request: web.Request, pid: str) -> schema.CreateLabelClass:
    new = await body(request, LabelClassBody)
    return schema.CreateLabelClass(
        name=new.name,
        kind=new.type,
        color=color(new.color),
        order=norder(new.norder),
        description=new.description or "",
        external_id=new.external_id or None,
        extra=extra_fields(new, CLASS_EXTRA),
    )


async def label_class_changes(request: web.Request, pid: str, item_id: str) -> schema.UpdateLabelClass:
    new = await body(request, LabelClassBody)
    order = norder(new.norder)
    return schema.UpdateLabelClass(
        name=new.name,
        kind=new.type,
        color=color(new.color) or UNSET,
        order=UNSET if order is None else order,
        description=new.description or "",
        external_id=new.external_id or None,
        extra=extra_fields(new, CLASS_EXTRA),
    )


# -- attributes -------------------------------------------------------------------------------------


class AttributeValueBody(msgspec.Struct, kw_only=True):
    value: str
    id: str | None = None


class AttributeBody(msgspec.Struct, kw_only=True):
    name: str
    type: str
    subject_type: str = "LABEL"
    is_required: bool = False
    default: schema.AttributeDefault = None
    description: str | None = None
    min: float | None = None
    max: float | None = None
    norder: float | None = None
    values: list[AttributeValueBody] | None = None
    prediction_type: str | None = None
    prediction_model: str | None = None
    prediction_prompt: str | None = None


ATTRIBUTE_EXTRA = ("prediction_type", "prediction_model", "prediction_prompt")
ATTRIBUTE_TYPES = ("SELECTION", "MULTIPLE-SELECTION", "TEXT", "INT", "FLOAT", "BOOL")


def attribute_json(item: schema.Attribute, context: None = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "type": item.type.replace("_", "-"),
        "subject_type": item.subject,
        "is_required": item.required,
        "default": item.default,
        "description": item.description,
        "min": item.min,
        "max": item.max,
        "norder": item.order,
        "class_count": len(item.class_ids),
        "values": [{"id": value.id, "value": value.value} for value in item.values if not value.archived],
        **{name: item.extra.get(name) for name in ATTRIBUTE_EXTRA},
    }


def attribute_fields(new: AttributeBody) -> dict[str, Any]:
    if new.type not in ATTRIBUTE_TYPES:
        raise invalid(f"type {new.type!r} is not one of {', '.join(ATTRIBUTE_TYPES)}", path="type")
    if new.subject_type not in ("IMAGE", "LABEL"):
        raise invalid(
            f"subject_type {new.subject_type!r}: Loupe has attributes of IMAGE and LABEL only (no videos)",
            path="subject_type",
        )
    selection = new.type in ("SELECTION", "MULTIPLE-SELECTION")
    return {
        "name": new.name,
        "type": new.type.replace("-", "_"),
        "values": [schema.AttributeValueSpec(id=v.id, value=v.value) for v in new.values or []] if selection else [],
        "min": new.min,
        "max": new.max,
        "required": new.is_required,
        "default": new.default,
        "description": new.description or "",
        "extra": extra_fields(new, ATTRIBUTE_EXTRA),
    }


async def new_attribute(request: web.Request, pid: str) -> schema.CreateAttribute:
    new = await body(request, AttributeBody)
    return schema.CreateAttribute(
        subject=new.subject_type,
        order=norder(new.norder),
        **attribute_fields(new),
    )


async def attribute_changes(request: web.Request, pid: str, item_id: str) -> schema.UpdateAttribute:
    new = await body(request, AttributeBody)
    order = norder(new.norder)
    return schema.UpdateAttribute(order=UNSET if order is None else order, **attribute_fields(new))


# -- attribute ↔ class links ------------------------------------------------------------------------


class AttributeClassLink(msgspec.Struct, kw_only=True):
    attribute_id: uuid.UUID
    class_id: uuid.UUID
    attribute_order: float = 0
    class_order: float = 0


async def list_attribute_classes(request: web.Request) -> web.Response:
    pid = project_id(request)
    classes = {c.id: c for c in await items_of(request, subjects.LABEL_CLASS, pid)}
    return json(
        [
            {
                "attribute_id": attribute.id,
                "class_id": class_id,
                "attribute_order": attribute.order,
                "class_order": classes[class_id].order if class_id in classes else 0,
            }
            for attribute in await items_of(request, subjects.ATTRIBUTE, pid)
            for class_id in attribute.class_ids
        ]
    )


async def change_links(request: web.Request, add: bool) -> list[AttributeClassLink]:
    """Add or remove attribute–class links; an attribute's links are its `class_ids`."""
    pid = project_id(request)
    links = await body(request, list[AttributeClassLink])
    attributes = {a.id: a for a in await items_of(request, subjects.ATTRIBUTE, pid)}
    wanted: dict[str, list[str]] = {}
    for i, link in enumerate(links):
        attribute = attributes.get(str(link.attribute_id))
        if attribute is None:
            raise invalid(
                f"attribute {link.attribute_id} is not an attribute of this project", path=f"[{i}].attribute_id"
            )
        current = wanted.setdefault(attribute.id, list(attribute.class_ids))
        class_id = str(link.class_id)
        if add and class_id not in current:
            current.append(class_id)
        elif not add and class_id in current:
            current.remove(class_id)
    for attribute_id, class_ids in wanted.items():
        if class_ids != attributes[attribute_id].class_ids:
            await update_item(
                request, subjects.ATTRIBUTE, pid, attribute_id, schema.UpdateAttribute(class_ids=class_ids)
            )
    return links


async def link_attribute_classes(request: web.Request) -> web.Response:
    return json(await change_links(request, add=True), status=201)


async def unlink_attribute_classes(request: web.Request) -> web.Response:
    await change_links(request, add=False)
    return no_content()


# -- tag groups and tag classes ---------------------------------------------------------------------

TAG_SELECTIONS: dict[str, schema.TagSelection] = {"SELECTION": "SINGLE", "MULTIPLE-SELECTION": "MULTIPLE"}


class TagGroupBody(msgspec.Struct, kw_only=True):
    name: str
    type: str = "SELECTION"
    is_required: bool = False
    norder: float | None = None


def tag_group_json(item: schema.TagGroup, context: None = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "type": "SELECTION" if item.selection == "SINGLE" else "MULTIPLE-SELECTION",
        "is_required": item.required,
        "norder": item.order,
    }


def selection(value: str) -> schema.TagSelection:
    if value not in TAG_SELECTIONS:
        raise invalid(f"type {value!r} is not one of SELECTION, MULTIPLE-SELECTION", path="type")
    return TAG_SELECTIONS[value]


async def new_tag_group(request: web.Request, pid: str) -> schema.CreateTagGroup:
    new = await body(request, TagGroupBody)
    return schema.CreateTagGroup(
        name=new.name, selection=selection(new.type), required=new.is_required, order=norder(new.norder)
    )


async def tag_group_changes(request: web.Request, pid: str, item_id: str) -> schema.UpdateTagGroup:
    new = await body(request, TagGroupBody)
    order = norder(new.norder)
    return schema.UpdateTagGroup(
        name=new.name, selection=selection(new.type), required=new.is_required, order=UNSET if order is None else order
    )


class TagClassBody(msgspec.Struct, kw_only=True):
    name: str
    norder: float | None = None
    tag_group_id: str | None = None
    tag_group_name: str | None = None


def tag_class_json(item: schema.TagClass, group_names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "norder": item.order,
        "tag_group_id": item.group_id,
        "tag_group_name": group_names.get(item.group_id),
    }


async def tag_group_names(request: web.Request, pid: str) -> dict[str, str]:
    return {group.id: group.name for group in await items_of(request, subjects.TAG_GROUP, pid)}


async def tag_group_for(request: web.Request, pid: str, new: TagClassBody) -> str:
    """The group a tag class goes in: the one named by id or name, else the default group, made when missing."""
    if new.tag_group_id:
        return new.tag_group_id
    name = new.tag_group_name or DEFAULT_TAG_GROUP
    for group in await items_of(request, subjects.TAG_GROUP, pid):
        if group.name.lower() == name.lower():
            return group.id
    group = await create_item(request, subjects.TAG_GROUP, pid, schema.CreateTagGroup(name=name, selection="MULTIPLE"))
    return group.id


async def new_tag_class(request: web.Request, pid: str) -> schema.CreateTagClass:
    new = await body(request, TagClassBody)
    return schema.CreateTagClass(
        name=new.name, group_id=await tag_group_for(request, pid, new), order=norder(new.norder)
    )


async def tag_class_changes(request: web.Request, pid: str, item_id: str) -> schema.UpdateTagClass:
    new = await body(request, TagClassBody)
    order = norder(new.norder)
    return schema.UpdateTagClass(
        name=new.name, order=UNSET if order is None else order, group_id=new.tag_group_id or UNSET
    )


# -- keypoint schemas -------------------------------------------------------------------------------


class KeypointClassBody(msgspec.Struct, kw_only=True):
    name: str
    norder: float = 0


class KeypointEdgeBody(msgspec.Struct, kw_only=True):
    keypoint_class_id_a: str
    keypoint_class_id_b: str
    color: str | None = None


class KeypointSchemaBody(msgspec.Struct, kw_only=True):
    name: str
    type: str = "pose"
    description: str | None = None
    norder: float | None = None
    keypoint_classes: list[KeypointClassBody] | None = None
    keypoint_skeleton: list[KeypointEdgeBody] | None = None


def keypoint_schema_json(item: schema.KeypointSchema, context: None = None) -> dict[str, Any]:
    ids = [keypoint_class_id(item.id, i) for i in range(len(item.keypoints))]
    return {
        "id": item.id,
        "name": item.name,
        "description": item.description,
        "type": item.extra.get("type", "pose"),
        "norder": item.order,
        "keypoint_classes": [
            {"id": ids[i], "keypoint_schema_id": item.id, "name": name, "norder": i, "min_points": 0, "max_points": 1}
            for i, name in enumerate(item.keypoints)
        ],
        "keypoint_skeleton": [
            {
                "id": str(uuid.uuid5(uuid.UUID(item.id), f"{a}-{b}")),
                "keypoint_schema_id": item.id,
                "keypoint_class_id_a": ids[a],
                "keypoint_class_id_b": ids[b],
            }
            for a, b in item.skeleton
        ],
    }


def keypoint_names(new: KeypointSchemaBody) -> list[str]:
    if not new.keypoint_classes:
        raise invalid("a keypoint schema needs its keypoint_classes", path="keypoint_classes")
    return [k.name for k in sorted(new.keypoint_classes, key=lambda k: k.norder)]


def skeleton(new: KeypointSchemaBody, schema_id: str | None) -> list[list[int]]:
    """Edges name keypoint class ids, which exist once the schema does: a new schema's skeleton is set by
    a PUT that follows."""
    if not new.keypoint_skeleton:
        return []
    if schema_id is None:
        raise invalid(
            "create the schema first, then PUT its keypoint_skeleton with the keypoint class ids it got",
            path="keypoint_skeleton",
        )
    index = {keypoint_class_id(schema_id, i): i for i in range(len(new.keypoint_classes or []))}
    edges = []
    for i, edge in enumerate(new.keypoint_skeleton):
        ends = index.get(edge.keypoint_class_id_a), index.get(edge.keypoint_class_id_b)
        if None in ends:
            raise invalid("an edge names a keypoint class this schema does not have", path=f"keypoint_skeleton[{i}]")
        edges.append(list(ends))
    return edges  # type: ignore[return-value]


async def new_keypoint_schema(request: web.Request, pid: str) -> schema.CreateKeypointSchema:
    new = await body(request, KeypointSchemaBody)
    return schema.CreateKeypointSchema(
        name=new.name,
        keypoints=keypoint_names(new),
        skeleton=skeleton(new, None),
        description=new.description or "",
        order=norder(new.norder),
        extra={"type": new.type},
    )


async def keypoint_schema_changes(request: web.Request, pid: str, item_id: str) -> schema.UpdateKeypointSchema:
    new = await body(request, KeypointSchemaBody)
    order = norder(new.norder)
    return schema.UpdateKeypointSchema(
        name=new.name,
        keypoints=keypoint_names(new),
        skeleton=skeleton(new, item_id),
        description=new.description or "",
        order=UNSET if order is None else order,
        extra={"type": new.type},
    )


class KeypointClassLink(msgspec.Struct, kw_only=True):
    keypoint_schema_id: str | None = None
    label_class_id: uuid.UUID
    label_class_order: float = 0


async def list_keypoint_links(request: web.Request) -> web.Response:
    pid = project_id(request)
    return json(
        [
            {"keypoint_schema_id": c.keypoint_schema_id, "label_class_id": c.id, "label_class_order": c.order}
            for c in await items_of(request, subjects.LABEL_CLASS, pid)
            if c.keypoint_schema_id
        ]
    )


async def change_keypoint_links(request: web.Request, link: bool) -> list[KeypointClassLink]:
    pid = project_id(request)
    links = await body(request, list[KeypointClassLink])
    for item in links:
        await update_item(
            request,
            subjects.LABEL_CLASS,
            pid,
            str(item.label_class_id),
            schema.UpdateLabelClass(keypoint_schema_id=item.keypoint_schema_id if link else None),
        )
    return links


async def link_keypoint_classes(request: web.Request) -> web.Response:
    return json(await change_keypoint_links(request, link=True), status=201)


async def unlink_keypoint_classes(request: web.Request) -> web.Response:
    await change_keypoint_links(request, link=False)
    return no_content()


ROUTES: Routes = [
    *crud(
        subjects.LABEL_CLASS, "label_classes", "label_class_id", label_class_json, new_label_class, label_class_changes
    ),
    *crud(subjects.ATTRIBUTE, "attributes", "attribute_id", attribute_json, new_attribute, attribute_changes),
    ("GET", PROJECT + "/attributes_classes", list_attribute_classes),
    ("POST", PROJECT + "/attributes_classes", link_attribute_classes),
    ("DELETE", PROJECT + "/attributes_classes", unlink_attribute_classes),
    *crud(subjects.TAG_GROUP, "tag_groups", "tag_group_id", tag_group_json, new_tag_group, tag_group_changes),
    *crud(
        subjects.TAG_CLASS,
        "tag_classes",
        "tag_class_id",
        tag_class_json,
        new_tag_class,
        tag_class_changes,
        context=tag_group_names,
    ),
    # Before the schemas' own routes, whose `{keypoint_schema_id}` would match `label_classes`.
    ("GET", PROJECT + "/keypoint_schemas/label_classes", list_keypoint_links),
    ("POST", PROJECT + "/keypoint_schemas/label_classes", link_keypoint_classes),
    ("DELETE", PROJECT + "/keypoint_schemas/label_classes", unlink_keypoint_classes),
    *crud(
        subjects.KEYPOINT_SCHEMA,
        "keypoint_schemas",
        "keypoint_schema_id",
        keypoint_schema_json,
        new_keypoint_schema,
        keypoint_schema_changes,
    ),
]
