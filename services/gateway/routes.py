"""Every REST operation the gateway serves, gathered from the module of each area."""

from __future__ import annotations

from services.gateway import api_access
from services.gateway.operations import PROJECT_OPERATIONS, Operation

OPERATIONS: tuple[Operation, ...] = (*PROJECT_OPERATIONS, *api_access.OPERATIONS)
