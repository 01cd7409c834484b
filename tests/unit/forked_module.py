"""Run by tests/unit/test_forkserver.py through the services' parent: says what its process sees (numpy came
preloaded, and no thread with it), exits 3."""

import os
import sys

if __name__ == "__main__":
    preloaded = "numpy" in sys.modules
    print(os.environ["ONLY"], os.getcwd(), os.getsid(0) == os.getpid(), sys.argv[0], preloaded, sep="\n")
    print(len(os.listdir("/proc/self/task")))
    raise SystemExit(3)
