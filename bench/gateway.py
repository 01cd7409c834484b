"""Create+get project through the gateway, beside the same catalog commands as raw NATS requests.

    python -m bench.gateway [--quick] [--clients N] [--seconds S]

Starts NATS, Postgres, the catalog and the gateway on free ports in a temporary folder, runs each
phase with N concurrent clients for S seconds, and prints throughput and latency of both, so the
gateway's overhead reads as a ratio of medians (`gateway_overhead_ratio`, target ≤ 1.5).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec
import uvloop

from bench.report import arguments, cpu_seconds, figure, local_stack, summary, table
from loupe.stack import Stack
from proto import subjects
from proto.catalog import CreateProject, Project, ProjectRef, VerifyApiKey
from proto.common import Caller
from shared.bus import Bus


async def run_clients(clients: int, seconds: float, pair: Callable[[str], Awaitable[tuple[float, float]]]
                      ) -> tuple[list[float], float]:
    """Each client repeats create+get until time is up; returns every request's latency and the elapsed time."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        count = 0
        while time.perf_counter() < deadline:
            latencies.extend(await pair(f"bench {uuid.uuid4().hex[:8]} {index} {count}"))
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, time.perf_counter() - started


async def gateway_phase(stack: Stack, clients: int, seconds: float) -> tuple[list[float], float]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(stack.gateway_url, headers=headers, connector=connector) as http:
        async def pair(name: str) -> tuple[float, float]:
            t0 = time.perf_counter()
            async with http.post("/v1/projects", json={"name": name}) as response:
                response.raise_for_status()
                project = msgspec.json.decode(await response.read(), type=Project)
            t1 = time.perf_counter()
            async with http.get(f"/v1/projects/{project.id}") as response:
                response.raise_for_status()
                msgspec.json.decode(await response.read(), type=Project)
            return t1 - t0, time.perf_counter() - t1

        await run_clients(clients, min(1.0, seconds), pair)  # warm-up: connections, caches, plans
        return await run_clients(clients, seconds, pair)


async def bus_phase(stack: Stack, clients: int, seconds: float) -> tuple[list[float], float]:
    bus = await Bus.connect(stack.settings, "bench")
    try:
        caller: Caller = await bus.request(subjects.VERIFY_API_KEY, VerifyApiKey(key=stack.admin_key))

        async def pair(name: str) -> tuple[float, float]:
            t0 = time.perf_counter()
            project = await bus.request(subjects.CREATE_PROJECT, CreateProject(name=name), caller=caller)
            t1 = time.perf_counter()
            await bus.request(subjects.GET_PROJECT, ProjectRef(id=project.id), caller=caller)
            return t1 - t0, time.perf_counter() - t1

        await run_clients(clients, min(1.0, seconds), pair)
        return await run_clients(clients, seconds, pair)
    finally:
        await bus.close()


def main() -> None:
    parser = arguments(__doc__, "2 clients, 2 s per phase", clients=8, seconds=10.0)
    args = parser.parse_args()
    clients, seconds = (2, 2.0) if args.quick else (args.clients, args.seconds)

    with local_stack("catalog", "gateway") as stack:
        before = cpu_seconds(stack.pids())
        gateway_latencies, gateway_elapsed = uvloop.run(gateway_phase(stack, clients, seconds))
        cpu = {name: spent - before[name] for name, spent in cpu_seconds(stack.pids()).items()}
        bus_latencies, bus_elapsed = uvloop.run(bus_phase(stack, clients, seconds))

    gateway = summary(gateway_latencies, gateway_elapsed)
    bus = summary(bus_latencies, bus_elapsed)
    ratio = gateway["p50_ms"] / bus["p50_ms"]
    print(table(f"create+get project, {clients} concurrent clients, {seconds:g} s per phase",
                {"gateway": gateway, "raw NATS": bus}))
    print(f"gateway overhead (p50 gateway / p50 bus): {ratio:.2f}  (target <= 1.5)")
    # The warm-up's requests are not counted, so these are a little high; docs/scaling.md uses them per core.
    print(
        "CPU ms per request through the gateway, by process:",
        ", ".join(f"{name} {seconds * 1000 / len(gateway_latencies):.3f}" for name, seconds in cpu.items()),
    )
    n = len(gateway_latencies)
    print(figure("gateway_rps", gateway["rps"], "requests/s", n))
    print(figure("gateway_p99_ms", gateway["p99_ms"], "ms", n))
    print(figure("bus_p99_ms", bus["p99_ms"], "ms", len(bus_latencies)))
    print(figure("gateway_overhead_ratio", ratio, "ratio", n))


if __name__ == "__main__":
    main()
