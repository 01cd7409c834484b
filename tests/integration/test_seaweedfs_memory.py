"""SeaweedFS runs with a soft memory limit for Go's collector (docs/local-stack.md, SeaweedFS)."""

from pathlib import Path

from loupe.servers import SEAWEEDFS_ENV


def test_seaweedfs_runs_with_a_soft_memory_limit_and_the_runners_environment(stack) -> None:
    environ = Path(f"/proc/{stack.pids()['seaweedfs']}/environ").read_bytes().split(b"\0")
    assert b"GOMEMLIMIT=" + SEAWEEDFS_ENV["GOMEMLIMIT"].encode() in environ
    assert any(entry.startswith(b"PATH=") for entry in environ), "the rest of the runner's environment is kept"
