"""REST operations for imports of labelled data (COCO, YOLO, VOC, native) and their per-image report.

They live under `label-imports`: `imports` is ingest's, whose runs are the image imports."""

from __future__ import annotations

from proto import releases, subjects
from services.gateway.operations import Operation, fixed

IMPORTS = "/v1/projects/{project_id}/label-imports"
IMPORT = IMPORTS + "/{import_id}"


def import_ref(params, query, body) -> releases.ImportRef:
    return releases.ImportRef(project_id=params["project_id"], import_id=params["import_id"])


OPERATIONS: tuple[Operation, ...] = (
    Operation(method="POST", path=IMPORTS, operation_id="createLabelImport", tag="releases", role="manager",
              status=201, summary=subjects.CREATE_IMPORT.summary, command=fixed(subjects.CREATE_IMPORT),
              reply=releases.Import, body=releases.CreateImport,
              to_request=lambda params, query, body: releases.CreateImportRequest(project_id=params["project_id"],
                                                                                  body=body)),
    Operation(method="POST", path=IMPORT + "/start", operation_id="startLabelImport", tag="releases",
              role="manager", summary=subjects.START_IMPORT.summary, command=fixed(subjects.START_IMPORT),
              reply=releases.Import, to_request=import_ref),
    Operation(method="GET", path=IMPORT, operation_id="getLabelImport", tag="releases", role="viewer",
              summary=subjects.GET_IMPORT.summary, command=fixed(subjects.GET_IMPORT), reply=releases.Import,
              to_request=import_ref),
    Operation(method="GET", path=IMPORT + "/items", operation_id="listLabelImportItems", tag="releases",
              role="viewer", summary=subjects.LIST_IMPORT_ITEMS.summary, command=fixed(subjects.LIST_IMPORT_ITEMS),
              reply=releases.ImportItemPage, query=releases.ListImportItems,
              to_request=lambda params, query, body: releases.ListImportItemsRequest(
                  project_id=params["project_id"], import_id=params["import_id"], query=query)),
)
