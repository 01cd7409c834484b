"""The gateway's event streams under many clients: CPU per delivered event and delivery latency.

    python -m bench.events [--quick] [--clients N] [--projects P] [--rate R] [--seconds S]

Starts the local stack with the catalog and the gateway on free ports in a temporary folder, creates P
projects, and opens N server-sent-event streams on them through the gateway (N / P each). It then
measures, from the CPU time of the gateway process's threads in /proc (`schedstat`, in nanoseconds):

1. `sse_gateway_idle_cpu_pct`: the gateway's CPU while the N streams are open and nothing happens
   (15 s, one round of keep-alive comments; what holding a stream open costs);
2. `sse_gateway_cpu_us_per_event`: the gateway's CPU per delivered event while R events a second are
   published for S seconds, each to one of the projects in turn, until every stream has every event of
   its project. The events go straight to JetStream, as the services' outboxes publish them, so that
   the only work of the gateway measured is the fan-out. The table also shows it less the idle rate
   over the same time (`above_idle_us`): what the events themselves cost;
3. `sse_delivery_p50_ms` / `sse_delivery_p99_ms`: from an event's publication to its arrival at a
   client (the clients run in this process, so a busy client adds to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec
import nats
import uvloop

from bench.report import arguments, figure, local_stack, percentile, table
from loupe.stack import Stack
from proto import subjects
from proto.common import EventEnvelope
from services.gateway.events import KEEPALIVE_S

# No service consumes this type, so only the event streams see the bench's events.
EVENT_TYPE = "bench.tick.sent"
IDLE_S = KEEPALIVE_S  # long enough for every idle stream's keep-alive comment
CONNECTING_AT_ONCE = 50
DELIVERY_TIMEOUT_S = 120.0


class Sent(msgspec.Struct):
    sent: float  # time.perf_counter() at publication, in this process


class Tick(msgspec.Struct):
    project: str
    data: Sent


tick = msgspec.json.Decoder(Tick)


@dataclass
class Client:
    """One open event stream and what it received."""

    project: str
    response: aiohttp.ClientResponse
    expected: int  # events of its project the bench publishes
    latencies: list[float] = field(default_factory=list)
    foreign: int = 0  # events of another project: there must be none
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if not self.expected:  # more projects than events: some get none
            self.complete.set()

    async def read(self) -> None:
        async for line in self.response.content:
            if line.startswith(b"data: "):
                received = time.perf_counter()
                event = tick.decode(line[6:])
                if event.project != self.project:
                    self.foreign += 1
                self.latencies.append(received - event.data.sent)
                if len(self.latencies) >= self.expected:
                    self.complete.set()


def events_in(projects: Sequence[str], total: int) -> dict[str, int]:
    """How many of `total` events, published to each project in turn, each project gets."""
    return {project: total // len(projects) + (index < total % len(projects)) for index, project in enumerate(projects)}


async def connect(http: aiohttp.ClientSession, projects: Sequence[str], count: int, total: int) -> list[Client]:
    """`count` streams, spread over the projects in turn; each is open once its headers arrived, which the
    gateway sends only after it follows the project's events."""
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    expected = events_in(projects, total)

    async def open_one(index: int) -> Client:
        project = projects[index % len(projects)]
        async with gate:
            response = await http.get(f"/v1/projects/{project}/events")
        response.raise_for_status()
        return Client(project, response, expected[project])

    return list(await asyncio.gather(*(open_one(i) for i in range(count))))


async def publish(stack: Stack, projects: Sequence[str], rate: float, total: int) -> None:
    """`total` events, `rate` a second, each in the next project."""
    nc = await nats.connect(stack.settings.nats_url)
    js = nc.jetstream()
    subject = subjects.EVENT_PREFIX + EVENT_TYPE
    started = time.perf_counter()
    try:
        for index in range(total):
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            envelope = EventEnvelope(
                id=str(uuid.uuid4()),
                type=EVENT_TYPE,
                time=datetime.datetime.now(datetime.UTC),
                project=projects[index % len(projects)],
                data=Sent(time.perf_counter()),
            )
            await js.publish(subject, msgspec.json.encode(envelope), headers={subjects.HEADER_MSG_ID: envelope.id})
    finally:
        await nc.close()


