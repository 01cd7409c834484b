"""Credentials of external buckets, kept encrypted: ingest's imports and stored buckets, so a resumed import can
read the bucket again, and inference's S3 pipeline sources, read at every poll.

Fernet (from `cryptography`: AES-128-CBC with HMAC-SHA256) is the well-kept standard choice; its key
is derived from LOUPE_SECRETS_KEY, so any long random string works as that setting.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from shared.errors import LoupeError, invalid
from shared.settings import Settings


def _fernet(settings: Settings, path: str = "$.secret_key") -> Fernet:
    if not settings.secrets_key:
        raise invalid(
            "this Loupe has no LOUPE_SECRETS_KEY, so it cannot store bucket credentials; ask the operator to set it",
            path=path,
        )
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(settings.secrets_key.encode()).digest()))


def seal(settings: Settings, access_key: str, secret_key: str, path: str = "$.secret_key") -> str:
    """`path`: the field an error names when this Loupe cannot seal (no LOUPE_SECRETS_KEY)."""
    return _fernet(settings, path).encrypt(f"{access_key}\n{secret_key}".encode()).decode()


def unseal(settings: Settings, token: str) -> tuple[str, str]:
    try:
        access_key, secret_key = _fernet(settings).decrypt(token.encode()).decode().split("\n", 1)
    except InvalidToken:
        raise LoupeError(
            "internal",
            "stored bucket credentials do not decrypt: LOUPE_SECRETS_KEY changed since they were stored; "
            "give the keys again (start the import again, or give the pipeline's `secret_key` again)",
        ) from None
    return access_key, secret_key
