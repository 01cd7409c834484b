"""API keys: verification for the gateway, and the admin key made on first start."""

from __future__ import annotations

import hashlib
import logging
import secrets

from proto import subjects
from proto.catalog import VerifyApiKey
from proto.common import Caller
from shared.bus import RequestContext
from shared.errors import LoupeError
from shared.service import Answers, Runtime

ANSWERS = Answers()

log = logging.getLogger(__name__)

DEFAULT_ORG = "default"
KEY_PREFIX = "lp_"


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@ANSWERS(subjects.VERIFY_API_KEY)
async def verify(rt: Runtime, request: VerifyApiKey, ctx: RequestContext) -> Caller:
    row = await rt.db.fetchrow(
        "SELECT id, org_id, user_id, is_admin FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        key_hash(request.key),
    )
    if row is None:
        raise LoupeError("unauthenticated", "the API key is unknown or revoked; create a key or use the admin key")
    return Caller(
        org_id=str(row["org_id"]), key_id=str(row["id"]), user_id=str(row["user_id"] or ""), is_admin=row["is_admin"]
    )


async def bootstrap_admin_key(rt: Runtime) -> None:
    """Make sure an admin key exists: the configured one, or a generated one logged exactly once."""
    configured = rt.settings.bootstrap_admin_key
    async with rt.db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('loupe.catalog.bootstrap'))")
        org_id = await conn.fetchval(
            "INSERT INTO orgs (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            DEFAULT_ORG,
        )
        if configured:
            await conn.execute(
                "INSERT INTO api_keys (org_id, name, key_hash, is_admin) VALUES ($1, 'bootstrap admin', $2, true) "
                "ON CONFLICT (key_hash) DO NOTHING",
                org_id,
                key_hash(configured),
            )
            return
        if await conn.fetchval("SELECT count(*) FROM api_keys WHERE is_admin AND revoked_at IS NULL"):
            return
        key = new_key()
        await conn.execute(
            "INSERT INTO api_keys (org_id, name, key_hash, is_admin) VALUES ($1, 'admin', $2, true)",
            org_id,
            key_hash(key),
        )
    log.warning("created the admin API key (shown only now, store it): %s", key)
