"""Segments releases (a native release plus its `segments` export, the release.json the SDK's
SegmentsDataset reads), issues, and work units."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web

from proto import subjects
from proto.catalog import Project
from proto.releases import (
    CreateExport,
    CreateExportRequest,
    CreateRelease,
    CreateReleaseRequest,
    Export,
    ListExportsRequest,
    ListReleases,
    ListReleasesRequest,
    Release,
    ReleaseRef,
)
from proto.review import (
    CreateIssue,
    CreateIssueRequest,
    Issue,
    IssueRef,
    ListIssues,
    ListIssuesRequest,
    UpdateIssue,
    UpdateIssueRequest,
)
from services.gateway.dialects.native import ask, ask_all, samples_by_id, visible_projects
from services.gateway.dialects.segments import files
from services.gateway.dialects.segments.common import (
    PAGE,
    body_of,
    dataset,
    iso,
    locate_sample,
    named,
    page_slice,
    reply,
)
from shared.errors import LoupeError


class ReleaseBody(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""


async def all_releases(request: web.Request, project: Project) -> list[Release]:
    return await ask_all(
        request,
        subjects.LIST_RELEASES,
        lambda cursor: ListReleasesRequest(project_id=project.id, page=ListReleases(limit=PAGE, cursor=cursor)),
    )


async def release_named(request: web.Request, project: Project) -> Release:
    name = request.match_info["release"]
    for release in await all_releases(request, project):
        if release.name == name:
            return release
    raise LoupeError("not_found", f"release {name!r} does not exist", path="release")


async def segments_export(request: web.Request, release: Release) -> Export | None:
    """The release's newest segments export; one is made for a release cut natively without it."""
    exports = await ask(
        request, subjects.LIST_EXPORTS, ListExportsRequest(project_id=release.project_id, release_id=release.id)
    )
    found = [e for e in exports.items if e.format == "segments" and e.state != "FAILED"]
    if found:
        return max(found, key=lambda e: e.created_at)
    if release.state == "FAILED":
        return None
    return await ask(
        request,
        subjects.CREATE_EXPORT,
        CreateExportRequest(
            project_id=release.project_id, release_id=release.id, export=CreateExport(format="segments")
        ),
    )


async def release_json(request: web.Request, release: Release) -> dict[str, Any]:
    export = await segments_export(request, release)
    if release.state == "FAILED" or (export is not None and export.state == "FAILED"):
        status = "FAILED"
    elif export is not None and export.state == "SUCCEEDED":
        status = "SUCCEEDED"
    else:
        status = "PENDING"
    download = export.download_url if export is not None and status == "SUCCEEDED" else None
    return {
        "uuid": release.id,
        "name": release.name,
        "description": release.description,
        "release_type": "JSON",
        "attributes": {"url": files.release_link(request, download) if download else None},
        "status": status,
        "created_at": iso(release.created_at),
        "samples_count": release.samples,
    }


async def list_releases(request: web.Request) -> web.Response:
    _, project = await dataset(request)
    releases = page_slice(request, await all_releases(request, project))
    return reply(list(await asyncio.gather(*(release_json(request, r) for r in releases))))


async def get_release(request: web.Request) -> web.Response:
    _, project = await dataset(request)
    return reply(await release_json(request, await release_named(request, project)))


async def create_release(request: web.Request) -> web.Response:
    _, project = await dataset(request, "manager")
    body = await body_of(request, ReleaseBody)
    with named(f"release {body.name!r}"):
        release = await ask(
            request,
            subjects.CREATE_RELEASE,
            CreateReleaseRequest(
                project_id=project.id, release=CreateRelease(name=body.name, description=body.description)
            ),
            project_id=project.id,
            role="manager",
        )
    return reply(await release_json(request, release), status=201)


async def delete_release(request: web.Request) -> web.Response:
    _, project = await dataset(request, "manager")
    release = await release_named(request, project)
    await ask(
        request,
        subjects.DELETE_RELEASE,
        ReleaseRef(project_id=project.id, release_id=release.id),
        project_id=project.id,
        role="manager",
    )
    return web.Response(status=204)


# -- issues ---------------------------------------------------------------------------------------


