"""REST operations of ingest: presigned uploads, URL and bucket imports, stored buckets, registrations, and runs."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

DATASET = "/v1/projects/{project_id}/datasets/{dataset_id}"
IMPORTS = "/v1/projects/{project_id}/imports"
RUN = IMPORTS + "/{run_id}"
BUCKETS = "/v1/projects/{project_id}/buckets"

# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("POST", DATASET + "/uploads", "createUpload", subjects.CREATE_UPLOAD, tag="ingest", role="manager",
          status=201, body="upload"),
    route("POST", RUN + "/complete", "registerUploads", subjects.COMPLETE_UPLOAD, tag="ingest", role="manager",
          status=202, body="complete"),
    route("POST", DATASET + "/imports/urls", "importUrls", subjects.IMPORT_URLS, tag="ingest", role="manager",
          status=202, body="urls"),
    route("POST", DATASET + "/imports/bucket", "importBucket", subjects.IMPORT_BUCKET, tag="ingest", role="manager",
          status=202, body="source"),
    route("POST", DATASET + "/media", "registerMedia", subjects.REGISTER_MEDIA, tag="ingest", role="manager",
          status=201, body="media"),
    route("GET", IMPORTS, "listImports", subjects.LIST_RUNS, tag="ingest", role="viewer", query="query"),
    route("GET", RUN, "getImport", subjects.GET_RUN, tag="ingest", role="viewer"),
    route("GET", RUN + "/items", "listImportItems", subjects.LIST_RUN_ITEMS, tag="ingest", role="viewer",
          query="query"),
    route("POST", RUN + "/cancel", "cancelImport", subjects.CANCEL_RUN, tag="ingest", role="manager"),
    route("POST", BUCKETS, "createStoredBucket", subjects.CREATE_STORED_BUCKET, tag="ingest", role="manager",
          status=201, body="bucket"),
    route("GET", BUCKETS, "listStoredBuckets", subjects.LIST_STORED_BUCKETS, tag="ingest", role="manager"),
    route("GET", BUCKETS + "/{bucket_id}", "getStoredBucket", subjects.GET_STORED_BUCKET, tag="ingest",
          role="manager"),
    route("DELETE", BUCKETS + "/{bucket_id}", "deleteStoredBucket", subjects.DELETE_STORED_BUCKET, tag="ingest",
          role="manager"),
)
# fmt: on
