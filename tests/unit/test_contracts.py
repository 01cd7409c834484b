"""The generated API documents: complete, consistent, and stable in what clients rely on."""

import re
import typing

import msgspec

from loupe.asyncapi import asyncapi_document
from proto import releases, subjects
from services.gateway.openapi import openapi_document
from services.gateway.routes import OPERATIONS

OPERATION_ID = re.compile(r"^(create|list|get|update|delete|enable|disable|replace|replay|search|count|add|remove|move|merge|register|upload|import|fetch|cancel|resume|download|redirect|upsert|start|next|resolve)[A-Z][A-Za-z]+$")


def test_every_operation_has_a_unique_verb_noun_operation_id() -> None:
    ids = [op.operation_id for op in OPERATIONS]
    assert len(ids) == len(set(ids))
    assert all(OPERATION_ID.match(i) for i in ids), ids


def test_openapi_references_resolve() -> None:
    document = openapi_document(OPERATIONS, "http://127.0.0.1:8080")
    text = msgspec.json.encode(document).decode()
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in document["components"]["schemas"], name
    assert document["openapi"] == "3.1.0"
    get_project = document["paths"]["/v1/projects/{project_id}"]["get"]
    assert get_project["parameters"][0] == {"name": "project_id", "in": "path", "required": True,
                                            "schema": {"type": "string"}}
    limit = document["paths"]["/v1/projects"]["get"]["parameters"][0]
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}


def test_subjects_follow_the_conventions() -> None:
    for command in subjects.COMMANDS:
        assert re.match(r"^loupe\.[a-z]+\.[a-z]+\.[a-z]+$", command.subject), command.subject
    for event in subjects.EVENTS:
        assert re.match(r"^loupe\.evt\.[a-z]+\.[a-z]+\.[a-z]+ed$", event.subject), event.subject
    for job in subjects.JOBS:  # loupe.job.<service>.<kind>, the kind also naming the durable <service>-<kind>
        assert re.match(r"^loupe\.job\.[a-z]+\.[a-z]+(-[a-z]+)*$", job.subject), job.subject


def test_each_job_subject_carries_one_kind_of_job() -> None:
    """Label imports have their own subject and consumer, not a tag in the release job's union."""
    assert subjects.LABEL_IMPORT_JOB.payload is releases.LabelImportJob
    assert releases.LabelImportJob not in typing.get_args(subjects.RELEASE_JOB.payload)
    assert len({job.subject for job in subjects.JOBS}) == len(subjects.JOBS)


def test_asyncapi_lists_every_subject() -> None:
    document = asyncapi_document()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {c.subject for c in subjects.COMMANDS} | {e.subject for e in subjects.EVENTS} <= addresses
    text = msgspec.json.encode(document).decode()
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in document["components"]["schemas"], name
