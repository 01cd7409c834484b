"""How a REST operation is declared from its bus command, and what every declared operation keeps."""

from __future__ import annotations

import re
import typing
from typing import Any

import pytest

from proto import catalog, ingest, subjects
from services.gateway.operations import ByHand, route
from services.gateway.routes import OPERATIONS

RUNS = "/v1/projects/{project_id}/imports"
RUN = RUNS + "/{run_id}"
PARAMS = {"project_id": "p1", "run_id": "r1"}


def test_an_operation_takes_summary_and_reply_from_its_command_unless_the_summary_is_replaced() -> None:
    op = route("GET", RUN, "getImport", subjects.GET_RUN, tag="ingest", role="viewer")
    assert (op.summary, op.reply, op.command(PARAMS), op.status) == (subjects.GET_RUN.summary, ingest.Run,
                                                                      subjects.GET_RUN, 200)
    assert route("GET", RUN, "getImport", subjects.GET_RUN, tag="ingest", summary="Another").summary == "Another"


def test_path_parameters_fill_fields_of_their_name_and_the_one_left_fills_the_id() -> None:
    op = route("GET", RUN, "getImport", subjects.GET_RUN, tag="ingest")
    assert (op.body, op.query) == (None, None)
    assert op.to_request(PARAMS, None, None) == ingest.RunRef(project_id="p1", id="r1")


def test_the_body_fills_the_named_field_whose_type_is_the_body_schema() -> None:
    op = route("PATCH", "/v1/projects/{project_id}", "updateProject", subjects.UPDATE_PROJECT, tag="projects",
               body="changes")
    assert (op.body, op.query) == (catalog.UpdateProject, None)
    body = catalog.UpdateProject(name="n")
    assert op.to_request(PARAMS, None, body) == catalog.UpdateProjectRequest(id="p1", changes=body)


def test_the_query_fills_the_named_field_whose_type_is_the_query_schema() -> None:
    op = route("GET", RUNS, "listImports", subjects.LIST_RUNS, tag="ingest", query="query")
    assert (op.body, op.query) == (None, ingest.ListRuns)
    query = ingest.ListRuns(limit=5)
    assert op.to_request(PARAMS, query, None) == ingest.ListRunsRequest(project_id="p1", query=query)


def test_a_body_of_the_request_type_is_the_whole_request() -> None:
    op = route("POST", "/v1/projects", "createProject", subjects.CREATE_PROJECT, tag="projects", status=201,
               body=True)
    body = catalog.CreateProject(name="n")
    assert (op.body, op.status, op.to_request({}, None, body)) == (catalog.CreateProject, 201, body)


def test_the_status_follows_the_reply_type() -> None:
    project = "/v1/projects/{project_id}"
    assert route("DELETE", project, "deleteProject", subjects.DELETE_PROJECT, tag="projects").status == 204  # Empty
    media = "/v1/projects/{project_id}/samples/{sample_id}/media"
    assert route("GET", media, "redirectMedia", subjects.LOCATE_MEDIA, tag="samples",
                 to_request=ByHand(lambda params, query, body: body)).status == 302  # Redirect


def test_a_request_built_by_hand_states_its_body_type() -> None:
    def rename(params: Any, query: Any, body: catalog.CreateProject) -> catalog.UpdateProjectRequest:
        return catalog.UpdateProjectRequest(id=params["project_id"], changes=catalog.UpdateProject(name=body.name))

    op = route("PUT", "/v1/projects/{project_id}/name", "updateProjectName", subjects.UPDATE_PROJECT,
               tag="projects", to_request=ByHand(rename, body=catalog.CreateProject))
    assert op.body is catalog.CreateProject
    assert op.to_request(PARAMS, None, catalog.CreateProject(name="n")) == catalog.UpdateProjectRequest(
        id="p1", changes=catalog.UpdateProject(name="n"))


@pytest.mark.parametrize(("path", "options"), [
    (RUN + "/{other_id}", {}),  # two parameters name no field of RunRef
    (RUNS, {}),  # the ref's `id` stays unfilled
    (RUN, {"body": "name"}),  # RunRef has no field `name`
    (RUN, {"body": True}),  # the path's parameters would be lost
    (RUN, {"body": "id", "query": "project_id"}),
    (RUN, {"body": "id", "to_request": ByHand(lambda params, query, body: body)}),
])
def test_a_route_that_does_not_fit_its_request_type_fails_when_declared(path: str, options: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="getImport"):
        route("GET", path, "getImport", subjects.GET_RUN, tag="ingest", **options)


class Anything:
    """Stands for a decoded body or query: every attribute is a string."""

    def __getattr__(self, name: str) -> str:
        return name


def _sample_params(path: str) -> dict[str, str]:
    valid = {"queue": "label", "service": "ingest", "letter_id": "7"}
    return {name: valid.get(name, f"<{name}>") for name in re.findall(r"{(\w+)}", path)}


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.operation_id)
def test_every_operation_replies_with_its_command_reply_and_sends_its_command_request(op: Any) -> None:
    params = _sample_params(op.path)
    command = op.command(params)
    query, body = Anything(), Anything()
    sent = op.to_request(params, query, body)
    assert op.reply is command.reply
    if sent is body or sent is query:
        assert (op.body if sent is body else op.query) is command.request
    else:
        assert isinstance(sent, typing.get_origin(command.request) or command.request)
    assert op.summary


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.role], ids=lambda op: op.operation_id)
def test_an_operation_that_checks_a_project_role_sends_that_project(op: Any) -> None:
    params = _sample_params(op.path)
    sent = op.to_request(params, Anything(), Anything())
    assert params["project_id"] in (getattr(sent, "project_id", None), getattr(sent, "id", None))
