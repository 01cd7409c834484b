"""Presigned URLs in bulk: one per image of an export, or per transfer of ingest, at the cost floor of S3's
Signature V4.

The minio SDK derives the signing key (four HMACs) and rebuilds the whole URL for each object: about 40 µs a
URL, which was most of a 10,000-image COCO export's conversion time (every image carries its `coco_url`).
Every URL of one batch shares its moment, expiry, credentials and host, so all of that is done once here, and
each URL costs one SHA-256 of its canonical request and one HMAC. The SDK signs one probe URL first, and its
scheme, host and path layout are reused, so the URLs have exactly the SDK's form (a test compares them).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from minio import Minio

from shared.settings import Settings

if TYPE_CHECKING:  # storage signs its own transfers with a Presigner
    from shared.storage import Storage

PROBE_KEY = "probe"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class Presigner:
    """Presigned URLs of one method on objects of one bucket (its real name), signed through `client` at one
    moment and valid `expires_s` from it."""

    def __init__(
        self, client: Minio, bucket: str, settings: Settings, method: str, expires_s: int, at: datetime | None = None
    ) -> None:
        at = (at or datetime.now(UTC)).replace(microsecond=0)
        self.method = method
        probe = urlsplit(
            client.get_presigned_url(method, bucket, PROBE_KEY, expires=timedelta(seconds=expires_s), request_date=at)
        )
        self.origin = f"{probe.scheme}://{probe.netloc}"
        self.host = probe.netloc
        self.prefix = probe.path.removesuffix(PROBE_KEY)  # "/<bucket>/", or "/" where the bucket is in the host
        day, moment = at.strftime("%Y%m%d"), at.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{day}/{settings.s3_region}/s3/aws4_request"
        self.query_head = (
            f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={quote(f'{settings.s3_access_key}/{scope}', safe='')}"
            f"&X-Amz-Date={moment}&X-Amz-Expires={expires_s}&X-Amz-SignedHeaders="
        )
        # Most URLs sign the host alone (every image of an export, every transfer): that part is built once.
        self.host_only = (self.query_head + "host", f"host:{self.host}\n", "host")
        self.signed_head = f"AWS4-HMAC-SHA256\n{moment}\n{scope}\n"
        key = ("AWS4" + settings.s3_secret_key).encode()
        for part in (day, settings.s3_region, "s3", "aws4_request"):
            key = _hmac(key, part)
        self.signing_key = key

    def __call__(self, key: str, headers: Mapping[str, str] | None = None) -> str:
        """The URL of `key`; a request to it must also send `headers` (lower-case names), exactly, which S3
        checks through the signature (and, for `x-amz-checksum-sha256`, against the body)."""
        path = self.prefix + quote(key)
        query, canonical_headers, names = self.signed_headers(headers) if headers else self.host_only
        canonical = f"{self.method}\n{path}\n{query}\n{canonical_headers}\n{names}\nUNSIGNED-PAYLOAD"
        to_sign = self.signed_head + hashlib.sha256(canonical.encode()).hexdigest()
        signature = hmac.new(self.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self.origin}{path}?{query}&X-Amz-Signature={signature}"

    def signed_headers(self, headers: Mapping[str, str]) -> tuple[str, str, str]:
        """The query, canonical headers and signed header names of a URL signed with `headers` beside the host."""
        lines = sorted({"host": self.host, **headers}.items())
        names = ";".join(name for name, _ in lines)
        return self.query_head + quote(names, safe=""), "".join(f"{name}:{value}\n" for name, value in lines), names


class PresignedGets(Presigner):
    """Presigned GET URLs for clients (the public endpoint) of objects of one bucket, all signed at one moment
    and valid `expires_s` from it."""

    def __init__(
        self, storage: Storage, settings: Settings, bucket: str, expires_s: int, at: datetime | None = None
    ) -> None:
        super().__init__(storage.public, storage.bucket(bucket), settings, "GET", expires_s, at)
