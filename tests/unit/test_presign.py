"""Bulk presigned URLs (a client's GETs, storage's own transfers) are exactly what the minio SDK signs, for any
endpoint layout and key."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.presign import PresignedGets, Presigner
from shared.settings import Settings
from shared.storage import Storage

AT = datetime(2026, 12, 7, 8, 30, 15, tzinfo=UTC)


SETTINGS = pytest.mark.parametrize(
    "settings",
    [
        Settings(s3_endpoint="127.0.0.1:9000", s3_access_key="loupe", s3_secret_key="s3cr3t/+="),
        Settings(s3_endpoint="minio:9000", s3_public_endpoint="s3.example.com", s3_secure=True, s3_region="eu-west-1"),
    ],
)
KEYS = pytest.mark.parametrize(
    "key", ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "project/exports/a b+c~ü.json", "x"]
)


@SETTINGS
@KEYS
def test_urls_equal_the_sdks(settings: Settings, key: str) -> None:
    storage = Storage(settings)
    expected = storage.public.presigned_get_object(
        storage.bucket("media"), key, expires=timedelta(days=7), request_date=AT
    )
    assert PresignedGets(storage, settings, "media", 7 * 24 * 3600, at=AT)(key) == expected


@SETTINGS
@KEYS
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_transfer_urls_equal_the_sdks(settings: Settings, key: str, method: str) -> None:
    storage = Storage(settings)
    bucket = storage.bucket("staging")
    expected = storage.client.get_presigned_url(method, bucket, key, expires=timedelta(minutes=10), request_date=AT)
    assert Presigner(storage.client, bucket, settings, method, 600, at=AT)(key) == expected


def test_transfers_reuse_a_signer_for_a_minute() -> None:
    storage = Storage(Settings())
    first = storage._transfer_url("PUT", "media", "a")
    assert storage._transfer_url("PUT", "media", "a") == first
    assert storage._transfer_url("GET", "media", "a") != first


def test_headers_a_request_must_send_are_signed_beside_the_host() -> None:
    storage = Storage(Settings())
    sign = Presigner(storage.client, storage.bucket("media"), Settings(), "PUT", 600, at=AT)
    headers = {"x-amz-checksum-sha256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", "content-type": "image/jpeg"}
    url = sign("k", headers)
    assert "&X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-checksum-sha256&" in url
    assert url.split("X-Amz-Signature=")[1] != sign("k").split("X-Amz-Signature=")[1]
    assert sign("k", {**headers, "content-type": "text/html"}) != url, "each header's value is signed"
