"""The restart policy as pure logic, and the supervisor thread on small real processes (no servers)."""

from __future__ import annotations

import errno
import logging
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loupe.supervisor import Child, RestartPolicy, Restarts, Supervisor, describe_exit

POLICY = RestartPolicy(first_delay_s=0.25, max_delay_s=2.0, stable_after_s=30.0, max_failed_starts=5)
QUICK = RestartPolicy(first_delay_s=0.01, max_delay_s=0.05, stable_after_s=30.0, max_failed_starts=5)


def test_delays_double_from_the_first_up_to_the_cap() -> None:
    restarts = Restarts(POLICY)
    assert [restarts.exited(1.0, was_ready=True) for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_a_process_that_stayed_up_starts_the_back_off_over() -> None:
    restarts = Restarts(POLICY)
    assert [restarts.exited(1.0, was_ready=True) for _ in range(3)] == [0.25, 0.5, 1.0]
    assert restarts.exited(30.0, was_ready=True) == 0.25
    assert restarts.exited(29.0, was_ready=True) == 0.5


def test_five_exits_in_a_row_before_ready_give_up() -> None:
    restarts = Restarts(POLICY)
    assert restarts.exited(3600.0, was_ready=True) == 0.25  # killed while it ran: not a failed start
    assert [restarts.exited(0.5, was_ready=False) for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    assert restarts.exited(0.5, was_ready=False) is None


def test_becoming_ready_clears_the_failed_starts() -> None:
    restarts = Restarts(POLICY)
    for _ in range(4):
        assert restarts.exited(0.5, was_ready=False) is not None
    assert restarts.exited(5.0, was_ready=True) is not None
    for _ in range(4):
        assert restarts.exited(0.5, was_ready=False) is not None


def test_a_crash_loop_after_ready_is_never_given_up_and_the_delay_stays_finite() -> None:
    restarts = Restarts(POLICY)
    assert [restarts.exited(1.0, was_ready=True) for _ in range(2000)][-1] == 2.0


def test_exits_are_described_by_code_or_signal_name() -> None:
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "was killed by SIGSEGV"
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(0) == "exited with code 0"


class Processes:
    """Starts one shell command per call, as the stack starts a service; remembers each process."""

    def __init__(self, log_dir: Path, command: str) -> None:
        self.log_dir = log_dir
        self.command = command
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(self, name: str) -> subprocess.Popen[bytes]:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(["sh", "-c", self.command], stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()
            process.wait()


@pytest.fixture
def make_supervisor(tmp_path: Path) -> Iterator[Callable[..., tuple[Supervisor, Processes, list[Child]]]]:
    made: list[tuple[Supervisor, Processes]] = []

    def make(command: str, ready: bool) -> tuple[Supervisor, Processes, list[Child]]:
        processes = Processes(tmp_path, command)
        given_up: list[Child] = []
        supervisor = Supervisor(tmp_path, processes, lambda name: None if ready else "not ready",
                                given_up.append, policy=QUICK, tick_s=0.01)
        made.append((supervisor, processes))
        return supervisor, processes, given_up

    yield make
    for supervisor, processes in made:
        supervisor.stop()
        processes.kill_all()


def eventually(condition: Callable[[], object], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


def test_a_killed_process_is_restarted_and_the_log_says_why(make_supervisor, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, "loupe.supervisor")
    supervisor, processes, _ = make_supervisor("sleep 60", ready=True)
    child = Child("worker", processes("worker"), 0, signal.SIGTERM, 1.0)
    supervisor.watch(child)
    supervisor.start()
    first = child.process
    first.kill()
    eventually(lambda: child.process is not first and child.process.poll() is None)
    log = (tmp_path / "worker.log").read_text()
    assert f"supervisor: worker (pid {first.pid}) was killed by SIGKILL after" in log
    assert "restarting it in 0.01 s, at" in log
    eventually(lambda: "worker (pid %d) is ready again" % child.process.pid in caplog.text)


def test_a_forgotten_or_stopped_process_is_not_restarted(make_supervisor) -> None:
    supervisor, processes, _ = make_supervisor("sleep 60", ready=True)
    kept, left = (Child(name, processes(name), 0, signal.SIGTERM, 1.0) for name in ("kept", "left"))
    for child in (kept, left):
        supervisor.watch(child)
    supervisor.start()
    supervisor.forget("left")
    left.process.kill()
    time.sleep(0.3)  # thirty checks of the supervisor
    assert len(processes.started) == 2
    supervisor.stop()
    kept.process.kill()
    time.sleep(0.3)
    assert len(processes.started) == 2


def test_a_process_that_keeps_dying_before_ready_is_given_up_loudly(make_supervisor, caplog) -> None:
    supervisor, processes, given_up = make_supervisor("echo 'boom: bad setting'; exit 3", ready=False)
    child = Child("broken", subprocess.Popen(["sleep", "60"], start_new_session=True), 0, signal.SIGTERM, 1.0)
    processes.started.append(child.process)
    supervisor.watch(child)
    supervisor.start()
    child.process.kill()
    eventually(lambda: given_up == [child])
    time.sleep(0.3)
    assert len(processes.started) == 1 + 5  # the killed one, then five starts that exited before ready
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    message = error.getMessage()
    assert message.startswith("broken (pid ") and "exited with code 3" in message
    assert "5 exits in a row before it was ready" in message
    assert "boom: bad setting" in message  # the tail of its log


def test_a_process_that_cannot_be_started_counts_as_a_failed_start(tmp_path: Path, caplog) -> None:
    def cannot_start(name: str) -> subprocess.Popen[bytes]:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    given_up: list[Child] = []
    supervisor = Supervisor(tmp_path, cannot_start, lambda name: None, given_up.append, policy=QUICK, tick_s=0.01)
    child = Child("unstartable", subprocess.Popen(["true"], start_new_session=True), 0, signal.SIGTERM, 1.0)
    supervisor.watch(child)
    supervisor.start()
    try:
        eventually(lambda: given_up == [child])
    finally:
        supervisor.stop()
    [error] = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert error.startswith("unstartable could not be started ([Errno 11] Resource temporarily unavailable)")
    assert "5 exits in a row" in error
