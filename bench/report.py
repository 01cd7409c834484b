"""How every benchmark prints: a readable table, then one JSON object per figure."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from loupe.stack import Stack, StackPorts


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method; samples need not be sorted."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(latencies_s: Sequence[float], elapsed_s: float) -> dict[str, float]:
    return {
        "requests": len(latencies_s),
        "rps": len(latencies_s) / elapsed_s,
        "p50_ms": percentile(latencies_s, 50) * 1000,
        "p99_ms": percentile(latencies_s, 99) * 1000,
        "mean_ms": statistics.fmean(latencies_s) * 1000,
    }


def table(title: str, rows: dict[str, dict[str, float]]) -> str:
    columns = list(next(iter(rows.values())))
    width = max(12, *(len(name) + 1 for name in rows))
    lines = [title, f"{'':<{width}}" + "".join(f"{c:>12}" for c in columns)]
    for name, row in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{row[c]:>12.2f}" for c in columns))
    return "\n".join(lines)


def figure(metric: str, value: float, unit: str, n: int) -> str:
    return json.dumps({"metric": metric, "value": round(value, 3), "unit": unit, "n": n, "cores": os.cpu_count()})


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User+system CPU time of each process and its live children so far (Postgres forks a backend per
    connection; the pools keep theirs open through a run)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for name, pid in pids.items():
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                # fields[1] is the parent; a service under the services' parent is counted as itself only.
                own_child = int(fields[1]) == pid and int(stat.parent.name) not in pids.values()
                if own_child or stat.parent.name == str(pid):
                    total += (int(fields[11]) + int(fields[12])) / ticks
        used[name] = total
    return used


def arguments(doc: str | None, quick: str, **sizes: float) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as help, `--quick` for a smoke-sized run of `quick`, and an
    option per size (`per_call=1000` is `--per-call`, an int defaulting to 1000)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"a smoke-sized run ({quick})")
    for name, default in sizes.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return parser


@contextlib.contextmanager
def local_stack(*services: str, triton: bool = False, replicas: int = 1) -> Iterator[Stack]:
    """The local stack with just these services (Triton only if asked), `replicas` processes of each worker
    service, on free ports, its data gone after."""
    with (
        tempfile.TemporaryDirectory(prefix="loupe-bench-") as folder,
        Stack(Path(folder), StackPorts.free(), services=services, triton=triton, replicas=replicas) as stack,
    ):
        yield stack


Kinds = dict[str, tuple[str, Callable[[random.Random], dict[str, Any]]]]  # name: (path, body maker)


async def time_requests(gateway_url: str, admin_key: str, requests: int, kinds: Kinds) -> dict[str, dict[str, float]]:
    """p50/p99/max and items per request of each kind (path, body maker), sent `requests` times one after
    another from one client after a tenth as many to warm caches; for any benchmark of a query endpoint."""
    rng = random.Random(11)
    rows: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession(gateway_url, headers={"Authorization": f"Bearer {admin_key}"}) as http:
        for name, (path, make) in kinds.items():
            latencies, hits = [], 0
            for attempt in range(requests + requests // 10):
                body = make(rng)
                t0 = time.perf_counter()
                async with http.post(path, json=body) as response:
                    payload = await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{name}: HTTP {response.status}: {payload.decode()[:500]}")
                elapsed = time.perf_counter() - t0
                if attempt >= requests // 10:
                    latencies.append(elapsed)
                    hits += len(msgspec.json.decode(payload).get("items", ()))  # a count has none
            rows[name] = {
                "p50_ms": percentile(latencies, 50) * 1000,
                "p99_ms": percentile(latencies, 99) * 1000,
                "max_ms": max(latencies) * 1000,
                "items/req": hits / len(latencies),
            }
    return rows


async def put_slots(
    s3: aiohttp.ClientSession, slots: Sequence[dict[str, Any]], data: Sequence[bytes], in_flight: int = 16
) -> None:
    """PUT to each presigned upload slot (`{"index", "url", "headers", "stored"}` of `POST …/uploads`) the bytes of
    file `index` with the slot's headers, `in_flight` at a time, as a client with many files would; a slot whose
    file is stored already needs none."""
    queue = [(slot["url"], slot["headers"], data[slot["index"]]) for slot in slots if not slot["stored"]]

    async def put_worker() -> None:
        while queue:
            url, headers, body = queue.pop()
            async with s3.put(url, data=body, headers=headers) as response:
                response.raise_for_status()

    await asyncio.gather(*(put_worker() for _ in range(in_flight)))
