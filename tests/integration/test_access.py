"""Organisations, users, keys and project roles, enforced at the gateway for every project route."""

from __future__ import annotations

import aiohttp

from tests.helpers import create, problem


async def test_a_user_without_a_role_on_a_private_project_gets_404_never_403(api, user_client, unique) -> None:
    project = await create(api, f"secret {unique}")
    _, outsider = await user_client()
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/members"), ("GET", "/events")):
        async with outsider.request(method, f"/v1/projects/{project['id']}{path}", json={}) as response:
            body = await problem(response, 404)
        assert "does not exist or is not visible" in body["detail"], (method, path)
    async with outsider.get("/v1/projects", params={"limit": 500}) as response:
        assert project["id"] not in {p["id"] for p in (await response.json())["items"]}


async def test_a_labeler_may_read_but_not_change_or_delete_the_project(api, user_client, unique) -> None:
    project = await create(api, f"labelled {unique}")
    _, labeler = await user_client(project["id"], "labeler")
    async with labeler.get(f"/v1/projects/{project['id']}") as response:
        assert response.status == 200 and (await response.json())["role"] == "labeler"
    async with labeler.patch(f"/v1/projects/{project['id']}", json={"name": "mine now"}) as response:
        body = await problem(response, 403)
    assert body["details"] == {"role": "labeler", "needed": "manager"}
    async with labeler.delete(f"/v1/projects/{project['id']}") as response:
        await problem(response, 403)
    async with labeler.put(f"/v1/projects/{project['id']}/members/{project['id']}", json={"role": "admin"}) as response:
        await problem(response, 403)


async def test_roles_grow_from_viewer_to_admin(api, user_client, unique) -> None:
    project = await create(api, f"roles {unique}")
    _, manager = await user_client(project["id"], "manager")
    async with manager.patch(f"/v1/projects/{project['id']}", json={"description": "by the manager"}) as response:
        assert response.status == 200, await response.text()
    async with manager.delete(f"/v1/projects/{project['id']}") as response:
        await problem(response, 403)
    admin_id, admin = await user_client(project["id"], "admin")
    async with admin.get(f"/v1/projects/{project['id']}/members") as response:
        roles = {m["user_id"]: m["role"] for m in (await response.json())["items"]}
    assert roles[admin_id] == "admin" and sorted(roles.values()) == ["admin", "manager"]
    async with admin.delete(f"/v1/projects/{project['id']}") as response:
        assert response.status == 204


async def test_a_public_project_is_visible_to_every_user_of_the_organisation_as_viewer(api, user_client, unique) -> None:
    project = await create(api, f"open {unique}", public=True, task_type="segmentation-bitmap")
    assert (project["public"], project["task_type"], project["content_type"]) == (True, "segmentation-bitmap", "image")
    _, reader = await user_client()
    async with reader.get(f"/v1/projects/{project['id']}") as response:
        assert (await response.json())["role"] == "viewer"
    async with reader.patch(f"/v1/projects/{project['id']}", json={"name": "x"}) as response:
        await problem(response, 403)


async def test_a_user_who_creates_a_project_administers_it(user_client, unique) -> None:
    user_id, user = await user_client()
    project = await create(user, f"own {unique}")
    assert project["role"] == "admin"
    async with user.get(f"/v1/projects/{project['id']}/members") as response:
        assert [(m["user_id"], m["role"]) for m in (await response.json())["items"]] == [(user_id, "admin")]


