"""A release or export job that meets a passing outage of another service (a replica killed mid-request, the
catalog restarting) is delivered again after the back-off rather than failed for good: found by the chaos suite,
where a release FAILED with "the catalog service did not answer in time; retry later"."""

from __future__ import annotations

import asyncio

import aiohttp

from loupe.stack import Stack
from tests.helpers import call, finished, make_project


async def test_a_release_built_while_the_catalog_is_away_waits_for_it_instead_of_failing(
    api: aiohttp.ClientSession, stack: Stack, unique: str
) -> None:
    project = await make_project(api, unique, samples=3)
    await asyncio.to_thread(stack.stop_service, "catalog")
    try:
        release = await call(api, "POST", f"{project.path}/releases", 201, json={"name": "patient"})
        path = f"{project.path}/releases/{release['id']}"
        await asyncio.sleep(3)  # the first deliveries meet no catalog
        assert (await call(api, "GET", path))["state"] in ("PENDING", "RUNNING")
    finally:
        await asyncio.to_thread(stack.start_service, "catalog")
    done = await finished(api, path, timeout=60)
    assert (done["state"], done["samples"]) == ("SUCCEEDED", 3), done
