"""The one way ids in requests are parsed."""

from __future__ import annotations

import uuid

import pytest

from shared.errors import LoupeError
from shared.ids import parse_uuid


def test_a_uuid_parses_in_any_case() -> None:
    ident = uuid.uuid4()
    assert parse_uuid(str(ident).upper(), "sample") == ident


def test_a_malformed_id_in_a_url_path_names_nothing() -> None:
    with pytest.raises(LoupeError) as caught:
        parse_uuid("nope", "sample")
    assert caught.value.code == "not_found"


def test_a_malformed_id_in_a_body_is_the_callers_mistake_at_its_path() -> None:
    with pytest.raises(LoupeError) as caught:
        parse_uuid("", "dataset", path="$.dataset_ids[2]")
    assert (caught.value.code, caught.value.details["path"]) == ("invalid", "$.dataset_ids[2]")
    assert "is not the id of a dataset" in caught.value.message
