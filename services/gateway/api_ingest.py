"""REST operations of ingest: presigned uploads, URL and bucket imports, registrations, and runs."""

from __future__ import annotations

from proto import ingest, subjects
from services.gateway.operations import Operation, fixed

DATASET = "/v1/projects/{project_id}/datasets/{dataset_id}"
IMPORTS = "/v1/projects/{project_id}/imports"


def into_dataset(kind: type, field: str):
    return lambda params, query, body: kind(project_id=params["project_id"], dataset_id=params["dataset_id"],
                                            **{field: body})


def run_ref(params, query, body) -> ingest.RunRef:
    return ingest.RunRef(project_id=params["project_id"], id=params["run_id"])


OPERATIONS: tuple[Operation, ...] = (
    Operation(method="POST", path=DATASET + "/uploads", operation_id="createUpload", tag="ingest", role="manager",
              summary=subjects.CREATE_UPLOAD.summary, command=fixed(subjects.CREATE_UPLOAD), reply=ingest.Upload,
              body=ingest.CreateUpload, status=201, to_request=into_dataset(ingest.CreateUploadRequest, "upload")),
    Operation(method="POST", path=IMPORTS + "/{run_id}/complete", operation_id="registerUploads", tag="ingest",
              role="manager", summary=subjects.COMPLETE_UPLOAD.summary, command=fixed(subjects.COMPLETE_UPLOAD),
              reply=ingest.Run, body=ingest.CompleteUpload, status=202,
              to_request=lambda params, query, body: ingest.CompleteUploadRequest(
                  project_id=params["project_id"], run_id=params["run_id"], complete=body)),
    Operation(method="POST", path=DATASET + "/imports/urls", operation_id="importUrls", tag="ingest",
              role="manager", summary=subjects.IMPORT_URLS.summary, command=fixed(subjects.IMPORT_URLS),
              reply=ingest.Run, body=ingest.ImportUrls, status=202,
              to_request=into_dataset(ingest.ImportUrlsRequest, "urls")),
    Operation(method="POST", path=DATASET + "/imports/bucket", operation_id="importBucket", tag="ingest",
              role="manager", summary=subjects.IMPORT_BUCKET.summary, command=fixed(subjects.IMPORT_BUCKET),
              reply=ingest.Run, body=ingest.ImportBucket, status=202,
              to_request=into_dataset(ingest.ImportBucketRequest, "source")),
    Operation(method="POST", path=DATASET + "/media", operation_id="registerMedia", tag="ingest", role="manager",
              summary=subjects.REGISTER_MEDIA.summary, command=fixed(subjects.REGISTER_MEDIA), reply=ingest.Run,
              body=ingest.RegisterMedia, status=201, to_request=into_dataset(ingest.RegisterMediaRequest, "media")),
    Operation(method="GET", path=IMPORTS, operation_id="listImports", tag="ingest", role="viewer",
              summary=subjects.LIST_RUNS.summary, command=fixed(subjects.LIST_RUNS), reply=ingest.RunList,
              query=ingest.ListRuns, to_request=lambda params, query, body: ingest.ListRunsRequest(
                  project_id=params["project_id"], query=query)),
    Operation(method="GET", path=IMPORTS + "/{run_id}", operation_id="getImport", tag="ingest", role="viewer",
              summary=subjects.GET_RUN.summary, command=fixed(subjects.GET_RUN), reply=ingest.Run,
              to_request=run_ref),
    Operation(method="GET", path=IMPORTS + "/{run_id}/items", operation_id="listImportItems", tag="ingest",
              role="viewer", summary=subjects.LIST_RUN_ITEMS.summary, command=fixed(subjects.LIST_RUN_ITEMS),
              reply=ingest.RunItemPage, query=ingest.ListRunItems,
              to_request=lambda params, query, body: ingest.ListRunItemsRequest(
                  project_id=params["project_id"], id=params["run_id"], query=query)),
    Operation(method="POST", path=IMPORTS + "/{run_id}/cancel", operation_id="cancelImport", tag="ingest",
              role="manager", summary=subjects.CANCEL_RUN.summary, command=fixed(subjects.CANCEL_RUN),
              reply=ingest.Run, to_request=run_ref),
)
