"""REST operations for labelsets, labels, objects and the audit trail."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

LABELSETS = "/v1/projects/{project_id}/labelsets"
LABELSET = LABELSETS + "/{labelset}"
LABEL = "/v1/projects/{project_id}/samples/{sample_id}/labels/{labelset}"

# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    # -- labelsets
    route("POST", LABELSETS, "createLabelset", subjects.CREATE_LABELSET, tag="labels", role="manager", status=201,
          body="labelset"),
    route("GET", LABELSETS, "listLabelsets", subjects.LIST_LABELSETS, tag="labels", role="viewer"),
    route("GET", LABELSET, "getLabelset", subjects.GET_LABELSET, tag="labels", role="viewer"),
    route("PATCH", LABELSET, "updateLabelset", subjects.UPDATE_LABELSET, tag="labels", role="manager", body="changes"),
    route("DELETE", LABELSET, "deleteLabelset", subjects.DELETE_LABELSET, tag="labels", role="manager"),
    # -- one sample's label
    route("GET", LABEL, "getLabel", subjects.GET_LABEL, tag="labels", role="viewer"),
    route("PUT", LABEL, "replaceLabel", subjects.PUT_LABEL, tag="labels", role="labeler", body="label"),
    route("PATCH", LABEL, "updateLabel", subjects.UPDATE_LABEL, tag="labels", role="labeler", body="changes"),
    route("DELETE", LABEL, "deleteLabel", subjects.DELETE_LABEL, tag="labels", role="labeler"),
    # -- objects of many samples
    route("POST", LABELSET + "/labels", "replaceLabels", subjects.PUT_LABELS, tag="labels", role="labeler",
          body="body"),
    route("POST", LABELSET + "/labels/read", "getLabels", subjects.GET_LABELS, tag="labels", role="viewer",
          body="body"),
    route("POST", LABELSET + "/objects", "upsertObjects", subjects.UPSERT_OBJECTS, tag="labels", role="labeler",
          body="body"),
    route("POST", LABELSET + "/objects/delete", "deleteObjects", subjects.DELETE_OBJECTS, tag="labels", role="labeler",
          body="body"),
    route("GET", LABELSET + "/objects", "listObjects", subjects.LIST_OBJECTS, tag="labels", role="viewer",
          query="query"),
    # -- audit trail
    route("GET", "/v1/projects/{project_id}/audit", "listAudit", subjects.LIST_AUDIT, tag="labels", role="viewer",
          query="query"),
)
# fmt: on
