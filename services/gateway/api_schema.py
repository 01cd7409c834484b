"""REST operations of the label schema: the whole schema, and CRUD for each kind of item.

Reads need the project role "viewer"; every change needs "manager".
"""

from __future__ import annotations

from proto import common, schema, subjects
from proto.subjects import SchemaKind
from services.gateway.operations import Operation, fixed

BASE = "/v1/projects/{project_id}"
TAG = "label schema"


def _crud(kind: SchemaKind, path: str, param: str, noun: str, plural: str, create: type,
          update: type) -> tuple[Operation, ...]:
    """createX, listXs, getX, updateX, deleteX of one kind, at `BASE/path` and `BASE/path/{param}`."""
    one = f"{BASE}/{path}/{{{param}}}"
    item, items = kind.get.reply, kind.list.reply

    def ref(params, query, body) -> schema.SchemaItemRef:
        return schema.SchemaItemRef(project_id=params["project_id"], id=params[param])

    return (
        Operation(method="POST", path=f"{BASE}/{path}", operation_id=f"create{noun}", tag=TAG,
                  summary=kind.create.summary, command=fixed(kind.create), reply=item, body=create, status=201,
                  role="manager",
                  to_request=lambda params, query, body: schema.CreateSchemaItem(project_id=params["project_id"],
                                                                                 item=body)),
        Operation(method="GET", path=f"{BASE}/{path}", operation_id=f"list{plural}", tag=TAG,
                  summary=kind.list.summary, command=fixed(kind.list), reply=items, query=schema.IncludeArchived,
                  role="viewer",
                  to_request=lambda params, query, body: schema.ListSchemaItems(
                      project_id=params["project_id"], include_archived=query.include_archived)),
        Operation(method="GET", path=one, operation_id=f"get{noun}", tag=TAG, summary=kind.get.summary,
                  command=fixed(kind.get), reply=item, role="viewer", to_request=ref),
        Operation(method="PATCH", path=one, operation_id=f"update{noun}", tag=TAG, summary=kind.update.summary,
                  command=fixed(kind.update), reply=item, body=update, role="manager",
                  to_request=lambda params, query, body: schema.UpdateSchemaItem(
                      project_id=params["project_id"], id=params[param], changes=body)),
        Operation(method="DELETE", path=one, operation_id=f"delete{noun}", tag=TAG, summary=kind.delete.summary,
                  command=fixed(kind.delete), reply=common.Empty, status=204, role="manager", to_request=ref),
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(method="GET", path=f"{BASE}/schema", operation_id="getLabelSchema", tag=TAG,
              summary=subjects.GET_LABEL_SCHEMA.summary, command=fixed(subjects.GET_LABEL_SCHEMA),
              reply=schema.LabelSchema, query=schema.IncludeArchived, role="viewer",
              to_request=lambda params, query, body: schema.GetSchema(project_id=params["project_id"],
                                                                      include_archived=query.include_archived)),
    Operation(method="PUT", path=f"{BASE}/schema", operation_id="replaceLabelSchema", tag=TAG,
              summary=subjects.REPLACE_LABEL_SCHEMA.summary, command=fixed(subjects.REPLACE_LABEL_SCHEMA),
              reply=schema.LabelSchema, body=schema.SchemaDocument, role="manager",
              to_request=lambda params, query, body: schema.ReplaceSchema(project_id=params["project_id"],
                                                                          document=body)),
    *_crud(subjects.LABEL_CLASS, "label-classes", "class_id", "LabelClass", "LabelClasses",
           schema.CreateLabelClass, schema.UpdateLabelClass),
    Operation(method="POST", path=f"{BASE}/label-classes/{{class_id}}/merge", operation_id="mergeLabelClass",
              tag=TAG, summary=subjects.MERGE_LABEL_CLASS.summary, command=fixed(subjects.MERGE_LABEL_CLASS),
              reply=schema.LabelClassMerged, body=schema.MergeLabelClass, role="manager",
              to_request=lambda params, query, body: schema.MergeLabelClassRequest(
                  project_id=params["project_id"], id=params["class_id"], into=body.into)),
    *_crud(subjects.ATTRIBUTE, "attributes", "attribute_id", "Attribute", "Attributes",
           schema.CreateAttribute, schema.UpdateAttribute),
    *_crud(subjects.TAG_GROUP, "tag-groups", "group_id", "TagGroup", "TagGroups",
           schema.CreateTagGroup, schema.UpdateTagGroup),
    *_crud(subjects.TAG_CLASS, "tag-classes", "tag_id", "TagClass", "TagClasses",
           schema.CreateTagClass, schema.UpdateTagClass),
    *_crud(subjects.KEYPOINT_SCHEMA, "keypoint-schemas", "keypoint_schema_id", "KeypointSchema", "KeypointSchemas",
           schema.CreateKeypointSchema, schema.UpdateKeypointSchema),
)
