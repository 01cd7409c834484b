"""Making the buckets at start, when replicas of a service start at the same moment."""

from __future__ import annotations

import pytest
from minio.error import S3Error

from shared import storage as storage_module
from shared.settings import Settings
from shared.storage import Storage


class RacingClient:
    """A client whose make_bucket loses a race with another replica's, as SeaweedFS answers it: NoSuchBucket while
    the other replica's bucket is half made; the bucket exists after `appears_after` looks."""

    def __init__(self, appears_after: int) -> None:
        self.looks = 0
        self.appears_after = appears_after

    def make_bucket(self, bucket: str) -> None:
        raise S3Error(None, "NoSuchBucket", "The specified bucket does not exist", bucket, "r", "h")  # type: ignore[arg-type]

    def bucket_exists(self, bucket: str) -> bool:
        self.looks += 1
        return self.looks > self.appears_after


def test_a_bucket_another_replica_is_making_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = Storage(Settings())
    monkeypatch.setattr(storage, "client", RacingClient(appears_after=2))
    storage._ensure_bucket("loupe-media")
    assert storage.client.looks == 3


def test_a_bucket_that_never_appears_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = Storage(Settings())
    monkeypatch.setattr(storage, "client", RacingClient(appears_after=10**9))
    monkeypatch.setattr(storage_module, "BUCKET_APPEARS_S", 0.1)
    with pytest.raises(S3Error, match="NoSuchBucket"):
        storage._ensure_bucket("loupe-media")
