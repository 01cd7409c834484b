"""Run by tests/unit/test_forkserver.py through the services' parent: says what its process sees, exits 3."""

import os
import sys

if __name__ == "__main__":
    print(os.environ["ONLY"], os.getcwd(), os.getsid(0) == os.getpid(), sys.argv[0], sep="\n")
    raise SystemExit(3)
