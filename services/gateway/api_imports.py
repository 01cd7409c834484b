"""REST operations for imports of labelled data (COCO, YOLO, VOC, native) and their per-image report.

They live under `label-imports`: `imports` is ingest's, whose runs are the image imports."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

IMPORTS = "/v1/projects/{project_id}/label-imports"
IMPORT = IMPORTS + "/{import_id}"

# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("POST", IMPORTS, "createLabelImport", subjects.CREATE_LABEL_IMPORT, tag="releases", role="manager",
          status=201, body="body"),
    route("POST", IMPORT + "/start", "startLabelImport", subjects.START_LABEL_IMPORT, tag="releases", role="manager"),
    route("GET", IMPORT, "getLabelImport", subjects.GET_LABEL_IMPORT, tag="releases", role="viewer"),
    route("GET", IMPORT + "/items", "listLabelImportItems", subjects.LIST_LABEL_IMPORT_ITEMS, tag="releases",
          role="viewer", query="query"),
)
# fmt: on
