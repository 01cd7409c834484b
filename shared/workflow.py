"""Status workflows as tables: which status may follow which, and the least project role that may
take each step. Samples (catalog) and labels (annotation) each have one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from proto.catalog import Role, role_at_least
from shared.errors import LoupeError, conflict

Status = TypeVar("Status", bound=str)  # a workflow's own Literal of statuses
Transitions = Mapping[Status, Mapping[Status, Role]]  # current status → {allowed next status: least role}


def check_transition(
    table: Transitions[Status], what: str, current: Status, requested: Status, role: str | None, path: str
) -> None:
    """Refuse a step the table does not allow (409), or one the caller's role is too weak for (403).

    `what` names the thing in messages ("a sample"). `role` is the caller's project role as the
    gateway set it; None (a command sent on the bus by another service, not through the gateway) is
    trusted like a manager.
    """
    if requested == current:
        return
    allowed = table[current]
    if requested not in allowed:
        raise conflict(
            f"{what} in status {current} cannot move to {requested}; allowed next: {', '.join(allowed)}",
            path=path,
            current=current,
            requested=requested,
            allowed=list(allowed),
        )
    needed = allowed[requested]
    if role is not None and not role_at_least(role, needed):
        raise LoupeError(
            "forbidden",
            f"moving {what} from {current} to {requested} needs the {needed} role; you are {role}",
            path=path,
            role=role,
            needed=needed,
        )
