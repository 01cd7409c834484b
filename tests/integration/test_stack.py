"""The local stack itself: real NATS, Postgres, SeaweedFS and Triton on free ports of 127.0.0.1.

Each test stops what it starts; one infrastructure-only stack is shared by the tests that only read.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import asyncpg
import minio
import minio.error
import msgspec
import nats
import pytest

from loupe.servers import seaweedfs_sockets
from loupe.stack import REPO_ROOT, Stack, StackError, StackPorts
from shared.settings import Settings

# The services' own ports, and the gateway's second listener (the Segments.ai dialect).
SERVICE_PORTS = {"gateway", "catalog", "annotation", "ingest", "training", "inference", "segments"}


@pytest.fixture(scope="module")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("infra"), StackPorts.free(), services=()) as stack:
        yield stack


def test_infrastructure_answers_with_the_settings_the_services_get(infra: Stack) -> None:
    settings = infra.settings
    assert _http_status(f"http://127.0.0.1:{infra.ports.nats_monitor}/healthz?js-enabled-only=true") == 200
    assert _http_status(f"http://{settings.triton_url}/v2/health/ready") == 200

    async def nats_and_postgres() -> None:
        bus = await nats.connect(settings.nats_url)
        try:
            info = await bus.jetstream().account_info()
            assert info.limits is not None
        finally:
            await bus.close()
        db = await asyncpg.connect(settings.database_url)
        try:
            extensions = {row["extname"] for row in await db.fetch("SELECT extname FROM pg_extension")}
            assert {"vector", "pg_trgm"} <= extensions
            assert await db.fetchval("SELECT '[1,2]'::vector <-> '[1,3]'::vector") == 1.0
            # Trigrams see non-ASCII letters: with the ctype C this would be 0.
            assert await db.fetchval("SELECT similarity('東京', '東京')") == 1.0
            assert await db.fetchval("SELECT current_user") == "loupe"
        finally:
            await db.close()

    asyncio.run(nats_and_postgres())

    s3 = _s3(settings)
    assert s3.bucket_exists(f"{settings.bucket_prefix}models")
    s3.make_bucket("loupe-test-infra")
    s3.put_object("loupe-test-infra", "a/b.txt", io.BytesIO(b"hello"), 5)
    assert s3.get_object("loupe-test-infra", "a/b.txt").read() == b"hello"
    anonymous = minio.Minio(settings.s3_endpoint, secure=False, region=settings.s3_region)
    with pytest.raises(minio.error.S3Error):
        anonymous.list_buckets()


def test_every_listening_socket_is_a_stack_port_on_loopback(infra: Stack) -> None:
    listening = _listening(_descendants(infra.pids().values()))
    expected = {port for name, port in msgspec.structs.asdict(infra.ports).items() if name not in SERVICE_PORTS}
    assert {port for _, port in listening} == expected
    assert {address for address, _ in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}


def test_triton_loads_a_python_model_from_the_s3_model_repository(infra: Stack) -> None:
    settings = infra.settings
    bucket = f"{settings.bucket_prefix}models"
    config = textwrap.dedent("""\
        name: "prefix"
        backend: "python"
        max_batch_size: 0
        input [ { name: "IN" data_type: TYPE_FP32 dims: [ 1 ] } ]
        output [ { name: "OUT" data_type: TYPE_STRING dims: [ 1 ] } ]
        """).encode()
    model = textwrap.dedent("""\
        import sys
        import numpy as np
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            def execute(self, requests):
                out = np.array([sys.prefix.encode()], dtype=np.object_)
                return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", out)]) for _ in requests]
        """).encode()
    s3 = _s3(settings)
    s3.put_object(bucket, "prefix/config.pbtxt", io.BytesIO(config), len(config))
    s3.put_object(bucket, "prefix/1/model.py", io.BytesIO(model), len(model))
    base = f"http://{settings.triton_url}/v2"
    assert _http_status(f"{base}/repository/models/prefix/load", b"{}") == 200
    request = {"inputs": [{"name": "IN", "shape": [1], "datatype": "FP32", "data": [0.0]}]}
    with urllib.request.urlopen(f"{base}/models/prefix/infer", json.dumps(request).encode(), timeout=30) as response:
        answer = json.load(response)
    # The stub's embedded Python runs in this environment, so models import what is installed here.
    assert answer["outputs"][0]["data"] == [sys.prefix]
    assert _http_status(f"{base}/repository/models/prefix/unload", b"{}") == 200


def test_a_second_runner_on_the_same_data_dir_is_refused(infra: Stack) -> None:
    with pytest.raises(StackError, match="in use by another stack"):
        Stack(infra.data_dir, StackPorts.free(), services=()).start()


def test_seaweedfs_is_ready_once_it_can_store(tmp_path: Path) -> None:
    """Its S3 gateway answers a second or four before the volume server has joined the master, and meanwhile
    every write waits."""
    with Stack(tmp_path, StackPorts.free(), services=(), triton=False) as stack:
        status = urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.weed_master}/dir/status", timeout=2)
        topology = json.loads(status.read())["Topology"]
        assert topology["Max"] > 0, topology


def test_two_stacks_run_side_by_side_on_their_own_ports(infra: Stack, tmp_path: Path) -> None:
    with Stack(tmp_path, StackPorts.free(), services=()) as second:
        assert second.ports != infra.ports
        for stack in (infra, second):
            assert _http_status(f"http://127.0.0.1:{stack.ports.nats_monitor}/healthz") == 200
            assert _http_status(f"http://{stack.settings.triton_url}/v2/health/ready") == 200
            assert asyncio.run(_fetchval(stack.settings.database_url, "SELECT 1")) == 1
        _s3(second.settings).make_bucket("loupe-test-second")
        assert "loupe-test-second" not in {b.name for b in _s3(infra.settings).list_buckets()}
        # Each SeaweedFS enforces its own stack's secret.
        with pytest.raises(minio.error.S3Error, match="SignatureDoesNotMatch"):
            _s3(msgspec.structs.replace(infra.settings, s3_endpoint=second.settings.s3_endpoint)).list_buckets()


def test_without_triton_inference_is_alive_not_ready_and_stop_restarts_nothing(tmp_path: Path) -> None:
    others = set(threading.enumerate())
    with Stack(tmp_path, StackPorts.free(), services=("inference",), triton=False) as stack:
        assert _http_status(f"http://127.0.0.1:{stack.ports.inference}/healthz") == 200
        assert _http_status(f"http://127.0.0.1:{stack.ports.inference}/readyz") == 503
        [supervisor] = [thread for thread in set(threading.enumerate()) - others if thread.name == "loupe-supervisor"]
        processes = _descendants(stack.pids().values())
    assert not supervisor.is_alive()
    assert not [pid for pid in processes if _alive(pid)]
    # A supervisor that took the stop for a crash would have said so, and started inference again.
    assert "supervisor:" not in (stack.log_dir / "inference.log").read_text()


def test_restart_keeps_data_and_secrets_and_stop_leaves_no_process(tmp_path: Path) -> None:
    first = Stack(tmp_path, StackPorts.free(), services=())
    with first:
        asyncio.run(_execute(first.settings.database_url,
                             "CREATE TABLE kept (word text)", "INSERT INTO kept VALUES ('still here')"))
        s3 = _s3(first.settings)
        s3.make_bucket("loupe-test-kept")
        s3.put_object("loupe-test-kept", "kept.txt", io.BytesIO(b"bytes"), 5)
        processes = _descendants(first.pids().values())
        assert len(processes) > 4  # the servers and postgres's own workers
    assert not [pid for pid in processes if _alive(pid)]
    assert not [path for path in seaweedfs_sockets(first.ports) if path.exists()]
    first.stop()  # stopping twice is fine

    # Other ports this time: nothing of the data may depend on them.
    with Stack(tmp_path, StackPorts.free(), services=()) as again:
        assert again.admin_key == first.admin_key and len(again.admin_key) > 20
        assert first.admin_key.startswith("lp_"), "a key starting with - would be taken for an option"
        assert (tmp_path / "admin-key").stat().st_mode & 0o777 == 0o600
        assert again.settings.s3_secret_key == first.settings.s3_secret_key
        assert asyncio.run(_fetchval(again.settings.database_url, "SELECT word FROM kept")) == "still here"
        assert _s3(again.settings).get_object("loupe-test-kept", "kept.txt").read() == b"bytes"


def test_a_sigkilled_runner_leaves_no_orphans_and_the_data_dir_starts_again(tmp_path: Path) -> None:
    # A service too: it is the services' parent's child, not the runner's.
    runner_code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from loupe.stack import Stack, StackPorts
        import msgspec
        stack = Stack(Path({str(tmp_path)!r}), StackPorts.free(), services=("catalog",))
        stack.start()
        print(msgspec.json.encode(stack.ports).decode(), flush=True)
        time.sleep(600)
        """)
    with open(tmp_path / "runner.err", "w") as errors:
        runner = subprocess.Popen([sys.executable, "-c", runner_code], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                  stderr=errors, text=True)
    try:
        assert runner.stdout is not None
        started = runner.stdout.readline()
        assert started, (tmp_path / "runner.err").read_text()
        ports = msgspec.json.decode(started, type=StackPorts)
        orphans = _descendants([runner.pid]) - {runner.pid}
        assert len(orphans) > 6
    finally:
        runner.kill()
        runner.wait()
    deadline = time.monotonic() + 5
    while [pid for pid in orphans if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in orphans if _alive(pid)]
    for leftover in seaweedfs_sockets(ports):  # a stop that runs would have removed them
        leftover.unlink(missing_ok=True)
    # The killed run left postmaster.pid and the other servers' state behind.
    assert (tmp_path / "postgres" / "postmaster.pid").exists()
    with Stack(tmp_path, StackPorts.free(), services=(), triton=False) as again:
        assert asyncio.run(_fetchval(again.settings.database_url, "SELECT 1")) == 1


