"""The bus contract as an AsyncAPI 3.0 document, for people who publish to or subscribe on the bus.

Generated from `proto.subjects`, the same registry the services serve, so it cannot drift.
"""

from __future__ import annotations

from typing import Any

import msgspec

from proto import subjects
from proto.common import ErrorReply, EventEnvelope
from shared.service import VERSION

REF = "#/components/schemas/{name}"


def _channel_id(subject: str) -> str:
    return subject.replace(".", "_").replace("-", "_")


def asyncapi_document(nats_url: str = "nats://127.0.0.1:4222") -> dict[str, Any]:
    types: set[type] = {EventEnvelope, ErrorReply}
    for command in subjects.COMMANDS:
        types |= {command.request, command.reply}
    types |= {event.data for event in subjects.EVENTS}
    types |= {job.payload for job in subjects.JOBS}
    ordered = sorted(types, key=str)  # str, not __name__: a job may carry a union of types
    schemas, components = msgspec.json.schema_components(ordered, ref_template=REF)
    ref = dict(zip(ordered, schemas, strict=True))

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def message(name: str, payload: dict[str, Any], summary: str) -> dict[str, str]:
        messages[name] = {"name": name, "summary": summary, "contentType": "application/json", "payload": payload}
        return {"$ref": f"#/components/messages/{name}"}

    for command in subjects.COMMANDS:
        cid = _channel_id(command.subject)
        request = message(f"{cid}_request", ref[command.request], command.summary)
        reply = message(f"{cid}_reply", {"oneOf": [ref[command.reply], ref[ErrorReply]]},
                        f"The result, or an ErrorReply when the `{subjects.HEADER_ERROR}` header is set")
        channels[cid] = {"address": command.subject, "messages": {"request": request}}
        channels[f"{cid}_reply"] = {"address": None, "messages": {"reply": reply}}
        operations[cid] = {
            "action": "send", "summary": command.summary, "channel": {"$ref": f"#/channels/{cid}"},
            "reply": {"channel": {"$ref": f"#/channels/{cid}_reply"}},
            "description": f"Core NATS request/reply, answered by the `{command.subject.split('.')[1]}` queue group.",
        }
    for event in subjects.EVENTS:
        cid = _channel_id(event.subject)
        envelope = {"allOf": [ref[EventEnvelope], {"properties": {"data": ref[event.data]}}]}
        channels[cid] = {"address": event.subject, "messages": {"event": message(cid, envelope, event.summary)}}
        operations[cid] = {
            "action": "receive", "summary": event.summary, "channel": {"$ref": f"#/channels/{cid}"},
            "description": f"JetStream stream `{subjects.EVENTS_STREAM}`; `Nats-Msg-Id` is the envelope id.",
        }
    for job in subjects.JOBS:
        cid = _channel_id(job.subject)
        channels[cid] = {"address": job.subject, "messages": {"job": message(cid, ref[job.payload], job.summary)}}
        operations[cid] = {"action": "receive", "summary": job.summary, "channel": {"$ref": f"#/channels/{cid}"},
                           "description": f"JetStream work-queue stream `{subjects.JOBS_STREAM}`."}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Loupe bus", "version": VERSION,
                 "description": "Commands (request/reply), events (JetStream, public) and jobs (work queue)."},
        "servers": {"local": {"host": nats_url.removeprefix("nats://"), "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": components, "messages": messages},
    }
