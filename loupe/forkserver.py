"""The services' parent: one process of the local stack that imports what the services import, once, and forks
every service process from itself, so that they share those modules' memory copy-on-write.

Each service alone holds about 40 MB of Python objects from its imports; forked from one parent that holds them,
six services and their parent take about half as much (docs/local-stack.md#memory). The stack starts the parent
(``python -m loupe.forkserver``, as any other child) and asks it, over a unix socket on the parent's stdin, for a
process of ``services.<name>`` with an environment, a folder and a log file; the child then does what
``subprocess.Popen`` did for a service (its own session, the parent-death signal, the log on stdout and stderr)
and runs the service as ``python -m services.<name>`` would. ``ServiceProcess`` is the runner's handle on such a
process, with what the stack and its supervisor use of ``Popen``: the parent reports its pid and, once it exits,
its exit status through a pipe of its own.

The parent imports modules only: no thread, event loop, logging handler, socket or setting may exist in it before
it forks (forking a process with threads is unsafe, and every service reads its own settings in ``main()``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import os
import runpy
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import msgspec

# What every service imports (shared.service: asyncio, aiohttp, asyncpg, minio, nats, msgspec, prometheus_client
# and every proto module), what four or five of the six import, Pillow (four) and numpy (four). numpy's OpenBLAS
# starts a thread per core when loaded, and a process with threads must not fork: the parent loads it with
# OPENBLAS_NUM_THREADS=1, which starts none, so the services' matrix products run on one thread (they do little
# linear algebra; a training run is a process of its own, spawned, with the service's environment).
PRELOAD = ("shared.service", "shared.callers", "shared.ids", "shared.paging", "shared.rows", "PIL.Image", "numpy")
SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1"}
# A pid, then an exit status (negative: the signal that killed it), on the pipe of each forked process.
STATUS = struct.Struct("q")
MAX_REQUEST_BYTES = 1 << 20  # a request carries a whole environment: a few kB

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_libc = ctypes.CDLL(None, use_errno=True)


class Fork(msgspec.Struct, frozen=True):
    """A request to the parent: a process named ``name`` running ``module`` (as ``python -m module`` would) in
    ``cwd`` with ``env``."""

    name: str
    module: str
    env: dict[str, str]
    cwd: str


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies, even by SIGKILL, so that nothing outlives the runner; exit at
    once if the parent has died already."""
    if _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent_pid:
        os._exit(1)


# -- the runner's side --------------------------------------------------------------------------------------


class ServicesParent:
    """The runner's end of the socket to a services' parent; ``fork`` may be called from any thread."""

    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._lock = threading.Lock()

    def fork(self, name: str, module: str, env: Mapping[str, str], cwd: Path, log: IO[bytes]) -> ServiceProcess:
        """A new process running ``module``, named ``name`` in ps and top, with ``log`` as its stdout and stderr."""
        request = msgspec.msgpack.encode(Fork(name, module, dict(env), str(cwd)))
        status_r, status_w = os.pipe()
        # A parent that is gone refuses the request; then nobody holds the pipe's write end, and it reads no pid.
        with self._lock, contextlib.suppress(OSError):
            socket.send_fds(self._control, [request], [status_w, log.fileno()])
        os.close(status_w)
        pid = _read_status(status_r)
        if pid is None:
            os.close(status_r)
            raise OSError(f"the services' parent ended instead of starting {module}; see logs/services-parent.log")
        return ServiceProcess(pid, status_r)

    def close(self) -> None:
        """The parent exits once its socket is closed (its services have been stopped before)."""
        self._control.close()


class ServiceProcess:
    """A process the services' parent forked, with the part of ``subprocess.Popen`` the stack uses."""

    def __init__(self, pid: int, status: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._status = status
        weakref.finalize(self, os.close, status)
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        return self._exit_status(timeout_s=0)

    def wait(self, timeout: float | None = None) -> int:
        returncode = self._exit_status(timeout)
        if returncode is None:
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
        return returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def _exit_status(self, timeout_s: float | None) -> int | None:
        if self.returncode is None:
            readable = select.poll()
            readable.register(self._status, select.POLLIN)
            if readable.poll(None if timeout_s is None else timeout_s * 1000):
                with self._lock:
                    if self.returncode is None:
                        # No status at all: the parent died, and its death signal killed the process.
                        status = _read_status(self._status)
                        self.returncode = -signal.SIGKILL if status is None else status
        return self.returncode


def _read_status(fd: int) -> int | None:
    """The next number on a status pipe; None at its end."""
    data = os.read(fd, STATUS.size)  # one write of 8 bytes to a pipe is read whole
    return STATUS.unpack(data)[0] if data else None


# -- the parent's side --------------------------------------------------------------------------------------


def main() -> None:
    set_name("services-parent")
    os.environ.update(SINGLE_THREADED_BLAS)
    for module in PRELOAD:
        importlib.import_module(module)
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise SystemExit(f"the services' parent runs {threads} threads after importing {PRELOAD}; it must not fork")
    # Into the permanent generation: the collector never writes to these objects, so their pages stay shared.
    gc.freeze()
    fork, log_fd = serve(socket.socket(fileno=0), os.getpid())
    become(fork, log_fd)
    runpy.run_module(fork.module, run_name="__main__", alter_sys=True)


def serve(control: socket.socket, parent_pid: int) -> tuple[Fork, int]:
    """Fork a child for each request, report its pid and later its exit status on the request's pipe; exit when
    the runner closes its end. Returns only in a child: what it is to run, and its log."""
    statuses: dict[int, int] = {}  # pid: the write end of its status pipe
    woken_r, woken_w = os.pipe()
    os.set_blocking(woken_w, False)
    signal.set_wakeup_fd(woken_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler of its own, or SIGCHLD does not wake the select
    while True:
        ready, _, _ = select.select([control.fileno(), woken_r], [], [])
        if woken_r in ready:
            os.read(woken_r, 4096)
            report_exits(statuses)
        if control.fileno() not in ready:
            continue
        request, fds, _, _ = socket.recv_fds(control, MAX_REQUEST_BYTES, 2)
        if not request:
            raise SystemExit(0)
        status_w, log_fd = fds
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            control.detach()  # its fd 0, which become() replaces by /dev/null
            for fd in (woken_r, woken_w, status_w, *statuses.values()):
                os.close(fd)
            die_with_parent(parent_pid)
            return msgspec.msgpack.decode(request, type=Fork), log_fd
        os.close(log_fd)
        os.write(status_w, STATUS.pack(pid))
        statuses[pid] = status_w


def report_exits(statuses: dict[int, int]) -> None:
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        status_w = statuses.pop(pid)
        try:
            os.write(status_w, STATUS.pack(os.waitstatus_to_exitcode(wait_status)))
        except BrokenPipeError:  # the runner no longer listens to this one
            pass
        os.close(status_w)


def become(fork: Fork, log_fd: int) -> None:
    """In a forked child, what ``subprocess.Popen`` did for a service's own process."""
    # Its own session and process group: a Ctrl-C reaches only the runner, and stop_service(kill=True) kills
    # the group, whatever the service spawned included.
    os.setsid()
    set_name(fork.name)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ.clear()
    os.environ.update(fork.env)
    os.chdir(fork.cwd)


def set_name(name: str) -> None:
    """The name ps -e, top and /proc/<pid>/status show (their command lines all read python -m loupe.forkserver)."""
    _libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


if __name__ == "__main__":
    main()
