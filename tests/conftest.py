"""One real local stack per test session: NATS, Postgres, SeaweedFS, Triton and the six services,
every server on free ports of 127.0.0.1, all stopped when the session ends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from loupe.stack import Stack, StackPorts
from shared.bus import Bus
from shared.settings import Settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("stack"), StackPorts.free()) as running:
        yield running


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    return stack.settings


@pytest.fixture(scope="session")
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    connected = await Bus.connect(settings, "tests")
    await connected.ensure_streams()
    yield connected
    await connected.close()


@pytest.fixture(scope="session")
async def api(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    """A client of the gateway that sends the admin key."""
    async with aiohttp.ClientSession(stack.gateway_url, headers={"Authorization": f"Bearer {stack.admin_key}"}) as s:
        yield s


@pytest.fixture(scope="session")
async def anonymous(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(stack.gateway_url) as s:
        yield s


@pytest.fixture
def unique() -> str:
    """A short token that keeps names, schemas and subjects of one test apart from the others."""
    return uuid.uuid4().hex[:10]
