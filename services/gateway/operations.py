"""Every REST operation: its route, its operationId, and the bus command it becomes.

An operation is declared from its command with `route`: the command gives the summary, the request
type and the reply type, and the entry states only what is REST's own (method, path, operationId,
tag, who may call it, status, and how the path, query and body become the request).

The same msgspec types validate requests here and describe them in the OpenAPI document, so the two
cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from proto import common
from proto.catalog import Role
from proto.subjects import Command

PathParams = Mapping[str, str]
ToRequest = Callable[[PathParams, Any, Any], msgspec.Struct]  # (path params, query, body) → the command's request
# The status a reply type implies: 204 No Content for Empty, 302 Found (sent as `Location`) for Redirect.
REPLY_STATUS: dict[type, int] = {common.Empty: 204, common.Redirect: 302}


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the gateway and the OpenAPI document need of an operation. `route` declares one from
    its command; spelling one out is for the few whose command depends on the path."""

    method: str
    path: str
    operation_id: str  # stable, verb + noun: clients generate method names from it
    summary: str
    tag: str
    command: Callable[[PathParams], Command]
    reply: type
    to_request: ToRequest
    body: type | None = None
    query: type | None = None
    status: int = 200  # 204: no body; 302: the reply is a proto.common.Redirect, sent as `Location`
    admin: bool = False  # needs an organisation admin key
    # The least project role the caller needs on the `{project_id}` of the path (viewer < labeler <
    # reviewer < manager < admin). Callers with no role on a private project get 404, not 403.
    role: Role | None = None


class ByHand(msgspec.Struct, frozen=True):
    """A request `route` cannot build from the path, body and query: `build` makes it, from a body of
    type `body` and a query of type `query`."""

    build: ToRequest
    body: type | None = None
    query: type | None = None


def route(
    method: str,
    path: str,
    operation_id: str,
    command: Command,
    *,
    tag: str,
    role: Role | None = None,
    admin: bool = False,
    status: int | None = None,
    summary: str | None = None,
    body: str | bool = False,
    query: str | bool = False,
    to_request: ByHand | None = None,
) -> Operation:
    """The operation that sends `command`, from which it takes its summary (unless `summary` replaces
    it), its request type and its reply type.

    The command's request is built from the path, the body and the query:
    - each path parameter fills the request's field of the same name, and the one that names no field
      fills its `id` (`/projects/{project_id}` → `ProjectRef(id=…)`);
    - `body="changes"`: the JSON body fills the field `changes`, whose type is the body's schema;
      `body=True`: the body is the whole request. `query` likewise, from the query parameters.
    `to_request` builds the requests that follow none of this. A route that does not fit its request
    type fails here, at import. The status is 204 for an `Empty` reply, 302 for a `Redirect`, else 200
    unless given (201 created, 202 accepted).
    """
    if to_request and (body or query):
        raise TypeError(
            f"{operation_id}: `to_request` builds the request, so its ByHand names the body and query types"
        )
    build, body_type, query_type = (
        (to_request.build, to_request.body, to_request.query)
        if to_request
        else _request_builder(operation_id, command.request, tuple(re.findall(r"{(\w+)}", path)), body, query)
    )
    if status is None:
        status = REPLY_STATUS.get(command.reply, 200)
    return Operation(
        method=method,
        path=path,
        operation_id=operation_id,
        summary=summary or command.summary,
        tag=tag,
        command=lambda _: command,
        reply=command.reply,
        to_request=build,
        body=body_type,
        query=query_type,
        status=status,
        admin=admin,
        role=role,
    )


def _request_builder(
    operation_id: str, kind: type, params: tuple[str, ...], body: str | bool, query: str | bool
) -> tuple[ToRequest, type | None, type | None]:
    """How `route` builds a `kind` from the path parameters `params`, the body and the query; with the
    body type and the query type."""

    def refuse(problem: str) -> TypeError:
        return TypeError(f"{operation_id}: {problem}; build its {kind.__name__} with `to_request`")

    if body and query:
        raise refuse("it takes both a body and a query")
    if body is True or query is True:
        if params:
            raise refuse(
                f"its path parameters {params} would be lost: the {'body' if body else 'query'} is the whole request"
            )
        if body:
            return (lambda params, query, body: body), kind, None
        return (lambda params, query, body: query), None, kind
    part = body if isinstance(body, str) else query if isinstance(query, str) else None  # the field it fills
    fields = {field.name: field for field in msgspec.structs.fields(kind)}
    field_of = {name: name if name in fields else "id" for name in params}
    filled = [*field_of.values(), *([part] if part else [])]
    unfilled = {name for name, field in fields.items() if field.required} - set(filled)
    if len(set(filled)) < len(filled) or not set(filled) <= fields.keys() or unfilled:
        raise refuse(
            f"its path parameters {params} and {'body' if body else 'query'} field {part!r} do not "
            f"fill the fields {sorted(fields)} one each"
        )

    def build(params: PathParams, query_value: Any, body_value: Any) -> msgspec.Struct:
        values = {field: params[name] for name, field in field_of.items()}
        if part:
            values[part] = body_value if body else query_value
        return kind(**values)

    part_type = fields[part].type if part else None
    return build, part_type if body else None, part_type if query else None
