"""Projects end to end: REST → gateway → NATS → catalog → Postgres, and the events on JetStream."""

from __future__ import annotations

import asyncio

import aiohttp
import msgspec
import pytest
from nats.js.api import DeliverPolicy

from proto import subjects
from proto.common import EventEnvelope
from shared.bus import Bus
from tests.helpers import create, problem


async def test_without_a_key_every_api_call_is_401(anonymous: aiohttp.ClientSession) -> None:
    async with anonymous.get("/v1/projects") as response:
        body = await problem(response, 401)
    assert body["code"] == "unauthenticated" and "X-API-Key" in body["detail"]
    async with anonymous.post("/v1/projects", json={"name": "x"}, headers={"X-API-Key": "lp_not-a-key"}) as response:
        assert (await problem(response, 401))["code"] == "unauthenticated"


async def test_probes_metrics_and_openapi_need_no_key(anonymous: aiohttp.ClientSession) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        async with anonymous.get(path) as response:
            assert response.status == 200, path


async def test_create_get_rename_list_delete(api: aiohttp.ClientSession, unique: str) -> None:
    created = await create(api, f"cars {unique}", description="dashcam frames")
    assert created["name"] == f"cars {unique}" and created["version"] == 1

    async with api.get(f"/v1/projects/{created['id']}") as response:
        assert response.status == 200 and await response.json() == created

    async with api.patch(f"/v1/projects/{created['id']}", json={"name": f"trucks {unique}", "version": 1}) as response:
        renamed = await response.json()
    assert (renamed["name"], renamed["version"], renamed["description"]) == (f"trucks {unique}", 2, "dashcam frames")

    async with api.patch(f"/v1/projects/{created['id']}", json={"name": "stale", "version": 1}) as response:
        assert (await problem(response, 409))["details"]["current_version"] == 2

    async with api.delete(f"/v1/projects/{created['id']}") as response:
        assert response.status == 204
    async with api.get(f"/v1/projects/{created['id']}") as response:
        assert (await problem(response, 404))["code"] == "not_found"
    async with api.delete(f"/v1/projects/{created['id']}") as response:
        await problem(response, 404)


