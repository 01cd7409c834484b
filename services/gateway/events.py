"""Server-sent events: a project's events from JetStream, resumable with `Last-Event-ID`.

The SSE `id` of each event is its JetStream stream sequence, so a client that reconnects with
`Last-Event-ID` continues exactly after the last event it saw (within the stream's retention).

A gateway process follows the events once, whatever the number of its streams: one ordered JetStream
consumer (`Fanout`) reads each event's project once and hands the event to the queues of that
project's streams only, so an event costs the same however many projects and other streams there are.
A stream that resumes first replays its project's events up to where the shared consumer stood when
it joined, from a consumer of its own that ends there, then takes its queue.

A stream whose client reads too slowly does not hold up the others: once QUEUE_EVENTS events wait in
its queue it is ended after sending those, and the client (an `EventSource` does so by itself)
reconnects with the `Last-Event-ID` of the last one and misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import NamedTuple

import msgspec
import nats.errors
from aiohttp import web
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from proto import subjects
from proto.catalog import ProjectRef
from services.gateway.auth import CALLER
from shared.service import RUNTIME

KEEPALIVE_S = 15.0  # a stream that sent nothing this long gets a comment
KEEPALIVE_SWEEP_S = 1.0  # how often the streams are looked over for that, spreading the comments out
REPLAY_IDLE_S = 1.0  # a replay that receives nothing this long asks whether anything is left of it
QUEUE_EVENTS = 1000  # events waiting for one stream before it is ended (see above)


class ProjectOf(msgspec.Struct):
    """The one envelope field the dispatch needs; the rest passes through as bytes."""

    project: str | None = None


project_of = msgspec.json.Decoder(ProjectOf)


# A stream sequence as this stream sends it; JetStream's are unsigned 64-bit, so 19 digits always fit.
_SEQUENCE = re.compile(r"[0-9]{1,19}")


def resume_sequence(request: web.Request) -> int | None:
    """Where to resume; a `Last-Event-ID` that is no sequence of ours starts from now."""
    last = request.headers.get("Last-Event-ID", "")
    return int(last) + 1 if _SEQUENCE.fullmatch(last) else None


class Frame(NamedTuple):
    sequence: int
    data: bytes  # the event as SSE bytes


KEEPALIVE = Frame(0, b": keep-alive\n\n")


def frame_of(msg: Msg, sequence: int) -> Frame:
    event_type = msg.subject.removeprefix(subjects.EVENT_PREFIX)
    return Frame(sequence, f"id: {sequence}\nevent: {event_type}\ndata: ".encode() + msg.data + b"\n\n")


def project_of_event(msg: Msg) -> str | None:
    """The event's project; None for events of none, and for bytes that are no envelope."""
    try:
        return project_of.decode(msg.data).project
    except msgspec.DecodeError:
        return None


class Listener:
    """One open stream: the events of its project from `joined_at` on, queued until its client takes them;
    None in the queue ends the stream."""

    def __init__(self, project: str, joined_at: int) -> None:
        self.project = project
        self.joined_at = joined_at  # the shared consumer's position when the stream joined
        self.queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self.sent_at = time.monotonic()  # when its handler last wrote to the client

    def offer(self, frame: Frame) -> bool:
        """Queue the frame; False, and the stream ends after what is queued, when too many already wait."""
        if self.queue.qsize() >= QUEUE_EVENTS:
            self.queue.put_nowait(None)
            return False
        self.queue.put_nowait(frame)
        return True


