"""`shared.bus.decode`: what every JSON body and bus message goes through, hostile ones included."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from proto.common import Uuid
from shared.bus import decode, text_fault
from shared.errors import LoupeError


class Query(msgspec.Struct):
    sample_id: Uuid | None = None
    name: str = ""


def refusal(data: bytes | msgspec.Raw, kind: type = Any) -> LoupeError:
    with pytest.raises(LoupeError) as caught:
        decode(kind, data)
    return caught.value


@pytest.mark.parametrize(("data", "path"), [
    (rb'{"name": "a\u0000b"}', "$.name"),
    (rb'{"a": [1, "x", {"b": "\u0000"}]}', "$.a[2].b"),
    (rb'{"meta": {"ke\u0000y": 1}}', "$.meta[...]"),
    (rb'["ok", "\ud800"]', "$[1]"),
    (rb'{"a": {"b": "\udc00 trailing"}}', "$.a.b"),
])
def test_nul_and_lone_surrogates_are_invalid_at_their_path(data: bytes, path: str) -> None:
    error = refusal(data)
    assert (error.code, error.details["path"]) == ("invalid", path)
    assert path in error.message


def test_typed_fields_are_checked_too_and_raw_messages_as_well() -> None:
    assert refusal(rb'{"name": "\u0000"}', Query).details["path"] == "$.name"
    assert refusal(msgspec.Raw(rb'{"name": "\u0000"}'), Query).details["path"] == "$.name"


def test_text_that_only_spells_the_escape_and_real_pairs_pass() -> None:
    assert decode(Query, rb'{"name": "a \\u0000 b"}').name == "a \\u0000 b"
    assert decode(Query, rb'{"name": "\ud83d\ude00"}').name == "\U0001F600"


def test_deep_nesting_is_malformed_not_a_recursion_error() -> None:
    for depth in (5_000, 200_000):
        error = refusal(b"[" * depth + b"]" * depth)
        assert error.code == "malformed" and "nests too deeply" in error.message


def test_json_that_is_broken_elsewhere_stays_malformed() -> None:
    assert refusal(rb'{"name": "\ud800", ').code == "malformed"
    assert refusal(b"{not json").code == "malformed"


@pytest.mark.parametrize("bad", ["", "nope", "0" * 32, "{0b7c1f4e-2a6d-4c1e-9f3a-5d8e7b6a4c21}"])
def test_uuid_fields_take_only_canonical_uuids(bad: str) -> None:
    error = refusal(msgspec.json.encode({"sample_id": bad}), Query)
    assert (error.code, error.details["path"]) == ("invalid", "$.sample_id")
    assert decode(Query, b'{"sample_id": "0B7C1F4E-2A6D-4C1E-9F3A-5D8E7B6A4C21"}').sample_id


def test_uuid_fields_say_so_in_the_schema() -> None:
    assert msgspec.json.schema(Uuid)["format"] == "uuid"


@pytest.mark.parametrize(("text", "fault"), [("plain", None), ("naïve ✓", None), ("a\x00", "NUL"),
                                             ("\udcff", "surrogate")])
def test_text_fault(text: str, fault: str | None) -> None:
    found = text_fault(text)
    assert found is None if fault is None else fault in found
