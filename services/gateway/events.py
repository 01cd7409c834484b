"""Server-sent events: a project's events from JetStream, resumable with `Last-Event-ID`.

The SSE `id` of each event is its JetStream stream sequence, so a client that reconnects with
`Last-Event-ID` continues exactly after the last event it saw (within the stream's retention).
"""

from __future__ import annotations

import contextlib
import re

import msgspec
import nats.errors
from aiohttp import web
from nats.js.api import ConsumerConfig, DeliverPolicy

from proto import subjects
from proto.catalog import ProjectRef
from services.gateway.auth import CALLER
from shared.service import RUNTIME

KEEPALIVE_S = 15.0
POLL_S = 1.0  # how quickly a stream notices the gateway is stopping


class ProjectOf(msgspec.Struct):
    """The one envelope field the filter needs; the rest passes through as bytes."""

    project: str | None = None


project_of = msgspec.json.Decoder(ProjectOf)


# A stream sequence as this stream sends it; JetStream's are unsigned 64-bit, so 19 digits always fit.
_SEQUENCE = re.compile(r"[0-9]{1,19}")


def resume_sequence(request: web.Request) -> int | None:
    """Where to resume; a `Last-Event-ID` that is no sequence of ours starts from now."""
    last = request.headers.get("Last-Event-ID", "")
    return int(last) + 1 if _SEQUENCE.fullmatch(last) else None


async def stream_project_events(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    project_id = request.match_info["project_id"]
    # Asking the catalog first answers 404 for projects this key cannot see, before any stream opens.
    await rt.nats.request(subjects.GET_PROJECT, ProjectRef(id=project_id), caller=request[CALLER])
    start = resume_sequence(request)
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start else DeliverPolicy.NEW, opt_start_seq=start
    )
    subscription = await rt.nats.js.subscribe(subjects.EVENTS_SUBJECTS, ordered_consumer=True, config=config)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    idle = 0.0
    try:
        while rt.ready:
            try:
                msg = await subscription.next_msg(timeout=POLL_S)
            except (TimeoutError, nats.errors.TimeoutError):
                idle += POLL_S
                if idle >= KEEPALIVE_S:
                    await response.write(b": keep-alive\n\n")
                    idle = 0.0
                continue
            if project_of.decode(msg.data).project != project_id:
                continue
            event_type = msg.subject.removeprefix(subjects.EVENT_PREFIX)
            await response.write(
                f"id: {msg.metadata.sequence.stream}\nevent: {event_type}\ndata: ".encode() + msg.data + b"\n\n"
            )
            idle = 0.0
    except (ConnectionResetError, nats.errors.ConnectionClosedError):
        pass  # the client left, or the gateway is shutting down
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    return response


PATH = "/v1/projects/{project_id}/events"
OPERATION_ID = "streamProjectEvents"
# One server-sent event, as OpenAPI tools parse the stream: its fields, `data` the envelope as JSON text.
EVENT_SCHEMA = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
OPENAPI = {
    "operationId": OPERATION_ID,
    "summary": "Follow a project's events as server-sent events (resume with Last-Event-ID)",
    "tags": ["projects"],
    "parameters": [
        {"name": "project_id", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "the `id` of the last event received; the stream continues after it",
        },
    ],
    "responses": {
        "200": {
            "description": "`text/event-stream`: `id` is the stream sequence, `event` the event type "
            "(e.g. `catalog.project.updated`), `data` the event envelope as JSON",
            "content": {"text/event-stream": {"schema": EVENT_SCHEMA}},
        }
    },
}
