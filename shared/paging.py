"""Keyset cursors: the sort key of a page's last row, handed to clients as an opaque string."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

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


# How the first key column's cursor value is cast (the others take their type from the comparison).
PG_TYPES = {datetime: "timestamptz", int: "bigint"}


async def keyset_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    query: str,
    args: Sequence[object],
    cursor: str | None,
    limit: int,
    *,
    key: tuple[str, ...] = ("created_at", "id"),
    types: tuple[type, ...] = (datetime, uuid.UUID),
    newest_first: bool = False,
) -> tuple[list[asyncpg.Record], str | None]:
    """A page of `query` (a SELECT that ends in its WHERE conditions, `args` being its $1…) in `key` order
    (by default the order rows were made), and the cursor of the next page (None on the last). The key's
    columns may name their table (`v.id`); the row holds each under its plain name."""
    after = decode_cursor(cursor, *types) or (None,) * len(key)
    first = len(args) + 1
    params = ", ".join(f"${first + i}" for i in range(len(key)))
    sign, order = ("<", "DESC") if newest_first else (">", "ASC")
    rows = await conn.fetch(
        f"{query} AND (${first}::{PG_TYPES[types[0]]} IS NULL OR ({', '.join(key)}) {sign} ({params})) "
        f"ORDER BY {', '.join(f'{column} {order}' for column in key)} LIMIT ${first + len(key)}",
        *args,
        *after,
        limit + 1,
    )
    page = rows[:limit]
    more = len(rows) > limit
    return page, encode_cursor(*(page[-1][column.split(".")[-1]] for column in key)) if more else None