def gateway_cpu(stack: Stack) -> float:
    """CPU seconds of every thread of the gateway so far, from /proc's schedstat in nanoseconds: `stat`
    counts 10 ms ticks, too coarse for a few hundred events of some tens of microseconds each."""
    used = 0
    for path in Path(f"/proc/{stack.pids()['gateway']}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            used += int(path.read_text().split()[0])
    return used / 1e9


async def measure(stack: Stack, clients: int, projects: int, rate: float, seconds: float) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    # Streams never end by themselves: no read timeout, and a connection each.
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(stack.gateway_url, headers=headers, connector=connector, timeout=timeout) as http:
        ids = []
        for index in range(projects):
            async with http.post("/v1/projects", json={"name": f"events bench {index}"}) as response:
                response.raise_for_status()
                ids.append((await response.json())["id"])
        published = int(rate * seconds)
        streams = await connect(http, ids, clients, published)
        readers = [asyncio.create_task(client.read()) for client in streams]
        try:
            idle_before = gateway_cpu(stack)
            await asyncio.sleep(IDLE_S)
            idle_cpu = gateway_cpu(stack) - idle_before

            cpu_before, started = gateway_cpu(stack), time.perf_counter()
            await publish(stack, ids, rate, published)
            with contextlib.suppress(TimeoutError):  # reported below as events missing
                await asyncio.wait_for(asyncio.gather(*(c.complete.wait() for c in streams)), DELIVERY_TIMEOUT_S)
            elapsed, busy_cpu = time.perf_counter() - started, gateway_cpu(stack) - cpu_before
        finally:
            for reader in readers:
                reader.cancel()
            for client in streams:
                client.response.close()
    latencies = [latency for client in streams for latency in client.latencies]
    delivered = len(latencies)
    return {
        "published": published,
        "expected": sum(client.expected for client in streams),
        "delivered": delivered,
        "foreign": sum(client.foreign for client in streams),
        "deliveries/s": delivered / elapsed,
        "idle_cpu_%": idle_cpu / IDLE_S * 100,
        "cpu_us/event": busy_cpu / max(delivered, 1) * 1e6,
        "cpu_us/publ": busy_cpu / max(published, 1) * 1e6,
        # What the events cost beyond holding the streams open (keep-alives) over the same time.
        "above_idle_us": (busy_cpu - idle_cpu / IDLE_S * elapsed) / max(delivered, 1) * 1e6,
        "p50_ms": percentile(latencies, 50) * 1000 if latencies else float("nan"),
        "p99_ms": percentile(latencies, 99) * 1000 if latencies else float("nan"),
    }


def main() -> None:
    parser = arguments(
        __doc__, "100 clients on 20 projects, 20 events/s for 5 s", clients=500, projects=100, rate=20.0, seconds=20.0
    )
    args = parser.parse_args()
    clients, projects, rate, seconds = (
        (100, 20, 20.0, 5.0) if args.quick else (args.clients, args.projects, args.rate, args.seconds)
    )

    with local_stack("catalog", "gateway") as stack:
        result = uvloop.run(measure(stack, clients, projects, rate, seconds))

    print(
        table(
            f"{clients} event streams on {projects} projects, {rate:g} events/s for {seconds:g} s",
            {name: {"value": value} for name, value in result.items()},
        )
    )
    if result["delivered"] != result["expected"] or result["foreign"]:
        raise SystemExit(
            f"delivered {result['delivered']:.0f} of {result['expected']:.0f} events, "
            f"{result['foreign']:.0f} of them to a stream of another project"
        )
    n = int(result["delivered"])
    print(figure("sse_gateway_cpu_us_per_event", result["cpu_us/event"], "us CPU per delivered event", n))
    print(figure("sse_gateway_idle_cpu_pct", result["idle_cpu_%"], "% of a core, streams open, no events", clients))
    print(figure("sse_delivery_p50_ms", result["p50_ms"], "ms", n))
    print(figure("sse_delivery_p99_ms", result["p99_ms"], "ms", n))
    print(figure("sse_deliveries_per_s", result["deliveries/s"], "events/s", n))


if __name__ == "__main__":
    main()