async def test_list_pages_through_every_project_once(api: aiohttp.ClientSession, unique: str) -> None:
    made = {(await create(api, f"page {unique} {i}"))["id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        async with api.get("/v1/projects", params=params) as response:
            page = await response.json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert made <= set(seen) and len(seen) == len(set(seen))


async def test_list_finds_one_project_by_its_name_whatever_its_case(
        api: aiohttp.ClientSession, unique: str, user_client) -> None:
    made = await create(api, f"Named {unique}")
    await create(api, f"Named {unique} too")
    async with api.get("/v1/projects", params={"name": f"named {unique.upper()}"}) as response:
        assert [item["id"] for item in (await response.json())["items"]] == [made["id"]]
    _, outsider = await user_client()
    async with outsider.get("/v1/projects", params={"name": f"Named {unique}"}) as response:
        assert (await response.json())["items"] == []  # a private project's name does not leak


@pytest.mark.parametrize(("body", "path", "status"), [
    ({"name": 42}, "$.name", 422),
    ({}, "$", 422),
    ({"name": ""}, "$.name", 422),
    ({"name": "ok", "colour": "red"}, "$", 422),
    ({"name": "x" * 201}, "$.name", 422),
])
async def test_malformed_bodies_are_4xx_naming_the_field(api: aiohttp.ClientSession, body: dict, path: str,
                                                         status: int) -> None:
    async with api.post("/v1/projects", json=body) as response:
        problem_body = await problem(response, status)
    assert problem_body["code"] == "invalid" and problem_body["path"] == path
    field = path.removeprefix("$.")
    assert field == "$" or field in problem_body["detail"]


async def test_bad_json_query_and_cursor_are_clear(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/projects", data=b"{not json", headers={"Content-Type": "application/json"}) as response:
        assert (await problem(response, 400))["code"] == "malformed"
    async with api.get("/v1/projects", params={"limit": "many"}) as response:
        assert (await problem(response, 422))["path"] == "query.limit"
    async with api.get("/v1/projects", params={"limit": "0"}) as response:
        assert (await problem(response, 422))["path"] == "query.limit"
    async with api.get("/v1/projects", params={"cursor": "garbage"}) as response:
        assert (await problem(response, 422))["path"] == "$.cursor"
    async with api.get("/v1/nowhere") as response:
        await problem(response, 404)


async def test_duplicate_names_conflict(api: aiohttp.ClientSession, unique: str) -> None:
    await create(api, f"dup {unique}")
    async with api.post("/v1/projects", json={"name": f"DUP {unique}"}) as response:
        assert (await problem(response, 409))["path"] == "$.name"


async def test_oversized_body_is_413(api: aiohttp.ClientSession, stack) -> None:
    huge = b'{"name": "' + b"x" * (stack.settings.max_body_bytes + 1) + b'"}'
    async with api.post("/v1/projects", data=huge, headers={"Content-Type": "application/json"}) as response:
        assert (await problem(response, 413))["code"] == "too_large"


async def test_every_change_emits_its_event_on_jetstream(api: aiohttp.ClientSession, bus: Bus, unique: str) -> None:
    subscription = await bus.js.subscribe("loupe.evt.catalog.project.>", ordered_consumer=True,
                                          deliver_policy=DeliverPolicy.NEW)
    try:
        created = await create(api, f"events {unique}")
        async with api.patch(f"/v1/projects/{created['id']}", json={"name": f"events2 {unique}"}):
            pass
        async with api.delete(f"/v1/projects/{created['id']}"):
            pass
        received = []
        while len(received) < 3:
            msg = await subscription.next_msg(timeout=10)
            envelope = msgspec.json.decode(msg.data, type=EventEnvelope)
            if envelope.project == created["id"]:
                assert msg.headers[subjects.HEADER_MSG_ID] == envelope.id
                received.append((msg.subject, envelope))
    finally:
        await subscription.unsubscribe()
    assert [s for s, _ in received] == [subjects.PROJECT_CREATED.subject, subjects.PROJECT_UPDATED.subject,
                                        subjects.PROJECT_DELETED.subject]
    assert received[0][1].data["name"] == f"events {unique}"
    assert received[1][1].data["changed"] == ["name"]


async def test_dead_letters_are_listed_per_service_by_admins(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/admin/services/catalog/dead-letters") as response:
        assert response.status == 200 and (await response.json())["items"] == []
    async with api.get("/v1/admin/services/nope/dead-letters") as response:
        assert (await problem(response, 404))["path"] == "service"
    async with api.post("/v1/admin/services/catalog/dead-letters/999999/replay") as response:
        await problem(response, 404)


async def test_openapi_has_a_stable_operation_id_everywhere(anonymous: aiohttp.ClientSession) -> None:
    async with anonymous.get("/openapi.json") as response:
        document = await response.json()
    assert document["openapi"].startswith("3.1")
    ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert {"createProject", "listProjects", "getProject", "updateProject", "deleteProject"} <= set(ids)
    create_schema = document["components"]["schemas"]["CreateProject"]
    assert create_schema["required"] == ["name"]


async def test_every_service_is_ready_and_serves_metrics(stack) -> None:
    async with aiohttp.ClientSession() as session:
        for name in subjects.SERVICES:
            port = getattr(stack.ports, name)
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 200, (name, await response.text())
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200 and "python_info" in await response.text()


async def read_sse(response: aiohttp.ClientResponse, count: int) -> list[dict[str, str]]:
    events, current = [], {}
    while len(events) < count:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
        if not line:
            if current:
                events.append(current)
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    return events


async def test_project_events_stream_as_sse_and_resume_after_last_event_id(
        api: aiohttp.ClientSession, unique: str) -> None:
    created = await create(api, f"sse {unique}")
    async with api.get(f"/v1/projects/{created['id']}/events", headers={"Last-Event-ID": "0"}) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        (first,) = await read_sse(response, 1)
    assert first["event"] == "catalog.project.created"
    assert msgspec.json.decode(first["data"])["project"] == created["id"]

    async with api.patch(f"/v1/projects/{created['id']}", json={"description": "now streaming"}):
        pass
    async with api.get(f"/v1/projects/{created['id']}/events", headers={"Last-Event-ID": first["id"]}) as response:
        (second,) = await read_sse(response, 1)
    assert second["event"] == "catalog.project.updated" and int(second["id"]) > int(first["id"])

    async with api.get("/v1/projects/00000000-0000-0000-0000-000000000000/events") as response:
        await problem(response, 404)