async def test_an_api_key_sees_only_its_organisation(api, stack, unique) -> None:
    ours = await create(api, f"ours {unique}", public=True)
    async with api.post("/v1/orgs", json={"name": f"acme {unique}", "admin_name": "Ann",
                                          "admin_email": f"ann@{unique}.example"}) as response:
        assert response.status == 201, await response.text()
        created = await response.json()
    assert created["admin"]["is_admin"] and created["api_key"]["key"].startswith("lp_")
    async with aiohttp.ClientSession(stack.gateway_url,
                                     headers={"Authorization": f"Bearer {created['api_key']['key']}"}) as theirs:
        async with theirs.get(f"/v1/projects/{ours['id']}") as response:
            await problem(response, 404)
        async with theirs.get("/v1/projects") as response:
            assert (await response.json())["items"] == []
        async with theirs.get("/v1/users") as response:
            assert [u["email"] for u in (await response.json())["items"]] == [f"ann@{unique}.example"]
        own = await create(theirs, f"theirs {unique}")
        async with theirs.post("/v1/orgs", json={"name": f"x {unique}", "admin_name": "X",
                                                 "admin_email": "x@x.example"}) as response:
            await problem(response, 403)
    async with api.get(f"/v1/projects/{own['id']}") as response:
        await problem(response, 404)


async def test_users_manage_their_own_keys_and_only_admins_manage_users(api, user_client, stack, unique) -> None:
    user_id, user = await user_client()
    async with user.get("/v1/me") as response:
        me = await response.json()
    assert me["user"]["id"] == user_id and not me["is_admin"]
    async with user.post("/v1/users", json={"name": "n", "email": f"n{unique}@example.com"}) as response:
        await problem(response, 403)
    async with user.post("/v1/me/api-keys", json={"name": "laptop"}) as response:
        second = await response.json()
    async with aiohttp.ClientSession(stack.gateway_url, headers={"X-API-Key": second["key"]}) as laptop:
        async with laptop.get("/v1/me") as response:
            assert (await response.json())["key_id"] == second["id"]
    async with user.delete(f"/v1/me/api-keys/{second['id']}") as response:
        assert (await response.json())["revoked_at"] is not None
    async with user.get("/v1/me/api-keys") as response:
        keys = (await response.json())["items"]
    assert len(keys) == 2 and all(k["key"] is None for k in keys)
    async with api.patch(f"/v1/users/{user_id}", json={"active": False}) as response:
        assert (await response.json())["active"] is False
    async with api.get(f"/v1/users/{user_id}/api-keys") as response:
        assert all(k["revoked_at"] for k in (await response.json())["items"])
    async with api.post("/v1/users", json={"name": "dup", "email": me["user"]["email"].upper()}) as response:
        await problem(response, 409)


async def test_a_labeler_cannot_change_the_schema_or_delete_data(api, user_client, unique) -> None:
    project = await create(api, f"guarded {unique}")
    base = f"/v1/projects/{project['id']}"
    async with api.post(f"{base}/datasets", json={"name": "train"}) as response:
        dataset = await response.json()
    async with api.post(f"{base}/datasets/{dataset['id']}/samples", json={"items": [
            {"media_url": "https://images.example.com/a.jpg", "name": "a.jpg", "width": 4, "height": 3}]}) as response:
        assert response.status == 200, await response.text()
        sample_id = (await response.json())["items"][0]["id"]
    async with api.post(f"{base}/label-classes", json={"name": "car"}) as response:
        assert response.status == 201, await response.text()
        car = await response.json()
    _, labeler = await user_client(project["id"], "labeler")
    refused = (("POST", "/label-classes", {"name": "truck"}), ("PATCH", f"/label-classes/{car['id']}", {"name": "x"}),
               ("DELETE", f"/label-classes/{car['id']}", None), ("PUT", "/schema", {}),
               ("DELETE", f"/samples/{sample_id}", None), ("DELETE", f"/datasets/{dataset['id']}", None),
               ("POST", "/samples/delete", {"ids": [sample_id]}))
    for method, path, body in refused:
        async with labeler.request(method, base + path, json=body) as response:
            assert (await problem(response, 403))["details"]["needed"] == "manager", (method, path)
    async with labeler.get(f"{base}/schema") as response:
        assert [c["name"] for c in (await response.json())["label_classes"]] == ["car"]
    async with labeler.get(f"{base}/samples/{sample_id}") as response:
        assert response.status == 200
