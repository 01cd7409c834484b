"""The embedded local stack: every real server from its PyPI wheel plus the six services, one data folder.

``Stack(data_dir, ports).start()`` runs NATS with JetStream, PostgreSQL 18 with pgvector and pg_trgm,
SeaweedFS as the S3 server, Triton (``loupe.servers`` says how each runs) and the services as processes
bound to 127.0.0.1, forked from one process that imported what they share (``loupe.forkserver``); ``stop()``
ends them in order. A later start on the same folder reuses its
data, passwords and admin key. While it runs, a service that exits unasked is started again
(``loupe.supervisor``). ``replicas`` runs several processes of a worker service against the same servers, as
Kubernetes runs several pods of it. docs/local-stack.md describes the layout of the folder and why each server runs
the way it does.
"""

from __future__ import annotations

import fcntl
import functools
import os
import pwd
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import msgspec

from loupe import servers
from loupe.forkserver import ServicesParent, die_with_parent
from loupe.servers import READY_TIMEOUT_S, Server, StackError, StackPorts, free_ports, seaweedfs_sockets
from loupe.supervisor import Child, ChildProcess, Supervisor, kill_group, log_tail, open_log, stop_children
from proto.subjects import SERVICES, WORKER_SERVICES
from shared.settings import ENV_PREFIX, Settings, env_name, load_settings, settings_env
from shared.storage import BUCKETS

__all__ = ["INFRASTRUCTURE", "REPO_ROOT", "Stack", "StackError", "StackPorts", "replica_names", "service_of"]

REPO_ROOT = Path(__file__).resolve().parent.parent
S3_ACCESS_KEY = "loupe"
# The process every service is forked from (loupe.forkserver).
SERVICES_PARENT = "services-parent"
# Stop order, each group stopped together: the API first, so nothing new comes in, the bus last.
STOP_ORDER = (("gateway",), WORKER_SERVICES, (SERVICES_PARENT,), ("triton",), ("seaweedfs",), ("postgres",),
              ("nats",))
INFRASTRUCTURE = ("nats", "postgres", "seaweedfs", "triton")
# Between a service and the number of one of its replicas: "ingest#2". The first replica is the service's name.
REPLICA_MARK = "#"