class IssueBody(msgspec.Struct, kw_only=True):
    description: str | None = None
    status: str | None = None


def issue_json(issue: Issue, sample_name: str) -> dict[str, Any]:
    return {
        "uuid": issue.id,
        "description": issue.description,
        "created_at": iso(issue.created_at),
        "updated_at": iso(issue.updated_at),
        "created_by": issue.created_by or "",
        "updated_by": issue.created_by or "",
        "status": issue.status,
        "comments": [
            {"created_at": iso(c.created_at), "created_by": c.created_by or "", "text": c.text} for c in issue.comments
        ],
        "sample_uuid": issue.sample_id,
        "sample_name": sample_name,
    }


async def issues_json(request: web.Request, project_id: str, issues: list[Issue]) -> list[dict[str, Any]]:
    samples = await samples_by_id(request, project_id, list({issue.sample_id for issue in issues}))
    return [issue_json(issue, samples[issue.sample_id].name if issue.sample_id in samples else "") for issue in issues]


async def list_issues(request: web.Request) -> web.Response:
    _, project = await dataset(request)
    issues: list[Issue] = await ask_all(
        request,
        subjects.LIST_ISSUES,
        lambda cursor: ListIssuesRequest(project_id=project.id, query=ListIssues(limit=PAGE, cursor=cursor)),
    )
    return reply(await issues_json(request, project.id, issues))


async def create_issue(request: web.Request) -> web.Response:
    ref = await locate_sample(request, request.match_info["sample"], "labeler")
    body = await body_of(request, IssueBody)
    issue = await ask(
        request,
        subjects.CREATE_ISSUE,
        CreateIssueRequest(
            project_id=ref.project_id, sample_id=ref.sample_id, issue=CreateIssue(description=body.description or "")
        ),
        project_id=ref.project_id,
        role="labeler",
    )
    if body.status == "CLOSED":
        issue = await _update(request, issue.project_id, issue.id, IssueBody(status="CLOSED"))
    return reply((await issues_json(request, ref.project_id, [issue]))[0], status=201)


async def list_sample_issues(request: web.Request) -> web.Response:
    ref = await locate_sample(request, request.match_info["sample"])
    page = await ask(
        request,
        subjects.LIST_ISSUES,
        ListIssuesRequest(project_id=ref.project_id, query=ListIssues(sample_id=ref.sample_id, limit=PAGE)),
    )
    return reply(await issues_json(request, ref.project_id, page.items))


async def _update(request: web.Request, project_id: str, issue_id: str, body: IssueBody) -> Issue:
    changes = msgspec.convert({k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}, UpdateIssue)
    return await ask(
        request,
        subjects.UPDATE_ISSUE,
        UpdateIssueRequest(project_id=project_id, issue_id=issue_id, changes=changes),
        project_id=project_id,
        role="labeler",
    )


async def issue_by_id(request: web.Request) -> Issue:
    """An issue named by its uuid alone: looked for in each project the caller sees."""
    issue_id = request.match_info["issue"]

    async def look(project: Project) -> Issue | None:
        try:
            return await ask(request, subjects.GET_ISSUE, IssueRef(project_id=project.id, issue_id=issue_id))
        except LoupeError as exc:
            if exc.code == "not_found":
                return None
            raise

    for found in await asyncio.gather(*(look(p) for p in await visible_projects(request))):
        if found is not None:
            return found
    raise LoupeError("not_found", f"issue {issue_id} does not exist", path="issue")


async def update_issue(request: web.Request) -> web.Response:
    issue = await issue_by_id(request)
    issue = await _update(request, issue.project_id, issue.id, await body_of(request, IssueBody))
    return reply((await issues_json(request, issue.project_id, [issue]))[0])


async def delete_issue(request: web.Request) -> web.Response:
    issue = await issue_by_id(request)
    await ask(
        request,
        subjects.DELETE_ISSUE,
        IssueRef(project_id=issue.project_id, issue_id=issue.id),
        project_id=issue.project_id,
        role="manager",
    )
    return web.Response(status=204)


async def list_workunits(request: web.Request) -> web.Response:
    """Loupe does not time labelling work, so there are no work units to show."""
    await dataset(request)
    return reply([])
