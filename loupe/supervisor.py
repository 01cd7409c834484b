"""The local stack's child processes: their logs, stopping them, and keeping its services running like an
init system.

A service process that exits without the stack having asked it to (killed, crashed, any exit code)
is started again after a back-off: ``first_delay_s``, doubling up to ``max_delay_s``, and back to
``first_delay_s`` once a process has stayed up ``stable_after_s``. A service that exits
``max_failed_starts`` times in a row without becoming ready is given up on: an ERROR names it and
quotes the tail of its log, and the rest of the stack keeps running. A deliberate stop
(``Stack.stop_service``, ``Stack.stop``) first tells the supervisor, so it is never undone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 30


class ChildProcess(Protocol):
    """What the stack uses of a child's process: a ``subprocess.Popen``, or a service the services' parent forked
    (``loupe.forkserver.ServiceProcess``)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...


@dataclass
class Child:
    """A child process of the stack; a restart replaces ``process`` in place."""

    name: str
    process: ChildProcess
    port: int
    stop_signal: signal.Signals
    grace_s: float


def stop_children(children: Sequence[Child]) -> None:
    """Signal all, wait for each within its grace, then SIGKILL what is left of each process group."""
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(child.stop_signal)
    began = time.monotonic()
    for child in children:
        try:
            child.process.wait(timeout=max(0.0, began + child.grace_s - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        # Also what the child spawned and left behind (python backend stubs, worker processes).
        kill_group(child)
        child.process.wait()


def kill_group(child: Child) -> None:
    try:
        os.killpg(child.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def log_tail(log_dir: Path, name: str) -> str:
    """The last lines of a child's log, to end an error message with."""
    path = log_dir / f"{name}.log"
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return f"\nlast {LOG_TAIL_LINES} lines of {path}:\n" + "\n".join(lines[-LOG_TAIL_LINES:])


def note_in_log(log_dir: Path, name: str, text: str) -> None:
    """A line of the stack's own in a child's log, between what the child wrote."""
    with open(log_dir / f"{name}.log", "a") as file:
        file.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} loupe stack {text}\n")


def open_log(log_dir: Path, name: str, what: str) -> IO[bytes]:
    """A child's log, to append its output to, after a line saying what runs now."""
    note_in_log(log_dir, name, f"runs: {what}")
    return open(log_dir / f"{name}.log", "ab")


def describe_exit(returncode: int) -> str:
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 0.25
    max_delay_s: float = 30.0
    # A process that stayed up this long ran well: the back-off starts over at its next exit.
    stable_after_s: float = 30.0
    # Exits in a row, each before the process became ready, after which a service is given up on.
    max_failed_starts: int = 5


class Restarts:
    """One service's exits so far and what the policy makes of the next one; no processes involved."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.exits_in_row = 0
        self.failed_starts = 0

    def exited(self, up_for_s: float, was_ready: bool) -> float | None:
        """Seconds to wait before starting the service again, or None: give up on it."""
        if up_for_s >= self.policy.stable_after_s:
            self.exits_in_row = 0
        self.exits_in_row += 1
        self.failed_starts = 0 if was_ready else self.failed_starts + 1
        if self.failed_starts >= self.policy.max_failed_starts:
            return None
        doublings = min(self.exits_in_row - 1, 32)  # past the cap anyway; keeps the float finite
        return min(self.policy.first_delay_s * 2 ** doublings, self.policy.max_delay_s)


@dataclass
class _Watch:
    child: Child
    restarts: Restarts
    since: float  # when the current process started, or was first watched
    ready: bool
    restart_at: float | None = None


class Supervisor:
    """Watches the services' processes from a thread of its own and restarts those that exit unasked.

    ``start_process(name)`` starts a new process of a service, ``problem(name)`` is its readiness probe
    (None once ready), and ``gave_up(child)`` hears of a service given up on.
    """

    def __init__(self, log_dir: Path, start_process: Callable[[str], ChildProcess],
                 problem: Callable[[str], str | None], gave_up: Callable[[Child], None],
                 policy: RestartPolicy = RestartPolicy(), tick_s: float = 0.1) -> None:
        self.log_dir = log_dir
        self.policy = policy
        self._start_process = start_process
        self._problem = problem
        self._gave_up = gave_up
        self._tick_s = tick_s
        # Held while a process is replaced: once forget() returns, the child's process stays what it is.
        self._lock = threading.Lock()
        self._watched: dict[str, _Watch] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loupe-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Restart nothing from now on; returns once the thread has ended."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def watch(self, child: Child) -> None:
        """Restart ``child`` whenever its process exits unasked; it is ready now."""
        with self._lock:
            self._watched[child.name] = _Watch(child, Restarts(self.policy), since=time.monotonic(), ready=True)

    def forget(self, name: str) -> None:
        """The stack is about to stop ``name`` itself: leave it stopped."""
        with self._lock:
            self._watched.pop(name, None)

    def _run(self) -> None:
        while not self._stopping.wait(self._tick_s):
            try:
                self._check()
            except Exception:  # the thread must outlive any one failure, or nothing is restarted again
                log.exception("supervising the services failed; trying again")

    def _check(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            now = time.monotonic()
            for watch in list(self._watched.values()):
                process = watch.child.process
                if watch.restart_at is not None:
                    if now >= watch.restart_at:
                        self._restart(watch, now)
                elif (returncode := process.poll()) is not None:
                    kill_group(watch.child)  # whatever the dead process left running in its group
                    self._exited(watch, f"(pid {process.pid}) {describe_exit(returncode)} "
                                        f"after {now - watch.since:.1f} s", now)
            starting = [(watch, watch.child.process) for watch in self._watched.values()
                        if not watch.ready and watch.restart_at is None]
        # Probed without the lock: a probe may take seconds, and stop_service must not wait for it.
        for watch, process in starting:
            if self._problem(watch.child.name) is None:
                self._became_ready(watch, process)

    def _exited(self, watch: _Watch, reason: str, now: float) -> None:
        child = watch.child
        delay = watch.restarts.exited(now - watch.since, watch.ready)
        if delay is None:
            del self._watched[child.name]
            message = (f"{child.name} {reason}: {watch.restarts.failed_starts} exits in a row before it was "
                       "ready, so it is not started again; the rest of the stack keeps running")
            note_in_log(self.log_dir, child.name, f"supervisor: {message}")
            log.error("%s%s", message, log_tail(self.log_dir, child.name))
            self._gave_up(child)
            return
        watch.restart_at = now + delay
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
        message = f"{child.name} {reason}; restarting it in {delay:.2f} s, at {at}"
        note_in_log(self.log_dir, child.name, f"supervisor: {message}")
        log.warning("%s", message)

    def _restart(self, watch: _Watch, now: float) -> None:
        watch.restart_at, watch.since, watch.ready = None, now, False
        try:
            watch.child.process = self._start_process(watch.child.name)
        except (OSError, subprocess.SubprocessError) as exc:
            self._exited(watch, f"could not be started ({exc})", now)

    def _became_ready(self, watch: _Watch, process: ChildProcess) -> None:
        with self._lock:
            if self._watched.get(watch.child.name) is not watch or watch.child.process is not process:
                return  # stopped, or exited and restarted, while it was probed
            watch.ready = True
        log.info("%s (pid %d) is ready again, %.1f s after its start", watch.child.name, process.pid,
                 time.monotonic() - watch.since)
