"""REST operations for releases and their exports."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

EXPORT = "/v1/projects/{project_id}/exports/{export_id}"
RELEASES = "/v1/projects/{project_id}/releases"
RELEASE = RELEASES + "/{release_id}"

# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("POST", RELEASES, "createRelease", subjects.CREATE_RELEASE, tag="releases", role="manager", status=201,
          body="release"),
    route("GET", RELEASES, "listReleases", subjects.LIST_RELEASES, tag="releases", role="viewer", query="page"),
    route("GET", RELEASE, "getRelease", subjects.GET_RELEASE, tag="releases", role="viewer"),
    route("DELETE", RELEASE, "deleteRelease", subjects.DELETE_RELEASE, tag="releases", role="manager"),
    route("POST", RELEASE + "/exports", "createExport", subjects.CREATE_EXPORT, tag="releases", role="viewer",
          status=201, body="export"),
    route("GET", RELEASE + "/exports", "listExports", subjects.LIST_EXPORTS, tag="releases", role="viewer"),
    route("GET", EXPORT, "getExport", subjects.GET_EXPORT, tag="releases", role="viewer"),
    route("GET", EXPORT + "/download", "downloadExport", subjects.LOCATE_EXPORT, tag="releases", role="viewer",
          summary="Redirect (302) to the finished export's file"),
)
# fmt: on
