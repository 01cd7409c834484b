"""Revoking a key, deactivating a user or taking a role away takes effect at once, not after the gateway's
cache time: on the very next request through the gateway that relayed the change, and within a second
through any gateway once the catalog's event arrives (here: changes sent to the catalog over the bus,
which the gateway never sees)."""

from __future__ import annotations

import asyncio

import aiohttp
import msgspec
import pytest
from nats.aio.msg import Msg

from proto import subjects
from proto.catalog import (ApiKeyRef, ApiKeyRevoked, MemberRef, ProjectRef, UpdateProject, UpdateProjectRequest,
                           UpdateUser, UpdateUserRequest)
from proto.common import Caller, EventEnvelope
from shared.bus import Bus
from shared.settings import Settings
from tests.helpers import create, eventually, problem

AT_ONCE_S = 1.0  # how soon an event must reach the gateway; far less than its cache time


@pytest.fixture(autouse=True)
def cache_outlives_the_test(settings: Settings) -> None:
    """Refusals within AT_ONCE_S prove the events work only while the cache would have trusted longer."""
    assert settings.auth_cache_s >= 5 * AT_ONCE_S


@pytest.fixture
async def admin(api: aiohttp.ClientSession) -> Caller:
    """The caller the admin key is, for commands sent over the bus straight to the catalog."""
    async with api.get("/v1/me") as response:
        me = await response.json()
    return Caller(org_id=me["org_id"], key_id=me["key_id"], is_admin=True)


async def status_of(session: aiohttp.ClientSession, path: str) -> int:
    async with session.get(path) as response:
        return response.status


async def refused_at_once(session: aiohttp.ClientSession, path: str, status: int) -> None:
    """Until `path` answers `status`; it must within AT_ONCE_S."""
    async def refused() -> bool:
        assert await status_of(session, path) == status, f"{path} still answers so after the change"
        return True
    await eventually(refused, timeout=AT_ONCE_S, interval=0.02)


async def new_key(user: aiohttp.ClientSession, gateway_url: str) -> tuple[dict, aiohttp.ClientSession]:
    async with user.post("/v1/me/api-keys", json={"name": "second"}) as response:
        assert response.status == 201, await response.text()
        key = await response.json()
    return key, aiohttp.ClientSession(gateway_url, headers={"Authorization": f"Bearer {key['key']}"})


