"""A project's event stream with many streams open at once: each gets exactly its project's events, in
order, and a stream that resumes while events flow misses none and repeats none."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import aiohttp
import msgspec

from tests.helpers import call, create

UPDATED = "catalog.project.updated"


async def next_event(response: aiohttp.ClientResponse) -> dict:
    """The next event of a stream (comments skipped), with its envelope decoded; within 10 s."""
    fields: dict = {}
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        elif fields:
            return {"id": int(fields["id"]), "event": fields["event"], "envelope": msgspec.json.decode(fields["data"])}


async def next_update(response: aiohttp.ClientResponse, project_id: str) -> dict:
    """The next `catalog.project.updated` of a stream. The project's `created` may come first: the catalog's
    outbox publishes it a moment after the call answered, which can be after the stream opened."""
    while (event := await next_event(response))["event"] != UPDATED:
        assert (event["event"], event["envelope"]["project"]) == ("catalog.project.created", project_id), event
    return event


async def next_updates(response: aiohttp.ClientResponse, project_id: str, count: int) -> list[dict]:
    return [await next_update(response, project_id) for _ in range(count)]


@contextlib.asynccontextmanager
async def streams(api: aiohttp.ClientSession, paths: Sequence[tuple[str, dict]]) -> AsyncIterator[list]:
    """Open event streams (project id, headers); each follows its project once its headers are in."""
    async with contextlib.AsyncExitStack() as opened:
        responses = []
        for project_id, headers in paths:
            response = await opened.enter_async_context(api.get(f"/v1/projects/{project_id}/events", headers=headers))
            assert response.status == 200, await response.text()
            responses.append(response)
        yield responses


async def update(api: aiohttp.ClientSession, project_id: str, description: str) -> None:
    await call(api, "PATCH", f"/v1/projects/{project_id}", json={"description": description})


async def test_many_streams_on_several_projects_each_get_exactly_their_projects_events(
    api: aiohttp.ClientSession, unique: str
) -> None:
    projects = [(await create(api, f"fan-out {unique} {index}"))["id"] for index in range(4)]
    per_project, rounds = 5, 3
    async with streams(api, [(project, {}) for project in projects for _ in range(per_project)]) as responses:
        for round_ in range(rounds):
            for project in projects:
                await update(api, project, f"round {round_}")
        # A last event of each, in reverse order: any event of another project that leaked into a stream
        # comes before its project's last one, since every other event was published earlier.
        for project in reversed(projects):
            await update(api, project, "last")

        received = await asyncio.gather(
            *(
                next_updates(response, projects[index // per_project], rounds + 1)
                for index, response in enumerate(responses)
            )
        )

    for index, events in enumerate(received):
        project = projects[index // per_project]
        assert [event["envelope"]["project"] for event in events] == [project] * (rounds + 1)
        assert [event["envelope"]["data"]["project"]["description"] for event in events] == [
            "round 0",
            "round 1",
            "round 2",
            "last",
        ]
        # Every stream of a project sees the same events, by their stream sequence.
        assert [event["id"] for event in events] == [
            event["id"] for event in received[index // per_project * per_project]
        ]
        assert sorted({event["id"] for event in events}) == [event["id"] for event in events]


async def test_a_stream_resumed_while_events_flow_misses_none_and_repeats_none(
    api: aiohttp.ClientSession, unique: str
) -> None:
    project = (await create(api, f"resume {unique}"))["id"]
    count = 30

    async def publish() -> None:
        for index in range(count):
            await update(api, project, f"update {index}")

    async with streams(api, [(project, {})]) as (reference,):
        publishing = asyncio.create_task(publish())
        seen = await next_updates(reference, project, 10)
        # Resume after the 5th while the rest are still being published: part of what follows comes from
        # the stream's history, part live, and the two must join up exactly.
        async with streams(api, [(project, {"Last-Event-ID": str(seen[4]["id"])})]) as (resumed,):
            seen += await next_updates(reference, project, count - 10)
            await publishing
            replayed = await next_updates(resumed, project, count - 5)

    assert [event["envelope"]["data"]["project"]["description"] for event in seen] == [
        f"update {index}" for index in range(count)
    ]
    assert [event["id"] for event in replayed] == [event["id"] for event in seen[5:]]


async def test_a_last_event_id_ahead_of_the_stream_waits_for_it(api: aiohttp.ClientSession, unique: str) -> None:
    project = (await create(api, f"ahead {unique}"))["id"]
    async with streams(api, [(project, {})]) as (now,):
        await update(api, project, "first")
        first = await next_update(now, project)
        async with streams(api, [(project, {"Last-Event-ID": str(first["id"] + 1)})]) as (ahead,):
            await update(api, project, "second")
            await update(api, project, "third")
            second, third = await next_updates(now, project, 2)
            # It gets the events after the id it named, and none before: `second` is usually that very id
            # (first + 1) and must not come; it comes only if another project's event took that id.
            expected = [event for event in (second, third) if event["id"] > first["id"] + 1]
            got = await next_updates(ahead, project, len(expected))
    assert [event["id"] for event in got] == [event["id"] for event in expected]
