"""An idle service holds only what it needs to answer: the heavy libraries of training runs, video pipelines
and MQTT sinks are imported when first used (docs/local-stack.md, Memory)."""

import subprocess
import sys

import pytest

from loupe.stack import REPO_ROOT


@pytest.mark.parametrize(
    ("service", "deferred"),
    [
        ("training", ("numpy", "onnx", "PIL", "pycocotools", "torch")),
        ("inference", ("av", "aiomqtt", "grpc", "tritonclient.grpc")),
    ],
)
def test_a_service_imports_no_library_it_uses_only_at_work(service: str, deferred: tuple[str, ...]) -> None:
    probe = f"import sys, services.{service}.service; print(' '.join(m for m in {deferred!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