def test_services_are_forked_from_one_preloaded_parent_each_with_its_own_settings_and_log(tmp_path: Path) -> None:
    with Stack(tmp_path, StackPorts.free(), services=("catalog", "ingest"), triton=False,
               replicas={"ingest": 2}) as stack:
        services = ("catalog", "ingest", "ingest#2")
        parent = stack.pids()["services-parent"]
        assert _name(parent) == "services-parent"
        for name in services:
            pid = stack.pids()[name]
            assert _processes()[pid][0] == parent
            assert os.getsid(pid) == pid, "a session and process group of its own, as Popen(start_new_session) gave"
            assert _name(pid) == name
            # Its own LOUPE_HTTP_PORT: each listens on the port the stack gave it, and only there.
            assert {port for _, port in _listening([pid])} == {stack.replica_ports[name]}
            # Copy-on-write: much of its anonymous memory is the parent's imports, shared with its siblings.
            memory = _smaps_rollup(pid)
            assert memory["Anonymous"] - memory["Pss_Anon"] > 5 * 1024, memory
        for name in services:
            lines = (stack.log_dir / f"{name}.log").read_text().splitlines()
            logged = {json.loads(line)["service"] for line in lines if line.startswith("{")}
            assert logged == {name.split("#")[0]}, name
            assert f"{name.split('#')[0]} ready" in "\n".join(lines)
        assert "ready" not in (stack.log_dir / "services-parent.log").read_text()

        # Killed with its process group, and started again from the same parent.
        killed = stack.pids()["ingest#2"]
        stack.stop_service("ingest#2", kill=True)
        assert not _alive(killed)
        stack.start_service("ingest#2")
        assert _processes()[stack.pids()["ingest#2"]][0] == parent

        # A parent that dies takes its services along; the supervisor starts them again under a new one.
        before = {name: stack.pids()[name] for name in services}
        os.kill(parent, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            stack.pids().get(name) not in (None, before[name]) and stack.service_problem(name) is None
            for name in services
        ):
            time.sleep(0.2)
        after = stack.pids()
        assert after["services-parent"] != parent
        assert all(_processes()[after[name]][0] == after["services-parent"] for name in services), after
        assert not [pid for pid in before.values() if _alive(pid)]
        processes = _descendants(after.values())
    assert not [pid for pid in processes if _alive(pid)]


