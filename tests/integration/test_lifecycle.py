"""Services stop gracefully, survive being killed, and come back with everything they had."""

from __future__ import annotations

import asyncio

import aiohttp

from loupe.stack import Stack


async def test_catalog_away_is_503_and_back_with_its_projects_after_sigterm_or_kill(
        stack: Stack, api: aiohttp.ClientSession, unique: str) -> None:
    async with api.post("/v1/projects", json={"name": f"durable {unique}"}) as response:
        created = await response.json()

    for kill in (False, True):
        await asyncio.to_thread(stack.stop_service, "catalog", kill)
        async with api.get(f"/v1/projects/{created['id']}") as response:
            assert response.status == 503
            problem = await response.json()
        assert problem["code"] == "unavailable" and "catalog" in problem["detail"]
        await asyncio.to_thread(stack.start_service, "catalog")
        async with api.get(f"/v1/projects/{created['id']}") as response:
            assert response.status == 200 and (await response.json())["name"] == f"durable {unique}"


async def test_sigterm_lets_a_service_finish_and_exit_cleanly(stack: Stack) -> None:
    await asyncio.to_thread(stack.stop_service, "annotation", False)
    log = (stack.log_dir / "annotation.log").read_text()
    assert '"message": "annotation stopping"' in log
    assert "Traceback" not in log
    await asyncio.to_thread(stack.start_service, "annotation")
