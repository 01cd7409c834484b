"""Postgres and NATS run with the settings that keep their memory down (docs/local-stack.md, How each
server runs, and why); SeaweedFS's are in test_seaweedfs_memory.py."""

import asyncio
from pathlib import Path

import asyncpg

from loupe.servers import NATS_ENV, POSTGRES_ENV, POSTGRES_SETTINGS


def environment(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


def test_postgres_runs_with_its_settings_and_a_fixed_malloc_threshold(stack) -> None:
    async def shown() -> dict[str, str]:
        conn = await asyncpg.connect(stack.settings.database_url)
        try:
            return {name: await conn.fetchval(f"SHOW {name}") for name in POSTGRES_SETTINGS}
        finally:
            await conn.close()

    assert asyncio.run(shown()) == POSTGRES_SETTINGS
    environ = environment(stack.pids()["postgres"])
    assert {f"{name}={value}".encode() for name, value in POSTGRES_ENV.items()} <= set(environ)
    assert any(entry.startswith(b"PATH=") for entry in environ), "the rest of the runner's environment is kept"


def test_nats_runs_with_a_soft_memory_limit_and_the_runners_environment(stack) -> None:
    environ = environment(stack.pids()["nats"])
    assert {f"{name}={value}".encode() for name, value in NATS_ENV.items()} <= set(environ)
    assert any(entry.startswith(b"PATH=") for entry in environ), "the rest of the runner's environment is kept"