# -- helpers ------------------------------------------------------------------------------------------


def _s3(settings: Settings) -> minio.Minio:
    return minio.Minio(settings.s3_endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                       secure=settings.s3_secure, region=settings.s3_region)


def _http_status(url: str, body: bytes | None = None) -> int:
    try:
        with urllib.request.urlopen(url, body, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def _fetchval(dsn: str, query: str) -> object:
    db = await asyncpg.connect(dsn)
    try:
        return await db.fetchval(query)
    finally:
        await db.close()


async def _execute(dsn: str, *statements: str) -> None:
    db = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await db.execute(statement)
    finally:
        await db.close()


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, state)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
            table[int(entry.name)] = (int(ppid), state)
    return table


def _descendants(roots: Iterable[int]) -> set[int]:
    table = _processes()
    found = set(roots)
    while True:
        more = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        if not more:
            return found
        found |= more


def _name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _smaps_rollup(pid: int) -> dict[str, int]:
    """The process's memory totals in kB, by name (Rss, Pss, Anonymous, Pss_Anon, ...)."""
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    return {key: int(value.split()[0]) for key, _, value in (line.partition(":") for line in lines)}


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent (or a container's init) to reap it."""
    return _processes().get(pid, (0, "X"))[1] not in ("Z", "X")


def _listening(pids: Iterable[int]) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket the processes hold."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word of the address in host (little-endian) order.
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add((socket.inet_ntop(family, raw), int(port, 16)))
    return found
