"""Images an organisation has stored, without storing them: for tests of samples, labels and releases, which need
samples of images but never their pixels.

The catalog makes a sample of an image (`content_hash`) only for an organisation that stored it, which ingest
records in its `org_media` table as it reads the image. These tests write that record themselves, in the test
stack's Postgres, as ingest would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import aiohttp
import asyncpg

database_url = ""  # the test stack's; tests/conftest.py sets it once the stack runs


async def own(client: aiohttp.ClientSession, hashes: Iterable[str]) -> None:
    """Record the images as stored by the organisation of `client`'s key."""
    async with client.get("/v1/me") as response:
        assert response.status == 200, await response.text()
        org_id = (await response.json())["org_id"]
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("INSERT INTO ingest.org_media (org_id, sha256) SELECT $1, unnest($2::text[]) "
                         "ON CONFLICT DO NOTHING", uuid.UUID(org_id), list(hashes))
    finally:
        await db.close()
