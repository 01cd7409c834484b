"""Two inference processes against the session stack, as two pods would run: each enabled pipeline runs in
exactly one of them (no frame is processed twice), commands reach the runner through either, and when the
runner is killed the other takes its pipelines over."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from loupe.servers import free_ports, http_problem
from loupe.stack import REPO_ROOT, Stack
from shared.bus import Bus
from shared.settings import env_name
from tests.helpers import call, eventually
from tests.integration.test_pipelines import (
    Trained,
    collected,
    count_of,
    create,
    push,
    running,
    train_detector,
)

pytestmark = pytest.mark.timeout(600)

COMMAND = "loupe.inference.pipeline.{}"
# A dead runner's pipelines are taken over within a second or two (CLAIM_S); this is the generous bound.
TAKEOVER_S = 30


@dataclass
class Replica:
    """An inference process: its pid and the port of its HTTP server (probes and /metrics)."""

    pid: int
    port: int

    def runner(self) -> str:
        return f"{socket.gethostname()}:{self.pid}"


@pytest.fixture
def second_inference(stack: Stack, tmp_path: Path) -> Iterator[Replica]:
    """A second inference process, with the stack's settings and a port of its own, stopped by the test."""
    [port] = free_ports(1)
    env = {**stack.service_env("inference"), env_name("http_port"): str(port)}
    with open(tmp_path / "inference-2.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.inference"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while (problem := http_problem(f"http://127.0.0.1:{port}/readyz?scope=self")) is not None:
            assert process.poll() is None, (tmp_path / "inference-2.log").read_text()[-3000:]
            assert time.monotonic() < deadline, problem
            time.sleep(0.1)
        yield Replica(process.pid, port)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def scrape(port: int) -> str:
    async with aiohttp.ClientSession() as plain, plain.get(f"http://127.0.0.1:{port}/metrics") as response:
        return await response.text()


def handled(metrics: str, subject: str) -> float:
    pattern = rf'loupe_bus_commands_total\{{outcome="ok",subject="{re.escape(subject)}"\}} ([0-9.e+]+)'
    return sum(float(value) for value in re.findall(pattern, metrics))


async def through(replica: Replica, op: str, act: Callable[[], Awaitable[Any]]) -> Any:
    """`act()`, a gateway call of command `op`, repeated until the bus hands it to `replica` (a queue group
    picks at random); its answer then."""
    for _ in range(60):
        before = handled(await scrape(replica.port), COMMAND.format(op))
        answer = await act()
        if handled(await scrape(replica.port), COMMAND.format(op)) > before:
            return answer
    raise AssertionError(f"60 {op} commands, none handled by {replica}")


async def samples_in(api: aiohttp.ClientSession, trained: Trained, dataset: dict) -> list[dict]:
    async def found() -> list[dict]:
        answer = await call(api, "POST", f"{trained.path}/samples/search", json={"dataset_ids": [dataset["id"]]})
        assert answer["items"], answer
        return list(answer["items"])

    return await eventually(found, timeout=60, interval=0.2)


async def runner_of(api: aiohttp.ClientSession, trained: Trained, pipeline: dict) -> str:
    current = await running(api, trained, pipeline)
    assert current["runner"], current
    return str(current["runner"])


async def test_each_pipeline_runs_once_across_replicas_and_survives_its_runner(
    api: aiohttp.ClientSession, bus: Bus, stack: Stack, second_inference: Replica
) -> None:
    trained = await train_detector(stack, api, f"replicas {uuid.uuid4().hex[:6]}")
    first = Replica(stack.pids()["inference"], stack.ports.inference)
    replicas = {replica.runner(): replica for replica in (first, second_inference)}
    source, sink, pushed_sink = (f"tests.replicas.{uuid.uuid4().hex[:8]}" for _ in range(3))
    async with collected(bus, sink) as received, collected(bus, pushed_sink) as pushed:
        # A NATS source run by both replicas would turn each message into two results.
        watched = await create(api, trained, {"kind": "nats", "subject": source}, [{"kind": "nats", "subject": sink}])
        assert await runner_of(api, trained, watched) in replicas
        for i in range(30):
            await bus.nc.publish(source, trained.images[i % 20])
        await count_of(received, 30)
        await asyncio.sleep(2)
        assert sorted(r["frame"] for r in received) == list(range(1, 31)), "a frame was processed twice"

        # Frames pushed over HTTP reach the runner whichever replica the bus hands the command to.
        http = await create(api, trained, {"kind": "http"}, [{"kind": "nats", "subject": pushed_sink}])
        runner = await runner_of(api, trained, http)
        for i in range(20):
            assert await push(api, trained, http, trained.images[i], f"f{i}")
        await count_of(pushed, 20)
        await asyncio.sleep(1)
        assert [r["name"] for r in pushed] == [f"f{i}" for i in range(20)]
        scraped = {name: await scrape(replica.port) for name, replica in replicas.items()}
        assert all(handled(text, COMMAND.format("frame")) > 0 for text in scraped.values()), "one took every push"
        assert f'loupe_pipeline_frames_total{{outcome="frames",pipeline="{http["id"]}"}} 20.0' in scraped[runner]
        for name, text in scraped.items():
            assert (f'pipeline="{http["id"]}"' in text) == (name == runner), name

        # Metrics and capture through the replica that does not run the pipeline: it asks the runner.
        [other] = [replica for name, replica in replicas.items() if name != runner]
        path = f"{trained.path}/pipelines/{http['id']}"
        metrics = await through(other, "metrics", lambda: call(api, "GET", f"{path}/metrics"))
        assert (metrics["frames"], metrics["state"]) == (20, "running"), metrics
        dataset = await call(api, "POST", f"{trained.path}/datasets", 201, json={"name": f"c {uuid.uuid4().hex[:6]}"})
        asked = await through(
            other, "capture", lambda: call(api, "POST", f"{path}/capture", json={"dataset_id": dataset["id"]})
        )
        assert (asked["capture_dataset_id"], asked["runner"]) == (dataset["id"], runner), asked
        assert await push(api, trained, http, trained.images[5], "caught.png")
        await count_of(pushed, 21)
        [sample] = await samples_in(api, trained, dataset)
        assert sample["name"] == "caught.png"

        # Disabling stops the pipeline in its runner, whether the runner or the other replica takes the command.
        watched_path = f"{trained.path}/pipelines/{watched['id']}"
        seen: set[bool] = set()  # whether the replica that took the disable was the runner
        for _ in range(30):
            watched_runner = await runner_of(api, trained, watched)
            counts = {name: handled(await scrape(r.port), COMMAND.format("disable")) for name, r in replicas.items()}
            disabled = await call(api, "POST", f"{watched_path}/disable")
            assert disabled["state"] == "disabled" and disabled["runner"] is None, disabled
            [taker] = [
                n for n, r in replicas.items() if handled(await scrape(r.port), COMMAND.format("disable")) > counts[n]
            ]
            seen.add(taker == watched_runner)
            before = len(received)
            await bus.nc.publish(source, trained.images[0])
            await asyncio.sleep(1)
            assert len(received) == before, (
                f"a pipeline disabled through {'its runner' if taker == watched_runner else 'the other'} still ran"
            )
            await call(api, "POST", f"{watched_path}/enable")
            await runner_of(api, trained, watched)
            await bus.nc.publish(source, trained.images[0])
            await count_of(received, before + 1)
            if seen == {True, False}:
                break
        assert seen == {True, False}, seen

        # The runner dies; the other replica takes its pipelines over.
        [survivor] = [name for name in replicas if name != runner]
        killed = replicas[runner]
        if killed is first:  # the stack would start it again: it stays down until the test ends
            await asyncio.to_thread(stack.stop_service, "inference", kill=True)
        else:
            os.kill(killed.pid, signal.SIGKILL)
        try:

            async def taken_over() -> bool:
                current = await call(api, "GET", f"{trained.path}/pipelines/{http['id']}")
                assert (current["state"], current["runner"]) == ("running", survivor), current
                return True

            await eventually(taken_over, timeout=TAKEOVER_S, interval=0.2)
            for i in range(20, 25):
                assert await push(api, trained, http, trained.images[i % 20], f"f{i}")
            await count_of(pushed, 26)
            assert [r["name"] for r in pushed[21:]] == [f"f{i}" for i in range(20, 25)]
            assert [r["frame"] for r in pushed[21:]] == list(range(1, 6))  # counted from the takeover
            assert await runner_of(api, trained, watched) == survivor
            await bus.nc.publish(source, trained.images[1])
            await count_of(received, len(received) + 1)

            metrics = await call(api, "GET", f"{trained.path}/pipelines/{http['id']}/metrics")
            assert (metrics["frames"], metrics["state"]) == (5, "running"), metrics
            dataset = await call(
                api, "POST", f"{trained.path}/datasets", 201, json={"name": f"d {uuid.uuid4().hex[:6]}"}
            )
            await call(
                api, "POST", f"{trained.path}/pipelines/{http['id']}/capture", json={"dataset_id": dataset["id"]}
            )
            assert await push(api, trained, http, trained.images[6], "caught-again.png")
            [sample] = await samples_in(api, trained, dataset)
            assert sample["name"] == "caught-again.png"
        finally:
            if killed is first:
                await asyncio.to_thread(stack.start_service, "inference")
    for pipeline in (watched, http):
        await call(api, "DELETE", f"{trained.path}/pipelines/{pipeline['id']}", 204)
