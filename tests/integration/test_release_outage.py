"""A release or export job that meets a passing outage of another service (a replica killed mid-request, the
catalog restarting) is delivered again after the back-off rather than failed for good: found by the chaos suite,
where a release FAILED with "the catalog service did not answer in time; retry later"."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp

from loupe.stack import Stack
from tests.helpers import call, finished, make_project


async def test_a_release_built_while_the_catalog_is_away_waits_for_it_instead_of_failing(
    api: aiohttp.ClientSession,
    stack: Stack,
    unique: str,
    user_client: Callable[..., Awaitable[tuple[str, aiohttp.ClientSession]]],
) -> None:
    project = await make_project(api, unique, samples=3)
    # A key verified a moment before the catalog goes: the gateway trusts its cached verdicts on the key and
    # the role (LOUPE_AUTH_CACHE_S, 10 s) through the outage; an older key's would expire mid-test.
    _, manager = await user_client(project.id, "manager")
    await call(manager, "GET", project.path)
    await asyncio.to_thread(stack.stop_service, "catalog")
    try:
        release = await call(manager, "POST", f"{project.path}/releases", 201, json={"name": "patient"})
        path = f"{project.path}/releases/{release['id']}"
        await asyncio.sleep(3)  # the first deliveries meet no catalog; before the fix, the release FAILED here
    finally:
        await asyncio.to_thread(stack.start_service, "catalog")
    done = await finished(api, path, timeout=60)
    assert (done["state"], done["samples"]) == ("SUCCEEDED", 3), done
