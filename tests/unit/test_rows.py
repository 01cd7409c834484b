"""shared/rows.py: database rows (and other contracts) into contract structs."""

import uuid

import asyncpg.pgproto.pgproto as pgproto
import msgspec
import pytest

from shared.rows import from_row


class Thing(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    owner_ids: list[str]
    name: str
    note: str | None = None


def test_ids_from_postgres_become_text_whatever_uuid_class_decoded_them():
    ident = uuid.uuid4()
    as_asyncpg_decodes_it = pgproto.UUID(str(ident))  # a subclass of uuid.UUID, not uuid.UUID itself
    thing = from_row(Thing, {"id": as_asyncpg_decodes_it, "owner_ids": [as_asyncpg_decodes_it, ident], "name": "x"})
    assert thing == Thing(id=str(ident), owner_ids=[str(ident), str(ident)], name="x")


def test_given_fields_win_absent_columns_keep_their_default_and_extra_columns_are_ignored():
    row = {"id": "a", "owner_ids": [], "name": "from the row", "other": 1}
    assert from_row(Thing, row, name="given") == Thing(id="a", owner_ids=[], name="given")


def test_a_required_field_without_a_column_is_an_error():
    with pytest.raises(TypeError):
        from_row(Thing, {"id": "a", "owner_ids": []})
