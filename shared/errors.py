"""Typed errors that cross the bus and become HTTP problems at the gateway."""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

from proto.common import ErrorCode, ErrorReply

HTTP_STATUS: dict[str, int] = {
    "malformed": 400,
    "invalid": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "unavailable": 503,
    "internal": 500,
}


class LoupeError(Exception):
    """An error a caller can act on; `message` says what to fix."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.details = details

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_reply(self) -> ErrorReply:
        return ErrorReply(code=self.code, message=self.message, details=self.details)

    @classmethod
    def from_reply(cls, reply: ErrorReply) -> LoupeError:
        return cls(reply.code, reply.message, **reply.details)

    def __repr__(self) -> str:
        return f"LoupeError({self.code!r}, {self.message!r})"


def invalid(message: str, **details: Any) -> LoupeError:
    return LoupeError("invalid", message, **details)


def not_found(what: str, ident: str) -> LoupeError:
    return LoupeError(
        "not_found", f"{what} {ident!r} does not exist or is not visible to this API key", resource=what, id=ident
    )


def not_of_project(what: str, ident: object, path: str) -> LoupeError:
    """A body names, at `path`, a thing the project does not have."""
    return LoupeError(
        "not_found", f"{what} {str(ident)!r} is not a {what} of this project", path=path, resource=what, id=str(ident)
    )


def require_all(what: str, wanted: Sequence[object], found: Container[object], path: str) -> None:
    """Each of `wanted`, a body's list at `path`, is among `found`: else a 404 naming the first that is not."""
    for index, ident in enumerate(wanted):
        if ident not in found:
            raise not_of_project(what, ident, f"{path}[{index}]")


def check_version(given: int | None, current: int, what: str, path: str = "$.version", **details: Any) -> None:
    """Optimistic concurrency: a change that names the version it read (`given`) applies only to that version."""
    if given is not None and given != current:
        state = "does not exist yet" if current == 0 else f"is at version {current}"
        raise conflict(
            f"{what} {state}, not {given}: someone changed it since you read it; read it again and reapply your change",
            path=path,
            current_version=current,
            given_version=given,
            **details,
        )


def conflict(message: str, **details: Any) -> LoupeError:
    return LoupeError("conflict", message, **details)
