"""shared.storage against the real S3 server, and shared.db's migrations against the real Postgres."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncpg
import msgspec
import pytest

from shared import db
from shared import storage as storage_module
from shared.settings import Settings
from shared.storage import ObjectMissing, Storage, StorageError


async def test_buckets_bytes_and_presigned_urls(settings: Settings, unique: str) -> None:
    storage = Storage(msgspec.structs.replace(settings, bucket_prefix=f"t{unique}-"))
    await storage.ensure_buckets(("media", "thumbs"))
    await storage.ensure_buckets(("media",))  # a second start finds them there
    await storage.put_bytes("media", "a/b.txt", b"hello", "text/plain")
    assert await storage.get_bytes("media", "a/b.txt") == b"hello"
    assert await storage.exists("media", "a/b.txt") and not await storage.exists("media", "nope")

    async with aiohttp.ClientSession() as http:
        async with http.get(storage.presigned_get("media", "a/b.txt", expires_s=60)) as response:
            assert response.status == 200 and await response.read() == b"hello"
        async with http.put(storage.presigned_put("thumbs", "up.bin", expires_s=60), data=b"\x00\x01") as response:
            assert response.status == 200
        async with http.get(storage.presigned_get("media", "a/b.txt").replace("Signature=", "Signature=0")) as response:
            assert response.status == 403
    assert await storage.get_bytes("thumbs", "up.bin") == b"\x00\x01"
    with pytest.raises(ObjectMissing):
        await storage.get_bytes("thumbs", "never-put")
    with pytest.raises(ValueError, match="unknown bucket"):
        storage.bucket("nothing")
    await storage.close()


@pytest.mark.parametrize("single_put_max", [storage_module.SINGLE_PUT_MAX_BYTES, 1024**2])
async def test_a_file_is_uploaded_whole_in_one_put_or_in_parts_above_the_limit(
    settings: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, single_put_max: int
) -> None:
    monkeypatch.setattr(storage_module, "SINGLE_PUT_MAX_BYTES", single_put_max)
    storage = Storage(msgspec.structs.replace(settings, bucket_prefix=f"t{unique}-"))
    await storage.ensure_buckets(("releases",))
    path = tmp_path / "export.json"
    path.write_bytes(bytes(range(256)) * 24_000)  # 6 MB: more than one of the SDK's 5 MiB parts
    await storage.put_file("releases", "exports/export.json", path, "application/json")
    data, headers = await storage.get_with_headers("releases", "exports/export.json")
    assert data == path.read_bytes() and headers["Content-Type"] == "application/json"
    await storage.close()


async def test_a_refused_transfer_says_what_s3_answered(settings: Settings, unique: str) -> None:
    storage = Storage(msgspec.structs.replace(settings, bucket_prefix=f"t{unique}-"))
    await storage.ensure_buckets(("media",))
    await storage.put_bytes("media", "a.txt", b"hello", "text/plain")
    wrong = Storage(msgspec.structs.replace(settings, bucket_prefix=f"t{unique}-", s3_secret_key="not-the-secret"))
    with pytest.raises(StorageError, match=rf"PUT t{unique}-media/b\.txt failed: HTTP 403 SignatureDoesNotMatch: "):
        await wrong.put_bytes("media", "b.txt", b"hello", "text/plain")
    with pytest.raises(StorageError, match=rf"GET t{unique}-media/a\.txt failed: HTTP 403 SignatureDoesNotMatch: "):
        await wrong.get_bytes("media", "a.txt")
    await wrong.close()
    await storage.close()


async def test_concurrent_starts_apply_each_migration_once(settings: Settings, unique: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "0002_second.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    schema = f"mig_{unique}"

    async def start() -> list[str]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await db.migrate(conn, schema, {"shared": db.SHARED_MIGRATIONS, "service": tmp_path})
        finally:
            await conn.close()

    results = await asyncio.gather(*(start() for _ in range(4)))
    assert sorted(len(applied) for applied in results) == [0, 0, 0, 3]
    conn = await asyncpg.connect(settings.database_url)
    try:
        versions = await conn.fetch(f'SELECT source, version FROM "{schema}".schema_migrations ORDER BY 1, 2')
        assert [(r["source"], r["version"]) for r in versions] == [("service", 1), ("service", 2), ("shared", 1)]
        (tmp_path / "0003_broken.sql").write_text("ALTER TABLE nowhere ADD COLUMN x int;")
        with pytest.raises(asyncpg.UndefinedTableError):
            await db.migrate(conn, schema, {"service": tmp_path})
        assert await conn.fetchval(f'SELECT max(version) FROM "{schema}".schema_migrations') == 2
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()
