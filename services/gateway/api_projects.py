"""REST operations for projects, and the admin's view of the messages services gave up on."""

from __future__ import annotations

from collections.abc import Callable

from proto import common, subjects
from proto.subjects import Command
from services.gateway.operations import Operation, PathParams, route
from shared.errors import LoupeError

PROJECT = "/v1/projects/{project_id}"
DEAD_LETTERS = "/v1/admin/services/{service}/dead-letters"


def dead_letter_command(index: int) -> Callable[[PathParams], Command]:
    def resolve(params: PathParams) -> Command:
        service = params["service"]
        if service not in subjects.WORKER_SERVICES:
            raise LoupeError(
                "not_found",
                f"no service named {service!r}; services with dead letters are {', '.join(subjects.WORKER_SERVICES)}",
                path="service",
            )
        return subjects.dead_letter_commands(service)[index]

    return resolve


def parse_letter_id(params: PathParams) -> int:
    try:
        return int(params["letter_id"])
    except ValueError:
        raise LoupeError("not_found", f"dead letter {params['letter_id']!r} does not exist", path="letter_id") from None


# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("POST", "/v1/projects", "createProject", subjects.CREATE_PROJECT, tag="projects", status=201, body=True),
    route("GET", "/v1/projects", "listProjects", subjects.LIST_PROJECTS, tag="projects", query=True),
    route("GET", PROJECT, "getProject", subjects.GET_PROJECT, tag="projects", role="viewer"),
    route("PATCH", PROJECT, "updateProject", subjects.UPDATE_PROJECT, tag="projects", role="manager", body="changes"),
    route("DELETE", PROJECT, "deleteProject", subjects.DELETE_PROJECT, tag="projects", role="admin"),
    # The service in the path picks the command, so these two state what a `route` takes from it.
    Operation(method="GET", path=DEAD_LETTERS, operation_id="listDeadLetters", tag="admin",
              summary="List messages a service gave up on after every delivery failed", command=dead_letter_command(0),
              reply=common.DeadLetterList, query=common.ListDeadLetters, admin=True,
              to_request=lambda params, query, body: query),
    Operation(method="POST", path=DEAD_LETTERS + "/{letter_id}/replay", operation_id="replayDeadLetter", tag="admin",
              summary="Publish a dead letter again so its consumer processes it", command=dead_letter_command(1),
              reply=common.DeadLetter, admin=True,
              to_request=lambda params, query, body: common.ReplayDeadLetter(id=parse_letter_id(params))),
)
# fmt: on