class Fanout:
    """The gateway process's one consumer of the events, and the streams each project's events go to."""

    def __init__(self) -> None:
        self.listeners: dict[str, set[Listener]] = {}
        # Every event up to this stream sequence has been dispatched (or came before the consumer started).
        self.position = 0
        self._subscription: JetStreamContext.PushSubscription | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._closed = False

    async def start(self, js: JetStreamContext) -> None:
        """Follow the events from the stream's end, once: the first stream to open starts it."""
        async with self._starting:
            if self._subscription is not None:
                return
            self.position = (await js.stream_info(subjects.EVENTS_STREAM)).state.last_seq
            config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.position + 1)
            self._subscription = await js.subscribe(
                subjects.EVENTS_SUBJECTS, ordered_consumer=True, config=config, cb=self._dispatch
            )
            self._keepalive = asyncio.create_task(self._keep_alive())

    async def _dispatch(self, msg: Msg) -> None:
        self.position = msg.metadata.sequence.stream
        listeners = self.listeners.get(project_of_event(msg) or "")
        if not listeners:
            return
        frame = frame_of(msg, self.position)
        for listener in [listener for listener in listeners if not listener.offer(frame)]:
            self.leave(listener)

    async def _keep_alive(self) -> None:
        """Proxies close connections that stay silent: a stream idle for KEEPALIVE_S gets a comment. Writing
        it is also how a handler learns that its client left (aiohttp does not cancel it), and leaves."""
        while True:
            await asyncio.sleep(KEEPALIVE_SWEEP_S)
            idle_since = time.monotonic() - KEEPALIVE_S
            for listeners in self.listeners.values():
                for listener in listeners:
                    if listener.sent_at <= idle_since and listener.queue.empty():
                        listener.queue.put_nowait(KEEPALIVE)

    def join(self, project: str) -> Listener:
        listener = Listener(project, self.position)
        if self._closed:  # the gateway is stopping: the stream ends at once
            listener.queue.put_nowait(None)
        else:
            self.listeners.setdefault(project, set()).add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        listeners = self.listeners.get(listener.project, set())
        listeners.discard(listener)
        if not listeners:
            self.listeners.pop(listener.project, None)

    async def close(self) -> None:
        """End every stream (after what is queued for it) and stop following the events."""
        self._closed = True
        for listeners in self.listeners.values():
            for listener in listeners:
                listener.queue.put_nowait(None)
        self.listeners.clear()
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()


FANOUT = web.AppKey("events fan-out", Fanout)


async def close_streams(app: web.Application) -> None:
    """An aiohttp shutdown hook: it runs before the server waits for its handlers, which then end."""
    await app[FANOUT].close()


def mount(app: web.Application) -> None:
    """The events route, and the fan-out it shares, ended when the gateway shuts down."""
    app[FANOUT] = Fanout()
    app.on_shutdown.append(close_streams)
    app.router.add_get(PATH, stream_project_events, name=OPERATION_ID)


async def replay(js: JetStreamContext, listener: Listener, start: int, response: web.StreamResponse) -> int:
    """Write the project's events from sequence `start` up to where the stream joined the shared consumer;
    returns the sequence of the last event read."""
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
    subscription = await js.subscribe(subjects.EVENTS_SUBJECTS, ordered_consumer=True, config=config)
    last = start - 1
    try:
        while last < listener.joined_at:
            try:
                msg = await subscription.next_msg(timeout=REPLAY_IDLE_S)
            except (TimeoutError, nats.errors.TimeoutError):
                if (await subscription.consumer_info()).num_pending == 0:
                    break  # the rest of the range is gone from the stream (its retention)
                continue  # only slow
            sequence = msg.metadata.sequence.stream
            if sequence > listener.joined_at:
                break  # the queue has it
            last = sequence
            if project_of_event(msg) == listener.project:
                await response.write(frame_of(msg, sequence).data)
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    return last


async def stream_project_events(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    project_id = request.match_info["project_id"]
    # Asking the catalog first answers 404 for projects this key cannot see, before any stream opens.
    await rt.nats.request(subjects.GET_PROJECT, ProjectRef(id=project_id), caller=request[CALLER])
    start = resume_sequence(request)
    fanout = request.app[FANOUT]
    await fanout.start(rt.nats.js)
    listener = fanout.join(project_id)
    try:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        # Only events after the one the client saw last; a `Last-Event-ID` ahead of the stream waits for it.
        seen = listener.joined_at
        if start is not None:
            seen = await replay(rt.nats.js, listener, start, response) if start <= listener.joined_at else start - 1
        while (frame := await listener.queue.get()) is not None:
            if frame is KEEPALIVE or frame.sequence > seen:
                await response.write(frame.data)
                seen, listener.sent_at = max(seen, frame.sequence), time.monotonic()
    except (ConnectionResetError, nats.errors.ConnectionClosedError):
        pass  # the client left, or the gateway is shutting down
    finally:
        fanout.leave(listener)
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
