"""shared/rows.py: database rows (and other contracts) into contract structs."""

import uuid

import asyncpg.pgproto.pgproto as pgproto
import msgspec
import pytest

from shared.rows import from_row, from_rows


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


def test_rows_of_one_query_become_what_from_row_makes_of_each() -> None:
    ident, other = pgproto.UUID(str(uuid.uuid4())), uuid.uuid4()
    rows = [
        {"id": ident, "owner_ids": [], "name": "a", "note": None, "extra": 1},
        {"id": other, "owner_ids": [ident, other], "name": "b", "note": "n", "extra": 2},
        {"id": ident, "owner_ids": [other], "name": "c", "note": None, "extra": 3},
    ]
    made = from_rows(Thing, rows)
    assert made == [from_row(Thing, row) for row in rows]
    assert made[1] == Thing(id=str(other), owner_ids=[str(ident), str(other)], name="b", note="n")


def test_a_column_of_ids_null_in_the_first_rows_still_becomes_text() -> None:
    ident = pgproto.UUID(str(uuid.uuid4()))
    rows = [
        {"id": "a", "owner_ids": [], "name": "x", "note": None},
        {"id": "b", "owner_ids": [], "name": "y", "note": ident},
    ]
    assert [thing.note for thing in from_rows(Thing, rows)] == [None, str(ident)]


def test_no_rows_are_no_structs_and_a_value_of_the_wrong_type_is_an_error() -> None:
    assert from_rows(Thing, []) == []
    with pytest.raises(msgspec.ValidationError):
        from_rows(Thing, [{"id": "a", "owner_ids": [], "name": 1}])
    with pytest.raises(msgspec.ValidationError):
        from_rows(Thing, [{"id": "a", "owner_ids": []}])
