"""The OpenAPI 3.1 document, generated from the operations and their msgspec types."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from services.gateway.operations import Operation
from services.gateway.problems import Problem
from shared.service import VERSION

REF = "#/components/schemas/{name}"
ERROR_STATUSES = {
    "400": "The body is not JSON",
    "401": "No or unknown API key",
    "403": "The API key may not do this",
    "404": "No such resource visible to this API key",
    "408": "The body did not arrive within the request timeout",
    "409": "Conflicts with the current state",
    "413": "The body is too large",
    "414": "The URL is longer than the gateway reads",
    "422": "The request breaks a rule; `path` names the field",
    "503": "A service behind the gateway is not available",
}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _query_parameters(query: type | None) -> list[dict[str, Any]]:
    if query is None:
        return []
    return [
        {"name": field.name, "in": "query", "required": field.required, "schema": msgspec.json.schema(field.type)}
        for field in msgspec.structs.fields(query)
    ]


def _error_responses(refs: dict[type, Any]) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": refs[Problem]}}
    return {status: {"description": text, "content": problem} for status, text in ERROR_STATUSES.items()}


def _operation(op: Operation, refs: dict[type, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Success"}
    if op.status == 302:
        success["headers"] = {
            "Location": {
                "description": "Where to download it",
                "required": True,
                "schema": {"type": "string", "format": "uri"},
            }
        }
    elif op.status != 204:
        success["content"] = {"application/json": {"schema": refs[op.reply]}}
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary + (" (admin API key only)" if op.admin else ""),
        "tags": [op.tag],
        "parameters": _path_parameters(op.path) + _query_parameters(op.query),
        "responses": {str(op.status): success, **_error_responses(refs)},
    }
    if op.body is not None:
        document["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[op.body]}}}
    return document


def openapi_document(
    operations: tuple[Operation, ...],
    server_url: str,
    handwritten: dict[tuple[str, str], dict[str, Any]] | None = None,
    handwritten_types: tuple[type, ...] = (),
) -> dict[str, Any]:
    """`handwritten` maps (method, path) of endpoints that are not plain JSON operations (event
    streams, multipart uploads) to their hand-written operation objects."""
    types = sorted(
        {t for op in operations for t in (op.body, op.reply if op.status not in (204, 302) else None) if t}
        | {Problem, *handwritten_types},
        key=str,  # a union (a tagged body such as an inference job) has no __name__
    )
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    refs = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    for (method, path), operation in (handwritten or {}).items():
        paths.setdefault(path, {})[method] = {
            **operation,
            "responses": {**operation["responses"], **_error_responses(refs)},
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loupe",
            "version": VERSION,
            "description": "Self-hosted vision data engine. Authenticate with an API key: "
            "`Authorization: Bearer <key>` or `X-API-Key: <key>`. Errors are RFC 9457 problems.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerKey": []}, {"headerKey": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerKey": {"type": "http", "scheme": "bearer"},
                "headerKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
