"""S3-style POST policies for Segments' asset upload, signed and checked by Loupe itself.

`POST /assets/` hands the SDK the eight form fields an S3 presigned POST has. The policy (base64 JSON of
an expiry and conditions) is signed with HMAC-SHA256 under a key derived from `LOUPE_SECRETS_KEY`, so the
upload route, which takes no API key, can trust every field it signed: the object key (which holds the
organisation and the asset's uuid), the content type, and the size range.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from shared.errors import LoupeError

ALGORITHM = "AWS4-HMAC-SHA256"
EXPIRES = timedelta(hours=1)
SIGNED_FIELDS = ("acl", "Content-Type", "key", "x-amz-algorithm", "x-amz-credential", "x-amz-date")


def _key(secret: str) -> bytes:
    if not secret:
        raise LoupeError("unavailable", "asset uploads need LOUPE_SECRETS_KEY to be set on the gateway")
    return hashlib.sha256(b"loupe segments asset policy\x00" + secret.encode()).digest()


def sign(secret: str, policy: str) -> str:
    return hmac.new(_key(secret), policy.encode(), hashlib.sha256).hexdigest()


def post_fields(secret: str, key: str, content_type: str, max_bytes: int, now: datetime) -> dict[str, str]:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    fields = {
        "acl": "private",
        "Content-Type": content_type,
        "key": key,
        "x-amz-algorithm": ALGORITHM,
        "x-amz-credential": f"loupe/{now:%Y%m%d}/loupe/s3/aws4_request",
        "x-amz-date": stamp,
    }
    document = {
        "expiration": (now + EXPIRES).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": [{name: fields[name]} for name in SIGNED_FIELDS] + [["content-length-range", 1, max_bytes]],
    }
    policy = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
    return {**fields, "policy": policy, "x-amz-signature": sign(secret, policy)}


def check(secret: str, form: dict[str, str], size: int, now: datetime) -> None:
    """The form is one Loupe signed, not expired, and the file fits its conditions; else 403 naming why."""
    policy = form.get("policy", "")
    if not hmac.compare_digest(sign(secret, policy), form.get("x-amz-signature", "")):
        raise _refused("the policy's signature does not match; ask POST /assets/ for a new one", "x-amz-signature")
    document = json.loads(base64.b64decode(policy))
    expiration = datetime.strptime(document["expiration"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
    if now >= expiration:
        raise _refused(f"the policy expired at {document['expiration']}; ask POST /assets/ for a new one", "policy")
    for condition in document["conditions"]:
        if isinstance(condition, dict):
            ((name, value),) = condition.items()
            if form.get(name) != value:
                raise _refused(f"field {name} must be {value!r} as the policy says", name)
        elif condition[0] == "content-length-range" and not condition[1] <= size <= condition[2]:
            raise _refused(f"the file is {size} bytes; the policy allows {condition[1]} to {condition[2]}", "file")


def _refused(message: str, field: str) -> LoupeError:
    return LoupeError("forbidden", message, path=field)
