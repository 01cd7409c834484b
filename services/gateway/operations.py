"""Every REST operation: its route, its operationId, and the bus command it becomes.

The same msgspec types validate requests here and describe them in the OpenAPI document, so the two
cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from proto import catalog, common, subjects
from proto.catalog import Role
from proto.subjects import Command
from shared.errors import LoupeError

PathParams = Mapping[str, str]


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str
    operation_id: str  # stable, verb + noun: clients generate method names from it
    summary: str
    tag: str
    command: Callable[[PathParams], Command]
    reply: type
    to_request: Callable[[PathParams, Any, Any], msgspec.Struct]  # (path params, query, body) → command request
    body: type | None = None
    query: type | None = None
    status: int = 200  # 204: no body; 302: the reply is a proto.common.Redirect, sent as `Location`
    admin: bool = False  # needs an organisation admin key
    # The least project role the caller needs on the `{project_id}` of the path (viewer < labeler <
    # reviewer < manager < admin). Callers with no role on a private project get 404, not 403.
    role: Role | None = None


def fixed(command: Command) -> Callable[[PathParams], Command]:
    return lambda params: command


def dead_letter_command(index: int) -> Callable[[PathParams], Command]:
    def resolve(params: PathParams) -> Command:
        service = params["service"]
        if service not in subjects.WORKER_SERVICES:
            raise LoupeError("not_found", f"no service named {service!r}; services with dead letters are "
                             f"{', '.join(subjects.WORKER_SERVICES)}", path="service")
        return subjects.dead_letter_commands(service)[index]
    return resolve


def parse_letter_id(params: PathParams) -> int:
    try:
        return int(params["letter_id"])
    except ValueError:
        raise LoupeError("not_found", f"dead letter {params['letter_id']!r} does not exist", path="letter_id") from None


PROJECT_OPERATIONS: tuple[Operation, ...] = (
    Operation(method="POST", path="/v1/projects", operation_id="createProject", tag="projects",
              summary=subjects.CREATE_PROJECT.summary, command=fixed(subjects.CREATE_PROJECT),
              reply=catalog.Project, body=catalog.CreateProject, status=201,
              to_request=lambda params, query, body: body),
    Operation(method="GET", path="/v1/projects", operation_id="listProjects", tag="projects",
              summary=subjects.LIST_PROJECTS.summary, command=fixed(subjects.LIST_PROJECTS),
              reply=catalog.ProjectPage, query=catalog.ListProjects,
              to_request=lambda params, query, body: query),
    Operation(method="GET", path="/v1/projects/{project_id}", operation_id="getProject", tag="projects",
              role="viewer", summary=subjects.GET_PROJECT.summary, command=fixed(subjects.GET_PROJECT),
              reply=catalog.Project,
              to_request=lambda params, query, body: catalog.ProjectRef(id=params["project_id"])),
    Operation(method="PATCH", path="/v1/projects/{project_id}", operation_id="updateProject", tag="projects",
              role="manager",
              summary=subjects.UPDATE_PROJECT.summary, command=fixed(subjects.UPDATE_PROJECT),
              reply=catalog.Project, body=catalog.UpdateProject,
              to_request=lambda params, query, body: catalog.UpdateProjectRequest(id=params["project_id"],
                                                                                  changes=body)),
    Operation(method="DELETE", path="/v1/projects/{project_id}", operation_id="deleteProject", tag="projects",
              role="admin",
              summary=subjects.DELETE_PROJECT.summary, command=fixed(subjects.DELETE_PROJECT), reply=common.Empty,
              status=204, to_request=lambda params, query, body: catalog.ProjectRef(id=params["project_id"])),
    Operation(method="GET", path="/v1/admin/services/{service}/dead-letters", operation_id="listDeadLetters",
              tag="admin", summary="List messages a service gave up on after every delivery failed",
              command=dead_letter_command(0), reply=common.DeadLetterList, query=common.ListDeadLetters,
              admin=True, to_request=lambda params, query, body: query),
    Operation(method="POST", path="/v1/admin/services/{service}/dead-letters/{letter_id}/replay",
              operation_id="replayDeadLetter", tag="admin",
              summary="Publish a dead letter again so its consumer processes it",
              command=dead_letter_command(1), reply=common.DeadLetter, admin=True,
              to_request=lambda params, query, body: common.ReplayDeadLetter(id=parse_letter_id(params))),
)
