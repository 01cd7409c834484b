"""A service that dies is started again by the stack, and the gateway's readiness tells the truth meanwhile.

These run on the session stack, which supervises its services exactly as `loupe up` does (supervision
is part of `Stack.start`), and leave every service running and ready.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

from loupe.stack import Stack
from proto.subjects import WORKER_SERVICES
from tests.helpers import base, dataset_in_new_project, eventually, items_of, wait_created, wait_run, wait_samples
from tests.media_server import MediaServer

# Ingest first, so its import is in flight when it dies; the gateway last, as the others are probed through it.
KILL_ORDER = ("ingest", "catalog", "annotation", "training", "inference", "gateway")
IMPORTED = 1000  # enough that the import is still running when ingest, killed first, dies


@pytest.fixture
async def probe() -> AsyncIterator[aiohttp.ClientSession]:
    # No kept-alive connections: they would point at processes that were killed.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                     timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def readiness(probe: aiohttp.ClientSession, port: int, scope: str = "") -> tuple[int | None, dict]:
    """Status and body of a /readyz; no status while nothing listens on the port."""
    try:
        async with probe.get(f"http://127.0.0.1:{port}/readyz{scope}") as response:
            return response.status, await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError):
        return None, {}


async def restarted(stack: Stack, probe: aiohttp.ClientSession, name: str, killed: int) -> bool:
    """The service runs again, under another pid than `killed`, and it and the gateway are ready."""
    assert stack.pids().get(name) not in (None, killed)
    assert (await readiness(probe, getattr(stack.ports, name)))[0] == 200
    assert (await readiness(probe, stack.ports.gateway))[0] == 200
    return True


async def test_gateway_readiness_asks_every_backend_unless_scope_is_self(stack: Stack, probe) -> None:
    status, body = await readiness(probe, stack.ports.gateway)
    assert status == 200 and body["checks"] == dict.fromkeys(("started", "nats", *WORKER_SERVICES), "ok"), body
    status, body = await readiness(probe, stack.ports.gateway, "?scope=self")
    assert status == 200 and body["checks"] == {"started": "ok", "nats": "ok"}, body
    status, body = await readiness(probe, stack.ports.gateway, "?scope=everything")
    assert status == 422 and body["path"] == "query.scope", body


async def test_each_service_killed_in_turn_is_back_and_an_import_loses_nothing(
        api, stack: Stack, media_server: MediaServer, probe, unique: str) -> None:
    dataset = await dataset_in_new_project(api, f"supervision {unique}")
    items = [{"url": media_server.url(f"/img/{seed}.jpg", public=True), "name": f"{seed}.jpg"}
             for seed in range(20_000, 20_000 + IMPORTED)]
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/urls", json={"items": items}) as response:
        assert response.status == 202, await response.text()
        run_id = (await response.json())["id"]
    run = await wait_created(api, dataset, run_id, 10, timeout=60)
    assert run["state"] == "RUNNING", run

    for name in KILL_ORDER:
        killed = stack.pids()[name]
        os.kill(killed, signal.SIGKILL)
        status, body = await readiness(probe, stack.ports.gateway)
        if name == "gateway":
            assert status is None
        else:
            assert status == 503 and body["checks"][name].startswith("failing"), (name, body)
            assert set(WORKER_SERVICES) <= set(body["checks"])
        await eventually(functools.partial(restarted, stack, probe, name, killed), timeout=10, interval=0.1)
        log = (stack.log_dir / f"{name}.log").read_text()
        assert f"supervisor: {name} (pid {killed}) was killed by SIGKILL after" in log

    run = await wait_run(api, dataset, run_id, timeout=120)
    assert (run["state"], run["total"], run["created"], run["duplicates"], run["failed"]) == (
        "SUCCEEDED", IMPORTED, IMPORTED, 0, 0)
    outcome = await items_of(api, dataset, run_id)
    assert sorted(item["name"] for item in outcome) == sorted(item["name"] for item in items)
    assert {item["state"] for item in outcome} == {"CREATED"}
    await wait_samples(api, dataset, IMPORTED)


async def test_a_service_that_keeps_crashing_at_start_is_given_up_loudly(
        stack: Stack, probe, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    name = "training"
    caplog.set_level(logging.ERROR, "loupe.supervisor")
    # Every new process of a service gets the stack's settings as they are then; with this one it
    # refuses to start.
    monkeypatch.setattr(stack, "settings", msgspec.structs.replace(stack.settings, job_max_deliveries=0))
    try:
        os.kill(stack.pids()[name], signal.SIGKILL)
        async def given_up() -> bool:  # the stack lets go of a service it gave up on
            return name not in stack.pids()
        await eventually(given_up, timeout=60, interval=0.1)
        [error] = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
        assert error.startswith(f"{name} (pid ") and "exited with code 1" in error, error
        assert "5 exits in a row before it was ready" in error
        assert "LOUPE_JOB_MAX_DELIVERIES must be at least 1" in error  # from the tail of its log
        status, body = await readiness(probe, stack.ports.gateway)
        assert status == 503 and body["checks"][name].startswith("failing"), body
        assert (await readiness(probe, stack.ports.gateway, "?scope=self"))[0] == 200
    finally:
        monkeypatch.undo()
        if name not in stack.pids():
            await asyncio.to_thread(stack.start_service, name)
    assert (await readiness(probe, stack.ports.gateway))[0] == 200
