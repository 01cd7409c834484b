"""The services' parent on its own, without a stack: it forks a module as ``python -m`` runs it, with the
environment, folder and log asked for, and reports its pid and exit status."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from loupe.forkserver import ServicesParent
from loupe.stack import REPO_ROOT
from shared.logs import new_request_id


def test_a_forked_module_runs_with_its_own_environment_folder_and_log_and_reports_its_exit(tmp_path: Path) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with theirs, open(tmp_path / "parent.log", "ab") as parent_log:
        parent = subprocess.Popen([sys.executable, "-m", "loupe.forkserver"], stdin=theirs.fileno(), stdout=parent_log,
                                  stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    services_parent = ServicesParent(ours)
    try:
        with open(tmp_path / "child.log", "ab") as log:
            child = services_parent.fork("forked", "tests.unit.forked_module", {"ONLY": "this"}, tmp_path, log)
        assert child.wait(timeout=30) == 3 and child.poll() == 3 and child.returncode == 3
        assert not Path(f"/proc/{child.pid}").exists(), "reaped by its parent"
        module = str(REPO_ROOT / "tests" / "unit" / "forked_module.py")
        lines = (tmp_path / "child.log").read_text().splitlines()
        assert lines == ["this", str(tmp_path), "True", module, "True", "1"], "numpy preloaded, no thread with it"
    finally:
        services_parent.close()
    assert parent.wait(timeout=30) == 0, (tmp_path / "parent.log").read_text()


def test_request_ids_made_after_a_fork_differ_from_the_parents() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    childs = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    # Prefix and sequence: same sequence after the fork, so the prefix must differ.
    assert new_request_id()[:12] != childs[:12]


def test_a_parent_that_is_gone_refuses_a_fork_with_an_oserror(tmp_path: Path) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.close()
    with open(tmp_path / "child.log", "ab") as log, pytest.raises(OSError, match="services-parent.log"):
        ServicesParent(ours).fork("forked", "tests.unit.forked_module", {}, tmp_path, log)
