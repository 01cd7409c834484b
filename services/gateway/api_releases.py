"""REST operations for releases and their exports."""

from __future__ import annotations

from proto import common, releases, subjects
from services.gateway.operations import Operation, fixed

RELEASES = "/v1/projects/{project_id}/releases"
RELEASE = RELEASES + "/{release_id}"
EXPORT = "/v1/projects/{project_id}/exports/{export_id}"


def release_ref(params, query, body) -> releases.ReleaseRef:
    return releases.ReleaseRef(project_id=params["project_id"], release_id=params["release_id"])


def export_ref(params, query, body) -> releases.ExportRef:
    return releases.ExportRef(project_id=params["project_id"], export_id=params["export_id"])


OPERATIONS: tuple[Operation, ...] = (
    Operation(method="POST", path=RELEASES, operation_id="createRelease", tag="releases", role="manager", status=201,
              summary=subjects.CREATE_RELEASE.summary, command=fixed(subjects.CREATE_RELEASE),
              reply=releases.Release, body=releases.CreateRelease,
              to_request=lambda params, query, body: releases.CreateReleaseRequest(project_id=params["project_id"],
                                                                                   release=body)),
    Operation(method="GET", path=RELEASES, operation_id="listReleases", tag="releases", role="viewer",
              summary=subjects.LIST_RELEASES.summary, command=fixed(subjects.LIST_RELEASES),
              reply=releases.ReleasePage, query=releases.ListReleases,
              to_request=lambda params, query, body: releases.ListReleasesRequest(project_id=params["project_id"],
                                                                                  page=query)),
    Operation(method="GET", path=RELEASE, operation_id="getRelease", tag="releases", role="viewer",
              summary=subjects.GET_RELEASE.summary, command=fixed(subjects.GET_RELEASE), reply=releases.Release,
              to_request=release_ref),
    Operation(method="DELETE", path=RELEASE, operation_id="deleteRelease", tag="releases", role="manager",
              summary=subjects.DELETE_RELEASE.summary, command=fixed(subjects.DELETE_RELEASE), reply=common.Empty,
              status=204, to_request=release_ref),
    Operation(method="POST", path=RELEASE + "/exports", operation_id="createExport", tag="releases", role="viewer",
              status=201, summary=subjects.CREATE_EXPORT.summary, command=fixed(subjects.CREATE_EXPORT),
              reply=releases.Export, body=releases.CreateExport,
              to_request=lambda params, query, body: releases.CreateExportRequest(
                  project_id=params["project_id"], release_id=params["release_id"], export=body)),
    Operation(method="GET", path=RELEASE + "/exports", operation_id="listExports", tag="releases", role="viewer",
              summary=subjects.LIST_EXPORTS.summary, command=fixed(subjects.LIST_EXPORTS), reply=releases.ExportList,
              to_request=lambda params, query, body: releases.ListExportsRequest(
                  project_id=params["project_id"], release_id=params["release_id"])),
    Operation(method="GET", path=EXPORT, operation_id="getExport", tag="releases", role="viewer",
              summary=subjects.GET_EXPORT.summary, command=fixed(subjects.GET_EXPORT), reply=releases.Export,
              to_request=export_ref),
    Operation(method="GET", path=EXPORT + "/download", operation_id="downloadExport", tag="releases", role="viewer",
              summary="Redirect (302) to the finished export's file", command=fixed(subjects.LOCATE_EXPORT),
              reply=common.Redirect, status=302, to_request=export_ref),
)