class Stack:
    """The local stack on one data folder; ``with Stack(...) as stack:`` starts and stops it.

    Its methods may be called from any thread (tests use ``asyncio.to_thread``): children are spawned
    from a thread the stack owns, because the kernel sends the parent-death signal when the *thread*
    that spawned a child ends, not the process. From the end of ``start()`` to ``stop()`` a supervisor
    thread restarts any service that exits without ``stop_service`` or ``stop`` having asked it to;
    the infrastructure servers are not restarted by it, only by ``restart_server``.

    ``replicas`` is how many processes of each worker service run: one number for all, or a number by
    service (those not named run one). Replica 1 of a service is named as the service and listens on
    its port in ``ports``; replica k > 1 is named ``service#k`` and listens on a free port of its own
    (``replica_ports``). Every method that takes a service's name takes a replica's.
    """

    def __init__(self, data_dir: Path, ports: StackPorts, services: Sequence[str] = SERVICES,
                 triton: bool = True, log_dir: Path | None = None,
                 overrides: Mapping[str, object] | None = None, replicas: int | Mapping[str, int] = 1) -> None:
        unknown = sorted(set(services) - set(SERVICES))
        if unknown:
            raise ValueError(f"unknown services {unknown}; the services are {', '.join(SERVICES)}")
        self.data_dir = Path(data_dir).resolve()
        self.ports = ports
        self.services = tuple(services)
        self.replicas = replica_counts(replicas, self.services)
        # Every process of every service by name, first replicas first, and the port each listens on.
        names = [name for service in self.services for name in replica_names(service, self.replicas[service])]
        extra = free_ports(len(names) - len(self.services), taken=set(msgspec.structs.astuple(ports)))
        self.replica_ports = {name: getattr(ports, name) for name in self.services}
        self.replica_ports.update(zip((n for n in names if REPLICA_MARK in n), extra, strict=True))
        self.triton = triton
        self.log_dir = Path(log_dir or self.data_dir / "logs").resolve()
        self.gateway_url = f"http://127.0.0.1:{ports.gateway}"
        self.segments_url = f"http://127.0.0.1:{ports.segments}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Prefixed as the catalog's own keys are: a key starting with "-" is taken for an option on a command line.
        self.admin_key = self._secret("admin-key", prefix="lp_")
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
            triton_grpc_url=f"127.0.0.1:{ports.triton_grpc}",
            http_host="127.0.0.1",
            http_port=ports.gateway,
            public_url=from_env.public_url or self.gateway_url,
            segments_port=ports.segments,
            segments_public_url=from_env.segments_public_url or self.segments_url,
            bootstrap_admin_key="",
            secrets_key=from_env.secrets_key or self._secret("secrets-key"),
        )
        # Settings a caller (the tests) fixes on top, e.g. which addresses URL imports may reach.
        self.settings = msgspec.structs.replace(self.settings, **(overrides or {}))
        self._children: dict[str, Child] = {}
        self._services_parent: ServicesParent | None = None
        self._services_parent_lock = threading.Lock()  # the supervisor and a caller may start services at once
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
            seaweedfs = self._start_server(self._server("seaweedfs"))  # the slowest to come up
            if self.services:
                self._running_services_parent()  # its imports overlap the servers' starts
            nats = self._start_server(self._server("nats"))
            postgres = self._start_server(self._server("postgres"))
            self._wait_server(nats)
            self._wait_server(postgres)
            servers.bootstrap_postgres(self.ports, self._pg_superuser_password, self._pg_password)
            self._wait_server(seaweedfs)
            # Every bucket before Triton and the services start: Triton reads its model repository from the models
            # bucket, and SeaweedFS can refuse a bucket that two replicas, forked at the same moment, create at once
            # ("NoSuchBucket").
            s3 = servers.s3_client(self.settings)
            for bucket in BUCKETS:
                if not s3.bucket_exists(f"{self.settings.bucket_prefix}{bucket}"):
                    s3.make_bucket(f"{self.settings.bucket_prefix}{bucket}")
            if self.triton:
                self._wait_server(self._start_server(self._server("triton")))
            for name in self.replica_ports:
                self._spawn_service(name)
            for name in self.replica_ports:
                self._wait_service(name)
            self._supervisor = Supervisor(self.log_dir, self._service_process, self.service_problem,
                                          gave_up=lambda child: self._children.pop(child.name, None))
            for name in self.replica_ports:
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
            children = [child for name, child in self._children.items() if service_of(name) in group]
            stop_children(children)
            for child in children:
                self._forget_child(child.name)
        if self._spawner is not None:
            self._spawner.shutdown()
            self._spawner = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def start_service(self, name: str) -> None:
        """Start one service (or replica), wait until it is ready, and supervise it from then on."""
        self._port_of(name)  # refuses an unknown name
        if self._lock is None or self._supervisor is None:
            raise StackError("start the stack before its services")
        if name in self._children:
            raise StackError(f"{name} is already running")
        self._spawn_service(name)
        self._wait_service(name)
        self._supervisor.watch(self._children[name])

    def stop_service(self, name: str, kill: bool = False) -> None:
        """Stop one service (or replica) gracefully, or SIGKILL it (and whatever it spawned) with ``kill``;
        either way it stays stopped until ``start_service``."""
        if service_of(name) not in SERVICES or name not in self._children:
            raise StackError(f"{name} is not a running service")
        if self._supervisor is not None:
            self._supervisor.forget(name)
        child = self._children[name]
        _end(child, kill)
        del self._children[name]

    def restart_server(self, name: str, kill: bool = False) -> None:
        """Stop one infrastructure server (its stop signal, or SIGKILL with ``kill``), start it again on
        the same data and ports, and wait until it is ready. The services are left alone: they ride out
        the outage and reconnect as they would to a restarted pod."""
        if name not in INFRASTRUCTURE or name not in self._children:
            raise StackError(f"{name} is not a running server; the servers are {', '.join(INFRASTRUCTURE)}")
        _end(self._children[name], kill)
        self._forget_child(name)
        self._wait_server(self._start_server(self._server(name)))

    def service_env(self, name: str) -> dict[str, str]:
        """The whole environment of the process of service (or replica) ``name``."""
        env = _env_without_settings()
        env.update(settings_env(msgspec.structs.replace(self.settings, http_port=self._port_of(name))))
        if service_of(name) == "catalog":
            env[env_name("bootstrap_admin_key")] = self.admin_key
        return env

    def pids(self) -> dict[str, int]:
        """The process id of each running child (server, service, replica, the services' parent), by name."""
        # A copy first: the supervisor thread, or a restart on another thread, may change the children meanwhile.
        return {name: child.process.pid for name, child in list(self._children.items())}

    # -- the processes -------------------------------------------------------------------------------

    def _port_of(self, name: str) -> int:
        """The port of a service or replica of this stack (or of a service it was not started with)."""
        if name in self.replica_ports:
            return self.replica_ports[name]
        if name in SERVICES:
            return int(getattr(self.ports, name))
        raise ValueError(f"unknown service or replica {name!r}; this stack runs {', '.join(self.replica_ports)}")

    def _spawn_service(self, name: str) -> None:
        self._children[name] = Child(name, self._service_process(name), self._port_of(name),
                                     signal.SIGTERM, self.settings.shutdown_grace_s + 5)

    def _service_process(self, name: str) -> ChildProcess:
        """A new process of service (or replica) ``name``, with the settings as they are now."""
        module = f"services.{service_of(name)}"
        with open_log(self.log_dir, name, f"{module}, forked from the {SERVICES_PARENT}") as log:
            return self._running_services_parent().fork(name, module, self.service_env(name), REPO_ROOT, log)

    def _running_services_parent(self) -> ServicesParent:
        """The services' parent, started on first use, and again if it died."""
        with self._services_parent_lock:
            child = self._children.get(SERVICES_PARENT)
            if child is not None and child.process.poll() is not None:
                self._forget_child(SERVICES_PARENT)
                child = None
            if child is None:
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                with theirs:
                    process = self._popen(SERVICES_PARENT, [sys.executable, "-m", "loupe.forkserver"], cwd=REPO_ROOT,
                                          env=_env_without_settings(), stdin=theirs.fileno())
                self._children[SERVICES_PARENT] = Child(SERVICES_PARENT, process, 0, signal.SIGTERM, 5.0)
                self._services_parent = ServicesParent(ours)
            assert self._services_parent is not None
            return self._services_parent

    def _wait_service(self, name: str) -> None:
        self._wait(name, lambda: self.service_problem(name))

    def service_problem(self, name: str) -> str | None:
        """What keeps service (or replica) ``name`` from being ready; None once it is."""
        # Inference is ready only while Triton is: without Triton, being up (alive) is what can be had.
        # scope=self: the gateway's full readiness also needs the other services, which a stack of
        # some services only (benchmarks) never has.
        check = "healthz" if service_of(name) == "inference" and not self.triton else "readyz?scope=self"
        return servers.http_problem(f"http://127.0.0.1:{self._port_of(name)}/{check}")

    @property
    def _models_bucket(self) -> str:
        return f"{self.settings.bucket_prefix}models"

    def _server(self, name: str) -> Server:
        """How infrastructure server ``name`` runs, made afresh for each start (a postgres killed
        before leaves a postmaster.pid to clear, a Triton its model copies)."""
        data, ports, settings = self.data_dir, self.ports, self.settings
        match name:
            case "nats":
                return servers.nats(data, ports)
            case "postgres":
                return servers.postgres(data, ports, self._pg_superuser_password, self.log_dir)
            case "seaweedfs":
                return servers.seaweedfs(data, ports, settings)
            case "triton":
                return servers.triton(data, ports, settings, self._models_bucket)
        raise ValueError(f"unknown server {name!r}; the servers are {', '.join(INFRASTRUCTURE)}")

    def _forget_child(self, name: str) -> None:
        """Drop an ended child; SeaweedFS's leaves its unix sockets in /tmp, which would block its next start."""
        del self._children[name]
        if name == SERVICES_PARENT and self._services_parent is not None:
            self._services_parent.close()
            self._services_parent = None
        if name == "seaweedfs":
            for path in seaweedfs_sockets(self.ports):
                path.unlink(missing_ok=True)

    def _start_server(self, server: Server) -> Server:
        self._children[server.name] = Child(
            server.name, self._popen(server.name, server.argv, cwd=server.cwd, env=server.env, user=server.user),
            server.port, server.stop_signal, server.grace_s)
        return server

    def _wait_server(self, server: Server) -> None:
        pid = self._children[server.name].process.pid
        self._wait(server.name, lambda: server.problem(pid))

    def _popen(self, name: str, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
               user: pwd.struct_passwd | None = None, stdin: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        assert self._spawner is not None
        with open_log(self.log_dir, name, shlex.join(argv)) as log:
            # Its own session: a Ctrl-C in the terminal reaches only the runner, which stops the
            # children in order.
            return self._spawner.submit(
                subprocess.Popen, argv, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                cwd=cwd, env=env, start_new_session=True,
                # In the child between fork and exec, after the uid switch, which would clear it.
                preexec_fn=functools.partial(die_with_parent, os.getpid()), **servers.as_user(user)).result()

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
        lock = open(self.data_dir / "stack.lock", "a+")  # noqa: SIM115 -- held open until stop(): it is the lock
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

    def _secret(self, name: str, prefix: str = "") -> str:
        """A random token made on first use and kept in the data folder (mode 600) for every later start."""
        path = self.data_dir / name
        if not path.exists():
            servers.write_private(path, prefix + secrets.token_urlsafe(24), exclusive=True)
        return path.read_text().strip()


def replica_counts(replicas: int | Mapping[str, int], services: Sequence[str]) -> dict[str, int]:
    """How many processes of each of ``services`` run: ``replicas`` of each worker service, or as the mapping
    says (1 for those it leaves out). The gateway runs once: it owns the stack's public ports."""
    counts = dict.fromkeys(services, 1)
    if isinstance(replicas, int):
        asked = {name: replicas for name in services if name in WORKER_SERVICES}
    else:
        asked = dict(replicas)
    for name, count in asked.items():
        if name not in services:
            raise ValueError(f"replicas of {name!r}, which this stack does not run; it runs {', '.join(services)}")
        if count < 1:
            raise ValueError(f"replicas of {name} must be at least 1, not {count}")
        if name not in WORKER_SERVICES and count != 1:
            raise ValueError(f"{name} runs once (it owns the stack's public ports); replicas are for "
                             f"{', '.join(WORKER_SERVICES)}")
        counts[name] = count
    return counts


def replica_names(service: str, count: int) -> list[str]:
    """``ingest``, ``ingest#2``, ... : the names of ``count`` replicas of ``service``."""
    return [service, *(f"{service}{REPLICA_MARK}{k}" for k in range(2, count + 1))]


def service_of(name: str) -> str:
    """The service a replica (or child) name belongs to: ``ingest#2`` → ``ingest``."""
    return name.split(REPLICA_MARK, 1)[0]


def _env_without_settings() -> dict[str, str]:
    """The runner's environment less its ``LOUPE_*`` settings: a child's settings are the stack's to say."""
    return {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}


def _end(child: Child, kill: bool) -> None:
    """Stop a child gracefully, or SIGKILL its whole process group with ``kill``; returns once it exited."""
    if kill:
        kill_group(child)
        child.process.wait()
    else:
        stop_children([child])

