"""How json and jsonb values read back from Postgres become Python."""

import math

from shared.db import decode_json


def test_json_values_decode_to_plain_python():
    assert decode_json('{"weather": "rainy", "camera": {"iso": 100, "f": 2.8}, "tags": [1, null, true]}') == {
        "weather": "rainy",
        "camera": {"iso": 100, "f": 2.8},
        "tags": [1, None, True],
    }
    assert decode_json("1" + "0" * 40) == 10**40  # jsonb prints numerics in full


def test_what_msgspec_refuses_decodes_as_json_loads_would():
    assert decode_json("1e400") == math.inf  # a json (not jsonb) value may hold it
    assert decode_json('"\\ud800"') == "\ud800"
