"""REST operations for labelsets, labels, objects and the audit trail."""

from __future__ import annotations

from proto import annotation, common, subjects
from services.gateway.operations import Operation, fixed

LABELSETS = "/v1/projects/{project_id}/labelsets"
LABELSET = LABELSETS + "/{labelset}"
LABEL = "/v1/projects/{project_id}/samples/{sample_id}/labels/{labelset}"


def labelset_ref(params, query, body) -> annotation.LabelsetRef:
    return annotation.LabelsetRef(project_id=params["project_id"], labelset=params["labelset"])


def label_ref(params, query, body) -> annotation.LabelRef:
    return annotation.LabelRef(project_id=params["project_id"], sample_id=params["sample_id"],
                               labelset=params["labelset"])


OPERATIONS: tuple[Operation, ...] = (
    # -- labelsets
    Operation(method="POST", path=LABELSETS, operation_id="createLabelset", tag="labels", role="manager",
              summary=subjects.CREATE_LABELSET.summary, command=fixed(subjects.CREATE_LABELSET),
              reply=annotation.Labelset, body=annotation.CreateLabelset, status=201,
              to_request=lambda params, query, body: annotation.CreateLabelsetRequest(
                  project_id=params["project_id"], labelset=body)),
    Operation(method="GET", path=LABELSETS, operation_id="listLabelsets", tag="labels", role="viewer",
              summary=subjects.LIST_LABELSETS.summary, command=fixed(subjects.LIST_LABELSETS),
              reply=annotation.LabelsetList,
              to_request=lambda params, query, body: annotation.ProjectLabelsets(project_id=params["project_id"])),
    Operation(method="GET", path=LABELSET, operation_id="getLabelset", tag="labels", role="viewer",
              summary=subjects.GET_LABELSET.summary, command=fixed(subjects.GET_LABELSET),
              reply=annotation.Labelset, to_request=labelset_ref),
    Operation(method="PATCH", path=LABELSET, operation_id="updateLabelset", tag="labels", role="manager",
              summary=subjects.UPDATE_LABELSET.summary, command=fixed(subjects.UPDATE_LABELSET),
              reply=annotation.Labelset, body=annotation.UpdateLabelset,
              to_request=lambda params, query, body: annotation.UpdateLabelsetRequest(
                  project_id=params["project_id"], labelset=params["labelset"], changes=body)),
    Operation(method="DELETE", path=LABELSET, operation_id="deleteLabelset", tag="labels", role="manager",
              summary=subjects.DELETE_LABELSET.summary, command=fixed(subjects.DELETE_LABELSET),
              reply=common.Empty, status=204, to_request=labelset_ref),
    # -- one sample's label
    Operation(method="GET", path=LABEL, operation_id="getLabel", tag="labels", role="viewer",
              summary=subjects.GET_LABEL.summary, command=fixed(subjects.GET_LABEL), reply=annotation.Label,
              to_request=label_ref),
    Operation(method="PUT", path=LABEL, operation_id="replaceLabel", tag="labels", role="labeler",
              summary=subjects.PUT_LABEL.summary, command=fixed(subjects.PUT_LABEL), reply=annotation.Label,
              body=annotation.LabelInput,
              to_request=lambda params, query, body: annotation.PutLabelRequest(
                  project_id=params["project_id"], sample_id=params["sample_id"], labelset=params["labelset"],
                  label=body)),
    Operation(method="PATCH", path=LABEL, operation_id="updateLabel", tag="labels", role="labeler",
              summary=subjects.UPDATE_LABEL.summary, command=fixed(subjects.UPDATE_LABEL), reply=annotation.Label,
              body=annotation.LabelChanges,
              to_request=lambda params, query, body: annotation.UpdateLabelRequest(
                  project_id=params["project_id"], sample_id=params["sample_id"], labelset=params["labelset"],
                  changes=body)),
    Operation(method="DELETE", path=LABEL, operation_id="deleteLabel", tag="labels", role="labeler",
              summary=subjects.DELETE_LABEL.summary, command=fixed(subjects.DELETE_LABEL), reply=common.Empty,
              status=204, to_request=label_ref),
    # -- objects of many samples
    Operation(method="POST", path=LABELSET + "/objects", operation_id="upsertObjects", tag="labels", role="labeler",
              summary=subjects.UPSERT_OBJECTS.summary, command=fixed(subjects.UPSERT_OBJECTS),
              reply=annotation.WrittenObjects, body=annotation.UpsertObjects,
              to_request=lambda params, query, body: annotation.UpsertObjectsRequest(
                  project_id=params["project_id"], labelset=params["labelset"], body=body)),
    Operation(method="POST", path=LABELSET + "/objects/delete", operation_id="deleteObjects", tag="labels",
              role="labeler", summary=subjects.DELETE_OBJECTS.summary, command=fixed(subjects.DELETE_OBJECTS),
              reply=annotation.DeletedObjects, body=annotation.DeleteObjects,
              to_request=lambda params, query, body: annotation.DeleteObjectsRequest(
                  project_id=params["project_id"], labelset=params["labelset"], body=body)),
    Operation(method="GET", path=LABELSET + "/objects", operation_id="listObjects", tag="labels", role="viewer",
              summary=subjects.LIST_OBJECTS.summary, command=fixed(subjects.LIST_OBJECTS),
              reply=annotation.ObjectPage, query=annotation.ListObjects,
              to_request=lambda params, query, body: annotation.ListObjectsRequest(
                  project_id=params["project_id"], labelset=params["labelset"], query=query)),
    # -- audit trail
    Operation(method="GET", path="/v1/projects/{project_id}/audit", operation_id="listAudit", tag="labels",
              role="viewer", summary=subjects.LIST_AUDIT.summary, command=fixed(subjects.LIST_AUDIT),
              reply=annotation.AuditPage, query=annotation.ListAudit,
              to_request=lambda params, query, body: annotation.ListAuditRequest(project_id=params["project_id"],
                                                                                 query=query)),
)
