"""Exports: a Hasty export is a native release of the ground truth and one export of it; its id is the
export's. The release's description keeps the export's name (the SDK names the file it saves after it)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from proto import releases, subjects
from services.gateway.dialects.hasty.common import (
    GROUND_TRUTH,
    PROJECT,
    Routes,
    ask,
    error_response,
    image_status,
    json,
    timestamp,
)
from services.gateway.dialects.requests import body, project_id, uuid_param
from shared.errors import invalid

FORMATS: dict[str, releases.ExportFormat] = {
    "json_v1.1": "hasty",
    "json_coco": "coco",
    "semantic_png": "semantic_png",
    "pascal": "voc",
    "yolo": "yolo",
    "images": "images",
}
NOT_HERE = {"videos": "Loupe has no video projects"}
STATES = {"PENDING": "PENDING", "RUNNING": "RUNNING", "SUCCEEDED": "DONE", "FAILED": "FAILED"}


class ExportBody(msgspec.Struct, kw_only=True):
    format: str
    export_name: str | None = None
    dataset_id: list[uuid.UUID] | None = None
    # Spelt `class` in Hasty's body.
    class_ids: list[uuid.UUID] | None = msgspec.field(default=None, name="class")
    image_status: list[str] | None = None
    sign_urls: bool = False
    semantic_format: str | None = None
    labels_order: list[str] | None = None


def export_json(export: releases.Export, release: releases.Release) -> dict[str, Any]:
    meta: dict[str, Any] = {"export_name": release.description, "format": export.format}
    if export.download_url:
        meta["url"] = export.download_url
    if export.error:
        meta["error"] = export.error
    return {
        "id": export.id,
        "type": "EXPORT",
        "status": STATES[export.state],
        "project_id": export.project_id,
        "started_by": release.created_by,
        "started_on": timestamp(export.created_at),
        "completed_on": timestamp(export.finished_at),
        "meta": meta,
    }


async def create_export(request: web.Request) -> web.Response:
    pid = project_id(request)
    new = await body(request, ExportBody)
    if new.format in NOT_HERE:
        return error_response(501, "not_implemented", NOT_HERE[new.format])
    if new.format not in FORMATS:
        raise invalid(f"format {new.format!r} is not one of {', '.join([*FORMATS, *NOT_HERE])}", path="format")
    name = new.export_name or "export"
    release = await ask(
        request,
        subjects.CREATE_RELEASE,
        releases.CreateReleaseRequest(
            project_id=pid,
            # Release names are unique in a project, Hasty's export names are not.
            release=releases.CreateRelease(
                name=f"{name} (Hasty export {uuid.uuid4().hex[:8]})", description=name, labelsets=[GROUND_TRUTH]
            ),
        ),
        project_id=pid,
        role="manager",
    )
    export = await ask(
        request,
        subjects.CREATE_EXPORT,
        releases.CreateExportRequest(
            project_id=pid,
            release_id=release.id,
            export=releases.CreateExport(
                format=FORMATS[new.format],
                filter=releases.ExportFilter(
                    dataset_ids=[str(d) for d in new.dataset_id or []],
                    class_ids=[str(c) for c in new.class_ids or []],
                    sample_statuses=[
                        image_status(value, f"image_status[{i}]") for i, value in enumerate(new.image_status or [])
                    ],
                ),
                task="segmentation",
                archive=True,  # the SDK saves every export as `<export_name>.zip`
            ),
        ),
        project_id=pid,
        role="viewer",
    )
    return json(export_json(export, release), status=201)


async def get_export(request: web.Request) -> web.Response:
    pid = project_id(request)
    export = await ask(
        request,
        subjects.GET_EXPORT,
        releases.ExportRef(project_id=pid, export_id=uuid_param(request, "export_id")),
        project_id=pid,
        role="viewer",
    )
    release = await ask(
        request, subjects.GET_RELEASE, releases.ReleaseRef(project_id=pid, release_id=export.release_id)
    )
    return json(export_json(export, release))


ROUTES: Routes = [
    ("POST", PROJECT + "/exports", create_export),
    ("GET", PROJECT + "/exports/{export_id}", get_export),
]
