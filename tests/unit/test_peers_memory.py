"""bench.peers' memory sampler: what it reads from /proc, and how it splits Pss."""

import subprocess
import sys
from pathlib import Path

from bench.peers import MemorySampler, kilobytes, process_trees


def test_kilobytes_reads_the_keys_asked_for_and_0_for_a_missing_one(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t   51912 kB\nPss_Anon:   333 kB\n")
    assert kilobytes(str(status), ["VmHWM", "Pss_Anon", "Pss_Shmem"]) == {"VmHWM": 51912, "Pss_Anon": 333, "Pss_Shmem": 0}


def test_the_pss_parts_add_up_to_the_pss_of_each_process_and_the_total() -> None:
    # A process of its own: the sampler follows descendants, and pytest's may include a whole test stack.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with MemorySampler({"this test": child.pid}) as sampler:
            pass
    finally:
        child.kill()
        child.wait()
    rows = sampler.rows()
    for row in rows.values():
        assert row["processes"] == 1 and row["VmHWM_MB"] >= row["Pss_MB"] > 0
        assert abs(row["anon_MB"] + row["file_MB"] + row["shmem_MB"] - row["Pss_MB"]) < 0.1
    assert rows["total"] == rows["this test"]


def test_a_root_under_another_root_is_counted_as_itself() -> None:
    # As a service under the services' parent it was forked from.
    parent = subprocess.Popen([sys.executable, "-c", CHILD_AND_WAIT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert parent.stdin is not None and parent.stdout is not None
    with parent:
        child = int(parent.stdout.readline())
        assert process_trees({"parent": parent.pid, "child": child}) == {parent.pid: "parent", child: "child"}
        assert process_trees({"parent": parent.pid}) == {parent.pid: "parent", child: "parent"}
        parent.stdin.close()  # both end


# A child that sleeps until its stdin (shared with the parent) closes, and the parent that waits for it.
CHILD_AND_WAIT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"])
print(child.pid, flush=True)
child.wait()
"""
