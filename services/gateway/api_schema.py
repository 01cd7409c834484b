"""REST operations of the label schema: the whole schema, and CRUD for each kind of item.

Reads need the project role "viewer"; every change needs "manager".
"""

from __future__ import annotations

import msgspec

from proto import schema, subjects
from proto.subjects import SchemaKind
from services.gateway.operations import ByHand, Operation, PathParams, route

BASE = "/v1/projects/{project_id}"
TAG = "label schema"


def include_archived(kind: type) -> ByHand:
    """A `kind` of the path's project, and whether the query asks for archived items too."""

    def build(params: PathParams, query: schema.IncludeArchived, body: None) -> msgspec.Struct:
        return kind(project_id=params["project_id"], include_archived=query.include_archived)

    return ByHand(build, query=schema.IncludeArchived)


def merge_into(params: PathParams, query: None, body: schema.MergeLabelClass) -> schema.MergeLabelClassRequest:
    return schema.MergeLabelClassRequest(project_id=params["project_id"], id=params["class_id"], into=body.into)


def _crud(kind: SchemaKind, path: str, param: str, noun: str, plural: str) -> tuple[Operation, ...]:
    """createX, listXs, getX, updateX, deleteX of one kind, at `BASE/path` and `BASE/path/{param}`."""
    many, one = f"{BASE}/{path}", f"{BASE}/{path}/{{{param}}}"
    return (
        route("POST", many, f"create{noun}", kind.create, tag=TAG, role="manager", status=201, body="item"),
        route(
            "GET",
            many,
            f"list{plural}",
            kind.list,
            tag=TAG,
            role="viewer",
            to_request=include_archived(schema.ListSchemaItems),
        ),
        route("GET", one, f"get{noun}", kind.get, tag=TAG, role="viewer"),
        route("PATCH", one, f"update{noun}", kind.update, tag=TAG, role="manager", body="changes"),
        route("DELETE", one, f"delete{noun}", kind.delete, tag=TAG, role="manager"),
    )


# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("GET", f"{BASE}/schema", "getLabelSchema", subjects.GET_LABEL_SCHEMA, tag=TAG, role="viewer",
          to_request=include_archived(schema.GetSchema)),
    route("PUT", f"{BASE}/schema", "replaceLabelSchema", subjects.REPLACE_LABEL_SCHEMA, tag=TAG, role="manager",
          body="document"),
    *_crud(subjects.LABEL_CLASS, "label-classes", "class_id", "LabelClass", "LabelClasses"),
    route("POST", f"{BASE}/label-classes/{{class_id}}/merge", "mergeLabelClass", subjects.MERGE_LABEL_CLASS, tag=TAG,
          role="manager", to_request=ByHand(merge_into, body=schema.MergeLabelClass)),
    *_crud(subjects.ATTRIBUTE, "attributes", "attribute_id", "Attribute", "Attributes"),
    *_crud(subjects.TAG_GROUP, "tag-groups", "group_id", "TagGroup", "TagGroups"),
    *_crud(subjects.TAG_CLASS, "tag-classes", "tag_id", "TagClass", "TagClasses"),
    *_crud(subjects.KEYPOINT_SCHEMA, "keypoint-schemas", "keypoint_schema_id", "KeypointSchema", "KeypointSchemas"),
)
# fmt: on
