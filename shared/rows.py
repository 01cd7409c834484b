"""Database rows into contract structs, and the one-row look-up every service makes: a thing of a project,
or 404."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
import msgspec

from shared.errors import not_found
from shared.ids import parse_uuid

S = TypeVar("S", bound=msgspec.Struct)


def as_text(value: Any) -> Any:
    """Contracts carry ids as text; Postgres keeps them as uuid (and uuid[]), which asyncpg decodes to its own
    subclass of `uuid.UUID`."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if type(value) is list and value and isinstance(value[0], uuid.UUID):
        return [str(v) for v in value]
    return value


def from_row(struct: type[S], row: Mapping[str, Any], **given: Any) -> S:
    """`struct` with each field from the row's column of that name, ids as text, unless `given` names it. A
    field whose column the row lacks keeps its default (one without a default is a TypeError). The row may
    be any mapping: `msgspec.structs.asdict` of another contract makes one contract from another.

    On the catalog's registration path (two calls a sample), so it looks each field up once."""
    values = {}
    for name in struct.__struct_fields__:
        if name in given:
            continue
        try:
            values[name] = as_text(row[name])
        except KeyError:
            continue
    return struct(**values, **given)


def from_rows(struct: type[S], rows: Sequence[Mapping[str, Any]]) -> list[S]:
    """`from_row(struct, row)` of each row of one query (a page of search results), built by `msgspec.convert`
    rather than field by field in Python, which is most of what turning a page of rows into structs costs.
    Unlike `from_row` it checks each value against its field's type (a mismatch is a ValidationError)."""
    if not rows:
        return []
    columns = list(rows[0].keys())
    values = [dict(zip(columns, row.values(), strict=True)) for row in rows]
    for column in _id_columns(columns, values):
        for row_values in values:
            row_values[column] = as_text(row_values[column])
    # One call for the whole page takes a fifth less than one per row.
    return msgspec.convert(values, list[struct])  # type: ignore[valid-type]  # a type made at run time


def _id_columns(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """The columns of uuids (or uuid arrays): a column has one type on every row of a query, so its first
    value that is neither NULL nor an empty array says which."""
    found = []
    for column in columns:
        for row in rows:
            value = row[column]
            if value is None or value == []:
                continue
            if as_text(value) is not value:
                found.append(column)
            break
    return found


async def one_of_project(
    conn: asyncpg.Connection | asyncpg.Pool, query: str, noun: str, row_id: str, project_id: str
) -> asyncpg.Record:
    """The row `query` selects for the id (`$1`) and project (`$2`), or not_found naming the `noun`: a row of
    another project is no different from none, and so is a malformed id."""
    row = await conn.fetchrow(query, parse_uuid(row_id, noun), parse_uuid(project_id, "project"))
    if row is None:
        raise not_found(noun, row_id)
    return row
