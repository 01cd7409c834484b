"""The gateway's event fan-out: each event reaches exactly the streams of its project, a stream too far
behind is ended without holding up the others, and streams leave the dispatch table cleanly."""

from __future__ import annotations

import asyncio

import msgspec
from nats.aio.msg import Msg

from services.gateway.events import KEEPALIVE, KEEPALIVE_S, QUEUE_EVENTS, Fanout, Frame, Listener


def event(sequence: int, project: str | None, event_type: str = "catalog.project.updated") -> Msg:
    """A message as the JetStream consumer delivers it: its reply subject carries the stream sequence."""
    reply = f"$JS.ACK.LOUPE_EVENTS.gateway.1.{sequence}.{sequence}.1700000000000000000.0"
    data = msgspec.json.encode({"id": f"e{sequence}", "type": event_type, "project": project, "data": {}})
    return Msg(None, subject=f"loupe.evt.{event_type}", reply=reply, data=data)  # type: ignore[arg-type]


def drain(listener: Listener) -> list[Frame | None]:
    frames = []
    while not listener.queue.empty():
        frames.append(listener.queue.get_nowait())
    return frames


async def dispatch(fanout: Fanout, *messages: Msg) -> None:
    for msg in messages:
        await fanout._dispatch(msg)


async def test_each_event_reaches_exactly_the_streams_of_its_project() -> None:
    fanout = Fanout()
    streams = {project: [fanout.join(project) for _ in range(3)] for project in ("a", "b", "c")}
    await dispatch(fanout, event(1, "a"), event(2, "b"), event(3, None), event(4, "a"), event(5, "d"))

    assert fanout.position == 5
    for project, expected in (("a", [1, 4]), ("b", [2]), ("c", [])):
        for listener in streams[project]:
            frames = drain(listener)
            assert [frame.sequence for frame in frames if frame] == expected
    assert drain(fanout.join("b")) == []  # a stream that joins later gets only what comes after


async def test_a_frame_is_the_sse_event_with_the_stream_sequence_as_its_id() -> None:
    fanout = Fanout()
    listener = fanout.join("a")
    msg = event(42, "a")
    await dispatch(fanout, msg)
    (frame,) = drain(listener)
    assert frame == Frame(42, b"id: 42\nevent: catalog.project.updated\ndata: " + msg.data + b"\n\n")


async def test_bytes_that_are_no_envelope_are_passed_over() -> None:
    fanout = Fanout()
    listener = fanout.join("a")
    garbage = Msg(None, subject="loupe.evt.x.y.z", reply=event(7, "a").reply, data=b"\xff not json")  # type: ignore[arg-type]
    await dispatch(fanout, garbage, event(8, "a"))
    assert [frame.sequence for frame in drain(listener) if frame] == [8]
    assert fanout.position == 8


async def test_a_stream_too_far_behind_is_ended_after_its_queue_and_the_others_go_on() -> None:
    fanout = Fanout()
    slow, fast = fanout.join("a"), fanout.join("a")
    for sequence in range(1, QUEUE_EVENTS + 3):
        await dispatch(fanout, event(sequence, "a"))
        drain(fast)  # this one keeps up

    frames = drain(slow)
    # Every event up to the bound, in order, then the end: its client resumes after the last one it got.
    assert [frame.sequence for frame in frames[:-1] if frame] == list(range(1, QUEUE_EVENTS + 1))
    assert frames[-1] is None
    assert fanout.listeners["a"] == {fast}
    await dispatch(fanout, event(QUEUE_EVENTS + 3, "a"))
    assert [frame.sequence for frame in drain(fast) if frame] == [QUEUE_EVENTS + 3]
    assert slow.queue.empty()


async def test_leaving_empties_the_dispatch_table() -> None:
    fanout = Fanout()
    streams = [fanout.join(project) for project in ("a", "a", "b")]
    for listener in streams:
        fanout.leave(listener)
        fanout.leave(listener)  # a stream ended by the fan-out leaves again when its handler ends
    assert fanout.listeners == {}


async def test_closing_ends_every_stream_and_any_that_joins_after() -> None:
    fanout = Fanout()
    streams = [fanout.join(project) for project in ("a", "b")]
    await dispatch(fanout, event(1, "a"))
    await fanout.close()
    assert [frame.sequence if frame else None for frame in drain(streams[0])] == [1, None]
    assert drain(streams[1]) == [None]
    assert drain(fanout.join("a")) == [None]
    assert fanout.listeners == {}


async def test_keep_alives_go_to_streams_idle_for_a_while_only(monkeypatch) -> None:
    monkeypatch.setattr("services.gateway.events.KEEPALIVE_SWEEP_S", 0.01)
    fanout = Fanout()
    idle, recent, queued = fanout.join("a"), fanout.join("b"), fanout.join("c")
    idle.sent_at -= KEEPALIVE_S
    queued.sent_at -= KEEPALIVE_S
    await dispatch(fanout, event(1, "c"))
    task = asyncio.create_task(fanout._keep_alive())
    try:
        assert await asyncio.wait_for(idle.queue.get(), 5) is KEEPALIVE
    finally:
        task.cancel()
    assert drain(recent) == []  # it wrote to its client lately
    assert [frame.sequence for frame in drain(queued) if frame] == [1]  # it has an event to send anyway
