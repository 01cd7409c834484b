"""Typed errors that cross the bus and become HTTP problems at the gateway."""

from __future__ import annotations

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


def conflict(message: str, **details: Any) -> LoupeError:
    return LoupeError("conflict", message, **details)
