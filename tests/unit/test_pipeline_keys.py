"""An s3 source's keys: sealed when given, never stored or answered in the clear, kept across a change that
leaves the secret out while the endpoint and access key stay, and asked for again otherwise."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from proto.pipelines import HttpSource, S3Source
from services.inference.pipelines import sealed
from shared import credentials
from shared.errors import LoupeError
from shared.settings import Settings

SOURCE = S3Source(endpoint="s3.example.com", bucket="cams", prefix="gate/", access_key="AK", secret_key="s3cret")


def runtime(secrets_key: str = "a long random string") -> Any:
    return SimpleNamespace(settings=Settings(secrets_key=secrets_key))


def stored_row(rt: Any, source: S3Source) -> dict[str, Any]:
    kept, keys = sealed(rt, source, None)
    return {"source": msgspec.to_builtins(kept), "credentials": keys}


def test_given_keys_are_sealed_and_the_stored_source_has_no_secret() -> None:
    rt = runtime()
    kept, keys = sealed(rt, SOURCE, None)
    assert isinstance(kept, S3Source) and kept.secret_key == "" and kept.access_key == "AK"
    assert keys is not None and "s3cret" not in keys
    assert credentials.unseal(rt.settings, keys) == ("AK", "s3cret")
    assert sealed(rt, HttpSource(), None) == (HttpSource(), None)


def test_a_change_without_the_secret_keeps_the_sealed_keys_only_for_the_same_endpoint_and_access_key() -> None:
    rt = runtime()
    row = stored_row(rt, SOURCE)
    unchanged = msgspec.structs.replace(SOURCE, secret_key="", prefix="yard/", bucket="other")
    assert sealed(rt, unchanged, row)[1] == row["credentials"]
    for changed in ({"access_key": "BK"}, {"endpoint": "s3.elsewhere.com"}):
        with pytest.raises(LoupeError) as refused:
            sealed(rt, msgspec.structs.replace(unchanged, **changed), row, "$.yaml.source")
        assert refused.value.details["path"] == "$.yaml.source.secret_key"
    with pytest.raises(LoupeError) as never_given:
        sealed(rt, unchanged, None)
    assert never_given.value.details["path"] == "$.source.secret_key"


def test_a_server_without_a_secrets_key_refuses_s3_sources() -> None:
    with pytest.raises(LoupeError) as refused:
        sealed(runtime(secrets_key=""), SOURCE, None)
    assert refused.value.details["path"] == "$.source.secret_key" and "LOUPE_SECRETS_KEY" in refused.value.message
