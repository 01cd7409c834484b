"""Keyset cursors: the sort key of a page's last row, handed to clients as an opaque string."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.errors import invalid

PARSERS: dict[type, Callable[[str], Any]] = {int: int, uuid.UUID: uuid.UUID, datetime: datetime.fromisoformat, str: str}


def encode_cursor(*key: object) -> str:
    text = "|".join(k.isoformat() if isinstance(k, datetime) else str(k) for k in key)
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_cursor(cursor: str | None, *types: type) -> tuple[Any, ...] | None:
    """The key `encode_cursor` made, each part parsed as `types` says; None for no cursor."""
    if not cursor:
        return None
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        if len(parts) != len(types):
            raise ValueError(cursor)
        return tuple(PARSERS[kind](part) for kind, part in zip(types, parts, strict=True))
    except (ValueError, UnicodeDecodeError):
        raise invalid(
            "cursor is not one this API returned; pass next_cursor from the previous page unchanged", path="$.cursor"
        ) from None
