"""The gateway's readiness includes the services behind it: an API call needs them, not just the gateway.

Each backend is asked its `service.info` command (every service answers it) with a short timeout,
all at once by `/readyz`. These are dependency checks, so `/readyz?scope=self`, which orchestrators
probe, leaves them out: one backend briefly without a replica must not take every gateway out of rotation.
"""

from __future__ import annotations

import functools

from proto import subjects
from proto.common import Empty
from shared.service import Runtime, Service

TIMEOUT_S = 1.0


def check_backends(service: Service) -> None:
    """Register one readiness check per backend, named after it."""
    for backend in subjects.WORKER_SERVICES:
        service.ready_check(backend, dependency=True)(functools.partial(_answers, backend))


async def _answers(backend: str, rt: Runtime) -> None:
    await rt.nats.request(subjects.info_command(backend), Empty(), timeout=TIMEOUT_S)