class Events:
    """Collects the events published on some subjects, as any core NATS subscriber sees them."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []

    async def put(self, msg: Msg) -> None:
        self.received.append((msg.subject, msgspec.json.decode(msg.data, type=EventEnvelope).data))

    async def of_user(self, user_id: str, count: int) -> list[tuple[str, dict]]:
        """The events about `user_id`, once there are at least `count` of them (within 5 s)."""
        async def enough() -> list[tuple[str, dict]]:
            mine = [(s, data) for s, data in self.received if data["user_id"] == user_id]
            assert len(mine) >= count, mine
            return mine
        return await eventually(enough, timeout=5)


@pytest.fixture
async def events(bus: Bus):
    collected = Events()
    subscriptions = [await bus.nc.subscribe(event.subject, cb=collected.put)
                     for event in (subjects.APIKEY_REVOKED, subjects.USER_UPDATED)]
    await bus.nc.flush()
    yield collected
    for subscription in subscriptions:
        await subscription.unsubscribe()


async def test_a_revoked_key_is_refused_on_its_next_request(user_client, stack) -> None:
    _, user = await user_client()
    key, laptop = await new_key(user, stack.gateway_url)
    async with laptop:
        assert await status_of(laptop, "/v1/me") == 200  # verified, and now cached
        async with user.delete(f"/v1/me/api-keys/{key['id']}") as response:
            assert response.status == 200, await response.text()
        async with laptop.get("/v1/me") as response:
            assert (await problem(response, 401))["code"] == "unauthenticated"
    assert await status_of(user, "/v1/me") == 200  # the user's other key still works


async def test_a_key_revoked_behind_the_gateways_back_is_refused_once_the_event_arrives(
        user_client, stack, bus, admin, events) -> None:
    user_id, user = await user_client()
    key, laptop = await new_key(user, stack.gateway_url)
    async with laptop:
        assert await status_of(laptop, "/v1/me") == 200
        revoked = await bus.request(subjects.REVOKE_API_KEY, ApiKeyRef(user_id=user_id, id=key["id"]), caller=admin)
        assert revoked.revoked_at is not None
        await refused_at_once(laptop, "/v1/me", 401)
    # Which key, whose, in which organisation: never the key or its hash.
    assert await events.of_user(user_id, 1) == [(subjects.APIKEY_REVOKED.subject, msgspec.to_builtins(
        ApiKeyRevoked(key_id=key["id"], user_id=user_id, org_id=admin.org_id)))]
    # Revoking it again changes nothing, so announces nothing.
    await bus.request(subjects.REVOKE_API_KEY, ApiKeyRef(user_id=user_id, id=key["id"]), caller=admin)
    await asyncio.sleep(0.3)
    assert len(await events.of_user(user_id, 1)) == 1


async def test_a_deactivated_users_keys_are_refused_at_once(api, user_client, stack, bus, admin, events) -> None:
    user_id, user = await user_client()
    key, laptop = await new_key(user, stack.gateway_url)
    async with laptop:
        assert await status_of(user, "/v1/me") == 200 and await status_of(laptop, "/v1/me") == 200
        async with api.patch(f"/v1/users/{user_id}", json={"active": False}) as response:
            assert response.status == 200, await response.text()
        assert await status_of(user, "/v1/me") == 401 and await status_of(laptop, "/v1/me") == 401
    received = await events.of_user(user_id, 3)
    revoked = {data["key_id"] for subject, data in received if subject == subjects.APIKEY_REVOKED.subject}
    updated = [data for subject, data in received if subject == subjects.USER_UPDATED.subject]
    assert len(revoked) == 2 and key["id"] in revoked
    assert [(data["changed"], data["active"]) for data in updated] == [(["active"], False)]


async def test_a_user_deactivated_behind_the_gateways_back_is_refused_once_the_event_arrives(
        user_client, bus, admin) -> None:
    user_id, user = await user_client()
    assert await status_of(user, "/v1/me") == 200
    await bus.request(subjects.UPDATE_USER, UpdateUserRequest(id=user_id, changes=UpdateUser(active=False)),
                      caller=admin)
    await refused_at_once(user, "/v1/me", 401)


async def test_an_admin_made_a_plain_user_loses_admin_rights_at_once(api, user_client, unique) -> None:
    project = await create(api, f"admins {unique}")
    user_id, user = await user_client(is_admin=True)
    assert await status_of(user, f"/v1/projects/{project['id']}") == 200  # admin everywhere, cached
    assert await status_of(user, "/v1/users/" + user_id + "/api-keys") == 200
    async with api.patch(f"/v1/users/{user_id}", json={"is_admin": False}) as response:
        assert response.status == 200, await response.text()
    assert await status_of(user, f"/v1/projects/{project['id']}") == 404
    assert await status_of(user, "/v1/users/" + user_id + "/api-keys") == 403


async def test_a_removed_member_loses_the_project_at_once(api, user_client, unique) -> None:
    project = await create(api, f"members {unique}")
    path = f"/v1/projects/{project['id']}/members"  # the catalog leaves this check to the gateway
    user_id, labeler = await user_client(project["id"], "labeler")
    assert await status_of(labeler, path) == 200
    async with api.delete(f"{path}/{user_id}") as response:
        assert response.status == 204, await response.text()
    async with labeler.get(path) as response:
        await problem(response, 404)


async def test_a_lowered_role_is_refused_at_once(api, user_client, unique) -> None:
    project = await create(api, f"lowered {unique}")
    path = f"/v1/projects/{project['id']}"
    user_id, manager = await user_client(project["id"], "manager")
    async with manager.patch(path, json={"description": "by the manager"}) as response:
        assert response.status == 200, await response.text()
    async with api.put(f"{path}/members/{user_id}", json={"role": "labeler"}) as response:
        assert response.status == 200, await response.text()
    async with manager.patch(path, json={"description": "again"}) as response:
        assert (await problem(response, 403))["details"] == {"role": "labeler", "needed": "manager"}


async def test_a_member_removed_behind_the_gateways_back_loses_the_project_once_the_event_arrives(
        api, user_client, bus, admin, unique) -> None:
    project = await create(api, f"bus members {unique}")
    path = f"/v1/projects/{project['id']}/members"  # the catalog leaves this check to the gateway
    user_id, labeler = await user_client(project["id"], "labeler")
    _, other = await user_client(project["id"], "labeler")
    assert await status_of(labeler, path) == 200 and await status_of(other, path) == 200
    await bus.request(subjects.REMOVE_MEMBER, MemberRef(project_id=project["id"], user_id=user_id), caller=admin)
    await refused_at_once(labeler, path, 404)
    assert await status_of(other, path) == 200


async def test_a_project_made_private_or_deleted_behind_the_gateways_back_is_gone_once_the_event_arrives(
        api, user_client, bus, admin, unique) -> None:
    project = await create(api, f"public {unique}", public=True)
    path = f"/v1/projects/{project['id']}/members"  # the catalog leaves this check to the gateway
    _, reader = await user_client()
    _, labeler = await user_client(project["id"], "labeler")
    assert await status_of(reader, path) == 200 and await status_of(labeler, path) == 200
    hide = UpdateProjectRequest(id=project["id"], changes=UpdateProject(public=False))
    await bus.request(subjects.UPDATE_PROJECT, hide, caller=admin)
    await refused_at_once(reader, path, 404)
    assert await status_of(labeler, path) == 200
    await bus.request(subjects.DELETE_PROJECT, ProjectRef(id=project["id"]), caller=admin)
    await refused_at_once(labeler, path, 404)


async def test_only_admins_and_the_user_themself_see_emails(api, user_client, unique) -> None:
    labeler_id, labeler = await user_client()
    colleague_id, _ = await user_client()
    async with labeler.get("/v1/users") as response:
        assert response.status == 200, await response.text()
        seen = {u["id"]: u for u in (await response.json())["items"]}
    assert seen[labeler_id]["email"].endswith("@example.com")
    assert seen[colleague_id]["email"] is None and seen[colleague_id]["name"].startswith("user ")
    async with labeler.get(f"/v1/users/{colleague_id}") as response:
        assert (await response.json())["email"] is None
    async with labeler.get("/v1/me") as response:
        assert (await response.json())["user"]["email"].endswith("@example.com")
    async with api.get("/v1/users") as response:
        assert all(u["email"] for u in (await response.json())["items"])
    async with api.get(f"/v1/users/{colleague_id}") as response:
        assert (await response.json())["email"].endswith("@example.com")
