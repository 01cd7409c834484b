"""The seed products' real client SDKs, from PyPI, in a virtual environment of their own, and the flows
that drive them against a running Loupe.

The SDKs pin their own dependencies (pydantic, requests, numpy), which must not meet Loupe's, so they get
a venv of their own. It is made once per set of pins and kept under the user's cache folder; a venv that
failed halfway is never used, because it is built aside and renamed into place only when complete.

Each flow is a script in `flows/` that imports only its SDK and the standard library, reads where Loupe
is from its environment (`SEGMENTS_API_URL`, `HASTY_BASE_URL`, and the key), prints progress on stderr
and one JSON object of what it saw as its last line of stdout.

`python -m tests.compat.sdk --gateway URL --segments URL --key KEY` runs every flow against a stack
started by `make run` (`make compat` does it with the URLs `loupe up` prints).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SDK_PINS = ("segments-ai==1.33.0", "hasty==0.3.12")
FLOWS = Path(__file__).with_name("flows")
FLOW_TIMEOUT_S = 300.0


def sdk_python() -> Path:
    """The Python of a venv that has the pinned SDKs, made on first use."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loupe"
    venv = cache / f"sdk-venv-{hashlib.sha256(' '.join(SDK_PINS).encode()).hexdigest()[:12]}"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="sdk-venv-", dir=cache))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
        subprocess.run(
            [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *SDK_PINS],
            check=True,
        )
        # Scripts in a venv's bin/ name their interpreter by path: the venv works only where it was made.
        building.rename(venv)
    except OSError:
        if not python.exists():  # another run finished first: use theirs
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return python


class FlowFailed(AssertionError):
    pass


def run_flow(python: Path, name: str, env: dict[str, str]) -> dict[str, Any]:
    """Run `flows/<name>.py` with the SDK venv's `python`; what it printed last, as JSON."""
    done = subprocess.run(
        [str(python), str(FLOWS / f"{name}.py")],
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=FLOW_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise FlowFailed(f"flow {name} failed ({done.returncode}):\n{done.stderr[-6000:]}\n{done.stdout[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def flow_env(gateway_url: str, segments_url: str, key: str) -> dict[str, dict[str, str]]:
    """Each flow's environment: where Loupe's dialect for it is, and the key to send."""
    return {
        "segments_flow": {"SEGMENTS_API_URL": segments_url, "SEGMENTS_API_KEY": key, "LOUPE_GATEWAY_URL": gateway_url},
        "hasty_flow": {"HASTY_BASE_URL": f"{gateway_url.rstrip('/')}/hasty", "HASTY_API_KEY": key},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True, help="the gateway URL `loupe up` prints")
    parser.add_argument("--segments", required=True, help="the segments URL `loupe up` prints")
    parser.add_argument("--key", required=True, help="an admin API key (`loupe up` prints one)")
    args = parser.parse_args()
    python = sdk_python()
    for name, env in flow_env(args.gateway, args.segments, args.key).items():
        print(f"{name}: {json.dumps(run_flow(python, name, env))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
