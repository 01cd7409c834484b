"""The embedded local stack: every real server from its PyPI wheel plus the six services, one data folder.

``Stack(data_dir, ports).start()`` runs NATS with JetStream, PostgreSQL 18 with pgvector and pg_trgm,
SeaweedFS as the S3 server, Triton and the services as child processes bound to 127.0.0.1; ``stop()``
ends them in order. A later start on the same folder reuses its data, passwords and admin key.
While it runs, a service that exits unasked is started again (``loupe.supervisor``).
docs/local-stack.md describes the layout of the folder and why each server runs the way it does.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import http.client
import importlib.util
import json
import os
import pwd
import random
import secrets
import shlex
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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import minio
import minio.error
import msgspec
import urllib3

from loupe.supervisor import Child, Supervisor, kill_group, log_tail, note_in_log, stop_children
from shared.settings import ENV_PREFIX, SERVICES, Settings, env_name, load_settings, settings_env

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60.0
S3_ACCESS_KEY = "loupe"
PG_SUPERUSER = "postgres"
# Postgres refuses to run as root; then it runs as this system user, the one pgserver's own manager uses.
PG_SYSTEM_USER = "pgserver"
# Stop order, each group stopped together: the API first, so nothing new comes in, the bus last.
STOP_ORDER = (("gateway",), tuple(s for s in SERVICES if s != "gateway"), ("triton",), ("seaweedfs",),
              ("postgres",), ("nats",))

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
# Proxy variables of the user's shell must not reroute probes of 127.0.0.1.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


NATS_MAX_PAYLOAD = 16 * 1024 * 1024


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

    @classmethod
    def from_base(cls, base: int = 7400) -> StackPorts:
        """Port ``base + i`` for the i-th field: the gateway is on ``base`` itself."""
        return cls(**{name: base + i for i, name in enumerate(cls.__struct_fields__)})

    @classmethod
    def free(cls) -> StackPorts:
        """Distinct ports that are free on 127.0.0.1 now, so a stack can run beside others."""
        # Taken from below the kernel's ephemeral range rather than by binding port 0: the outgoing
        # connections made while a stack starts (SeaweedFS's own gRPC clients, the probes) draw local
        # ports from that range and could take one before the server meant for it binds it.
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        top = max(low, 20_000)
        names = cls.__struct_fields__
        held: list[socket.socket] = []
        try:
            for port in random.sample(range(10_000, top), top - 10_000):
                probe = socket.socket()
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    probe.close()
                    continue
                held.append(probe)
                if len(held) == len(names):
                    return cls(**{name: s.getsockname()[1] for name, s in zip(names, held)})
        finally:
            for probe in held:
                probe.close()
        raise StackError(f"fewer than {len(names)} free ports between 10000 and {top}")


class Stack:
    """The local stack on one data folder; ``with Stack(...) as stack:`` starts and stops it.

    Its methods may be called from any thread (tests use ``asyncio.to_thread``): children are spawned
    from a thread the stack owns, because the kernel sends the parent-death signal when the *thread*
    that spawned a child ends, not the process. From the end of ``start()`` to ``stop()`` a supervisor
    thread restarts any service that exits without ``stop_service`` or ``stop`` having asked it to;
    the infrastructure servers are not restarted.
    """

    def __init__(self, data_dir: Path, ports: StackPorts, services: Sequence[str] = SERVICES,
                 triton: bool = True, log_dir: Path | None = None,
                 overrides: Mapping[str, object] | None = None) -> None:
        unknown = sorted(set(services) - set(SERVICES))
        if unknown:
            raise ValueError(f"unknown services {unknown}; the services are {', '.join(SERVICES)}")
        self.data_dir = Path(data_dir).resolve()
        self.ports = ports
        self.services = tuple(services)
        self.triton = triton
        self.log_dir = Path(log_dir or self.data_dir / "logs").resolve()
        self.gateway_url = f"http://127.0.0.1:{ports.gateway}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.admin_key = self._secret("admin-key")
        self._pg_superuser_password = self._secret("postgres-superuser-password")
        self._pg_password = self._secret("postgres-password")
        # The user's LOUPE_* variables still apply (log level, bucket prefix, job tuning, ...);
        # where the servers are is the stack's to say.
        from_env = load_settings()
        self.settings: Settings = msgspec.structs.replace(
            from_env,
            nats_url=f"nats://127.0.0.1:{ports.nats}",
            database_url=f"postgresql://loupe:{self._pg_password}@127.0.0.1:{ports.postgres}/loupe",
            s3_endpoint=f"127.0.0.1:{ports.s3}",
            s3_access_key=S3_ACCESS_KEY,
            s3_secret_key=self._secret("s3-secret-key"),
            s3_secure=False,
            triton_url=f"127.0.0.1:{ports.triton_http}",
            http_host="127.0.0.1",
            http_port=ports.gateway,
            public_url=from_env.public_url or self.gateway_url,
            bootstrap_admin_key="",
            secrets_key=from_env.secrets_key or self._secret("secrets-key"),
        )
        # Settings a caller (the tests) fixes on top, e.g. which addresses URL imports may reach.
        self.settings = msgspec.structs.replace(self.settings, **(overrides or {}))
        self._children: dict[str, Child] = {}
        self._lock: IO[str] | None = None
        self._spawner: ThreadPoolExecutor | None = None
        self._supervisor: Supervisor | None = None

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the public operations ------------------------------------------------------------------------

    def start(self) -> None:
        """Start every server, bootstrap, start the services; on any failure stop what was started."""
        if self._lock is not None:
            raise StackError(f"the stack on {self.data_dir} is already started")
        self._lock_data_dir()
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="loupe-stack")
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._spawn_seaweedfs()  # the slowest to come up, so first
            self._spawn_nats()
            self._spawn_postgres()
            nats_health = f"http://127.0.0.1:{self.ports.nats_monitor}/healthz?js-enabled-only=true"
            self._wait("nats", lambda: _http_ready(nats_health))
            postmaster = self._children["postgres"].process.pid
            self._wait("postgres", lambda: _postmaster_ready(self.data_dir / "postgres", postmaster))
            self._bootstrap_postgres()
            s3 = self._s3_client()
            self._wait("seaweedfs", lambda: _s3_ready(s3))
            # Triton reads its model repository from this bucket, so it must exist before Triton starts.
            models = f"{self.settings.bucket_prefix}models"
            if not s3.bucket_exists(models):
                s3.make_bucket(models)
            if self.triton:
                self._spawn_triton(models)
                triton_health = f"http://127.0.0.1:{self.ports.triton_http}/v2/health/ready"
                self._wait("triton", lambda: _http_ready(triton_health))
            for name in self.services:
                self._spawn_service(name)
            for name in self.services:
                self._wait_service(name)
            self._supervisor = Supervisor(self.log_dir, self._service_process, self._service_problem,
                                          gave_up=lambda child: self._children.pop(child.name, None))
            for name in self.services:
                self._supervisor.watch(self._children[name])
            self._supervisor.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """End the supervisor, then stop every child in ``STOP_ORDER``: its stop signal, then SIGKILL
        after its grace period."""
        if self._supervisor is not None:
            self._supervisor.stop()
            self._supervisor = None
        for group in STOP_ORDER:
            children = [self._children[name] for name in group if name in self._children]
            stop_children(children)
            for child in children:
                del self._children[child.name]
                if child.name == "seaweedfs":
                    for path in seaweedfs_sockets(self.ports):
                        path.unlink(missing_ok=True)
        if self._spawner is not None:
            self._spawner.shutdown()
            self._spawner = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def start_service(self, name: str) -> None:
        """Start one service, wait until it is ready, and supervise it from then on."""
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r}; the services are {', '.join(SERVICES)}")
        if self._lock is None or self._supervisor is None:
            raise StackError("start the stack before its services")
        if name in self._children:
            raise StackError(f"{name} is already running")
        self._spawn_service(name)
        self._wait_service(name)
        self._supervisor.watch(self._children[name])

    def stop_service(self, name: str, kill: bool = False) -> None:
        """Stop one service gracefully, or SIGKILL it (and whatever it spawned) with ``kill``; either
        way it stays stopped until ``start_service``."""
        if name not in SERVICES or name not in self._children:
            raise StackError(f"{name} is not a running service")
        if self._supervisor is not None:
            self._supervisor.forget(name)
        child = self._children[name]
        if kill:
            kill_group(child)
            child.process.wait()
        else:
            stop_children([child])
        del self._children[name]

    def service_env(self, name: str) -> dict[str, str]:
        """The whole environment of service ``name``'s process."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
        env.update(settings_env(msgspec.structs.replace(self.settings, http_port=getattr(self.ports, name))))
        if name == "catalog":
            env[env_name("bootstrap_admin_key")] = self.admin_key
        return env

    def pids(self) -> dict[str, int]:
        """The process id of each running child, by name."""
        return {name: child.process.pid for name, child in self._children.items()}

    # -- the servers ----------------------------------------------------------------------------------

    def _spawn_nats(self) -> None:
        ports = self.ports
        # Bulk calls (10,000 samples) and bus images outgrow the 1 MiB default; nats-server takes this
        # only from a config file. Compose and the Helm values in docs/deploy.md set the same.
        config = self.data_dir / "nats.conf"
        config.write_text(f"max_payload: {NATS_MAX_PAYLOAD}\n")
        self._spawn("nats", [_binary("nats-server"), "-c", str(config), "-js", "-sd", str(self.data_dir / "nats"),
                             "-a", "127.0.0.1", "-p", str(ports.nats), "-m", str(ports.nats_monitor)],
                    port=ports.nats, cwd=self.data_dir, grace_s=10)

    def _spawn_postgres(self) -> None:
        pgdata = self.data_dir / "postgres"
        user = _postgres_user()
        if user is not None:
            _make_traversable(self.data_dir)
            for folder in ("bin", "lib", "share"):
                _make_traversable(_pg_install() / folder)
        if not (pgdata / "PG_VERSION").exists():
            self._initdb(pgdata, user)
        _remove_stale_postmaster_pid(pgdata)
        socket_dir = str(pgdata)
        if len(f"{pgdata}/.s.PGSQL.{self.ports.postgres}") >= 108:
            socket_dir = ""  # too long for a unix socket path: TCP only, which is all the stack uses
        self._spawn("postgres", [str(_pg_install() / "bin" / "postgres"), "-D", str(pgdata),
                                 "-h", "127.0.0.1", "-p", str(self.ports.postgres), "-k", socket_dir,
                                 # The 128 MB default holds a fraction of a million-sample catalog's indexes.
                                 "-c", "shared_buffers=512MB"],
                    port=self.ports.postgres, cwd=pgdata, user=user,
                    stop_signal=signal.SIGINT, grace_s=30)  # SIGINT: postgres's fast shutdown

    def _initdb(self, pgdata: Path, user: pwd.struct_passwd | None) -> None:
        # initdb works in a staging folder renamed at the end, so a folder named postgres always holds
        # a whole cluster; what a killed initdb left behind is never one.
        staging = pgdata.with_name("postgres.initdb")
        password_file = pgdata.with_name("postgres.initdb-password")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        _write_private(password_file, self._pg_superuser_password)
        if user is not None:
            for path in (staging, password_file):
                os.chown(path, user.pw_uid, user.pw_gid)
        try:
            with self._open_log("postgres", "initdb") as log:
                done = subprocess.run(
                    [str(_pg_install() / "bin" / "initdb"), "-D", str(staging), "-U", PG_SUPERUSER,
                     f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8",
                     "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--lc-collate=C",
                     "--lc-ctype=C.UTF-8", "--no-instructions"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=staging,
                    timeout=READY_TIMEOUT_S, **_as_user(user))
        finally:
            password_file.unlink()
        if done.returncode != 0:
            raise StackError(f"initdb of {pgdata} failed with code {done.returncode}"
                             + log_tail(self.log_dir, "postgres"))
        staging.rename(pgdata)

    def _bootstrap_postgres(self) -> None:
        """The role, the database and the extensions the services use; idempotent, run on every start."""
        password = self._pg_password.replace("'", "''")
        script = f"""
SELECT 'CREATE ROLE loupe' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'loupe') \\gexec
ALTER ROLE loupe WITH LOGIN PASSWORD '{password}';
SELECT 'CREATE DATABASE loupe OWNER loupe' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'loupe') \\gexec
\\connect loupe
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
"""
        # As the superuser: vector is not a trusted extension. The user's PG* variables stay out.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        done = subprocess.run(
            [str(_pg_install() / "bin" / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.ports.postgres), "-U", PG_SUPERUSER, "-d", "postgres"],
            input=script, capture_output=True, text=True, timeout=READY_TIMEOUT_S,
            env={**env, "PGPASSWORD": self._pg_superuser_password})
        if done.returncode != 0:
            raise StackError(f"bootstrapping postgres on 127.0.0.1:{self.ports.postgres} failed:\n"
                             f"{done.stdout}{done.stderr}")

    def _spawn_seaweedfs(self) -> None:
        root = self.data_dir / "seaweedfs"
        for folder in ("volumes", "meta"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        identities = {"identities": [{
            "name": S3_ACCESS_KEY,
            "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": self.settings.s3_secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}
        _write_private(root / "s3.json", json.dumps(identities))
        ports = self.ports
        self._spawn("seaweedfs", [
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
        ], port=ports.s3, cwd=root,
            # SeaweedFS's filer waits 15 s for its own metadata subscriptions to drain before it stops.
            # Every write it acknowledged is already in its files (a restart after SIGKILL reads them
            # all back), so it gets a short grace and then SIGKILL.
            grace_s=1)

    def _s3_client(self) -> minio.Minio:
        # No retries: the probe loop retries, and urllib3's back-off would only slow it down.
        http_client = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=10))
        return minio.Minio(self.settings.s3_endpoint, access_key=self.settings.s3_access_key,
                           secret_key=self.settings.s3_secret_key, secure=False,
                           region=self.settings.s3_region, http_client=http_client)

    def _spawn_triton(self, models_bucket: str) -> None:
        server = _package_dir("pytriton") / "tritonserver"
        # The wheel keeps one python backend stub per Python version apart from the backend; Triton
        # looks for the stub next to the backend library, so the backend folder is assembled here.
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        backend = self.data_dir / "triton" / "backends" / "python"
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
        copies = self.data_dir / "triton" / "model-copies"
        shutil.rmtree(copies, ignore_errors=True)
        copies.mkdir()
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update({
            "AWS_ACCESS_KEY_ID": self.settings.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.settings.s3_secret_key,
            "AWS_DEFAULT_REGION": self.settings.s3_region,
            "TRITON_AWS_MOUNT_DIRECTORY": str(copies),
            # The stub links the system libpython and the wheel's bundled libraries (libcudart, ...).
            "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [
                sysconfig.get_config_var("LIBDIR"), str(_package_dir("pytriton").parent / "nvidia_pytriton.libs"),
                os.environ.get("LD_LIBRARY_PATH")])),
            # The stub's embedded Python finds its prefix through the first python3 on PATH: this
            # environment's, so models import what is installed here (numpy, onnxruntime).
            "PATH": os.pathsep.join(filter(None, [str(Path(sys.executable).parent), os.environ.get("PATH")])),
        })
        ports = self.ports
        self._spawn("triton", [
            str(server / "bin" / "tritonserver"),
            f"--model-repository=s3://127.0.0.1:{ports.s3}/{models_bucket}",
            "--model-control-mode=explicit",
            f"--backend-directory={backend.parent}",
            "--http-address=127.0.0.1", f"--http-port={ports.triton_http}",
            "--grpc-address=127.0.0.1", f"--grpc-port={ports.triton_grpc}",
            "--metrics-address=127.0.0.1", f"--metrics-port={ports.triton_metrics}",
            "--exit-on-error=false",
            "--exit-timeout-secs=5",
        ], port=ports.triton_http, cwd=backend.parent.parent, env=env, grace_s=10)

    def _spawn_service(self, name: str) -> None:
        self._children[name] = Child(name, self._service_process(name), getattr(self.ports, name),
                                     signal.SIGTERM, self.settings.shutdown_grace_s + 5)

    def _service_process(self, name: str) -> subprocess.Popen[bytes]:
        """A new process of service ``name``, with the settings as they are now."""
        return self._popen(name, [sys.executable, "-m", f"services.{name}"], cwd=REPO_ROOT,
                           env=self.service_env(name))

    def _wait_service(self, name: str) -> None:
        self._wait(name, lambda: self._service_problem(name))

    def _service_problem(self, name: str) -> str | None:
        port = getattr(self.ports, name)
        # Inference is ready only while Triton is: without Triton, being up (alive) is what can be had.
        # scope=self: the gateway's full readiness also needs the other services, which a stack of
        # some services only (benchmarks) never has.
        check = "healthz" if name == "inference" and not self.triton else "readyz?scope=self"
        return _http_ready(f"http://127.0.0.1:{port}/{check}")

    # -- processes ------------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], *, port: int, cwd: Path, grace_s: float,
               env: dict[str, str] | None = None, user: pwd.struct_passwd | None = None,
               stop_signal: signal.Signals = signal.SIGTERM) -> None:
        self._children[name] = Child(name, self._popen(name, argv, cwd=cwd, env=env, user=user),
                                     port, stop_signal, grace_s)

    def _popen(self, name: str, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
               user: pwd.struct_passwd | None = None) -> subprocess.Popen[bytes]:
        assert self._spawner is not None
        with self._open_log(name, shlex.join(argv)) as log:
            # Its own session: a Ctrl-C in the terminal reaches only the runner, which stops the
            # children in order.
            return self._spawner.submit(
                subprocess.Popen, argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=cwd, env=env, start_new_session=True,
                preexec_fn=functools.partial(_die_with_parent, os.getpid()), **_as_user(user)).result()

    def _open_log(self, name: str, what: str) -> IO[bytes]:
        note_in_log(self.log_dir, name, f"runs: {what}")
        return open(self.log_dir / f"{name}.log", "ab")

    def _wait(self, name: str, problem: Callable[[], str | None], timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until ``problem()`` reports none, failing early when the child exits."""
        child = self._children[name]
        deadline = time.monotonic() + timeout_s
        while (last := problem()) is not None:
            if child.process.poll() is not None:
                raise StackError(f"{name} exited with code {child.process.returncode} before it was ready "
                                 f"on 127.0.0.1:{child.port}" + log_tail(self.log_dir, name))
            if time.monotonic() > deadline:
                raise StackError(f"{name} not ready on 127.0.0.1:{child.port} after {timeout_s:.0f} s "
                                 f"(last check: {last})" + log_tail(self.log_dir, name))
            time.sleep(0.05)

    def _lock_data_dir(self) -> None:
        """One runner per data folder; the kernel drops the lock when the runner dies, however it dies."""
        lock = open(self.data_dir / "stack.lock", "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip()
            lock.close()
            raise StackError(f"{self.data_dir} is in use by another stack (runner pid {owner})") from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _secret(self, name: str) -> str:
        """A random token made on first use and kept in the data folder (mode 600) for every later start."""
        path = self.data_dir / name
        if not path.exists():
            _write_private(path, secrets.token_urlsafe(24), exclusive=True)
        return path.read_text().strip()


def run_until_signal(stack: Stack) -> None:
    """``loupe up``: start, say where everything is, run until SIGINT or SIGTERM, stop."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM means what Ctrl-C means. Both are set here, as a runner started in the background
    # inherits SIGINT ignored.
    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    began = time.monotonic()
    try:
        stack.start()  # a Ctrl-C while starting stops what was started
        print(f"Loupe is up ({time.monotonic() - began:.1f} s)\n"
              f"  gateway    {stack.gateway_url}\n"
              f"  admin key  {stack.admin_key}\n"
              f"  data       {stack.data_dir}\n"
              f"  logs       {stack.log_dir}\n"
              "Ctrl-C stops everything.", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        # A second Ctrl-C must not cut the ordered stop short; it is bounded by the grace periods.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        try:
            stack.stop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def seaweedfs_sockets(ports: StackPorts) -> list[Path]:
    """The unix sockets SeaweedFS leaves in /tmp (fixed: TMPDIR does not move them), even when it
    stops cleanly; the stack removes them once SeaweedFS has exited."""
    names = [f"master-grpc-{ports.weed_master_grpc}", f"volume-grpc-{ports.weed_volume_grpc}",
             f"filer-grpc-{ports.weed_filer_grpc}", f"s3-grpc-{ports.weed_s3_grpc}",
             f"filer-{ports.weed_filer}", f"s3-{ports.s3}"]
    return [Path(f"/tmp/seaweedfs-{name}.sock") for name in names]


def _die_with_parent(runner_pid: int) -> None:
    """In the child between fork and exec (after the uid switch, which would clear it): SIGKILL the
    child when the runner dies, even by SIGKILL, so no server outlives it."""
    if _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != runner_pid:  # the runner died before the signal was armed
        os._exit(1)


def _as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    # Replaces root's supplementary groups; newer CPythons skip setgroups() for an empty list.
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [user.pw_gid]}


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


def _postmaster_ready(pgdata: Path, pid: int) -> str | None:
    # postmaster.pid: line 1 the postmaster's pid, line 8 its status, "ready" once it accepts connections.
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return "no postmaster.pid yet"
    if len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready":
        return None
    return "postmaster.pid does not say ready"


def _http_ready(url: str) -> str | None:
    try:
        with _http.open(url, timeout=2) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (OSError, http.client.HTTPException) as error:
        return str(error)


def _s3_ready(s3: minio.Minio) -> str | None:
    try:
        s3.list_buckets()
    except (OSError, urllib3.exceptions.HTTPError, minio.error.MinioException) as error:
        return str(error)
    return None


def _write_private(path: Path, text: str, exclusive: bool = False) -> None:
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


def _pg_install() -> Path:
    return _package_dir("pgserver") / "pginstall"
