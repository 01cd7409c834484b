"""Credentials of external buckets, kept encrypted so a resumed import can read the bucket again.

Fernet (from `cryptography`: AES-128-CBC with HMAC-SHA256) is the well-kept standard choice; its key
is derived from LOUPE_SECRETS_KEY, so any long random string works as that setting.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from shared.errors import LoupeError, invalid
from shared.settings import Settings


def _fernet(settings: Settings) -> Fernet:
    if not settings.secrets_key:
        raise invalid(
            "this Loupe has no LOUPE_SECRETS_KEY, so it cannot store bucket credentials; ask the operator to set it",
            path="$.secret_key",
        )
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(settings.secrets_key.encode()).digest()))


def seal(settings: Settings, access_key: str, secret_key: str) -> str:
    return _fernet(settings).encrypt(f"{access_key}\n{secret_key}".encode()).decode()


def unseal(settings: Settings, token: str) -> tuple[str, str]:
    try:
        access_key, secret_key = _fernet(settings).decrypt(token.encode()).decode().split("\n", 1)
    except InvalidToken:
        raise LoupeError(
            "internal",
            "stored bucket credentials do not decrypt: LOUPE_SECRETS_KEY changed since "
            "the import started; start the import again",
        ) from None
    return access_key, secret_key
