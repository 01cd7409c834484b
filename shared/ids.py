"""Ids in requests are UUIDs, parsed the same way everywhere."""

from __future__ import annotations

import uuid

from shared.errors import invalid, not_found


def parse_uuid(value: str, what: str, path: str | None = None) -> uuid.UUID:
    """`value` as a UUID. A malformed id from a URL path names nothing (404, `what` not found); one from
    a body or query (`path` given) is the caller's mistake (422 naming `path`)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        if path is None:
            raise not_found(what, value) from None
        raise invalid(f"{value!r} is not the id of a {what} (ids are UUIDs)", path=path) from None
