"""One real local stack per test session: NATS, Postgres, SeaweedFS, Triton and the six services,
every server on free ports of 127.0.0.1, all stopped when the session ends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest

from loupe.stack import Stack, StackPorts
from tests import helpers
from tests.external_s3 import ExternalS3
from tests.media_server import MediaServer
from shared.bus import Bus
from shared.settings import Settings


@pytest.fixture(scope="session")
def media_server() -> Iterator[MediaServer]:
    """An HTTP server on 127.0.0.1 that URL-import tests fetch images from."""
    with MediaServer() as server:
        yield server


@pytest.fixture(scope="session")
def external_s3_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalS3]:
    """A second S3 server with its port held for the session, so that the stack may allow it; it starts only
    for the tests that ask for `external_s3`."""
    with ExternalS3(tmp_path_factory.mktemp("external-s3")) as server:
        yield server


@pytest.fixture(scope="session")
def external_s3(external_s3_port: ExternalS3) -> ExternalS3:
    """A user's own S3 (SeaweedFS on 127.0.0.1), to import buckets from."""
    external_s3_port.start()
    return external_s3_port


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, media_server: MediaServer, external_s3_port: ExternalS3
          ) -> Iterator[Stack]:
    ports = StackPorts.free()
    overrides = {
        # URL and bucket imports may reach the test's media server (also under a public-looking name) and the
        # external S3 — nothing else on 127.0.0.1. The stack's own S3 is allowed too, on purpose: Loupe must
        # refuse its own storage even where LOUPE_FETCH_ALLOW lets an import reach it.
        "fetch_allow": f"127.0.0.1:{media_server.port},127.0.0.1:{external_s3_port.port},127.0.0.1:{ports.s3}",
        "fetch_hosts": f"{MediaServer.PUBLIC_NAME}=127.0.0.1",
        # A job whose process was killed comes back after this; live ones keep extending it.
        "job_ack_wait_s": 6.0,
        # Work-queue locks expire while a test waits for it.
        "label_lock_s": 2.0,
        # Pipelines read and write folders only under these.
        "pipeline_folders": str(tmp_path_factory.mktemp("pipelines")),
        # The pipeline tests start a broker on this free port (tests/integration/test_pipelines.py).
        "pipeline_mqtt_url": f"mqtt://127.0.0.1:{StackPorts.free().s3}",
    }
    with Stack(tmp_path_factory.mktemp("stack"), ports, overrides=overrides) as running:
        helpers.database_url = running.settings.database_url
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
async def user_client(stack: Stack, api: aiohttp.ClientSession
                      ) -> AsyncIterator[Callable[..., Awaitable[tuple[str, aiohttp.ClientSession]]]]:
    """Makes a user of the default organisation and a gateway client with that user's key;
    `user_client(project_id, "labeler")` also gives them that role on the project."""
    sessions: list[aiohttp.ClientSession] = []

    async def make(project_id: str | None = None, role: str | None = None, *, is_admin: bool = False
                   ) -> tuple[str, aiohttp.ClientSession]:
        token = uuid.uuid4().hex[:10]
        async with api.post("/v1/users", json={"name": f"user {token}", "email": f"{token}@example.com",
                                               "is_admin": is_admin}) as response:
            assert response.status == 201, await response.text()
            user = await response.json()
        async with api.post(f"/v1/users/{user['id']}/api-keys", json={"name": "tests"}) as response:
            assert response.status == 201, await response.text()
            key = (await response.json())["key"]
        if project_id is not None and role is not None:
            async with api.put(f"/v1/projects/{project_id}/members/{user['id']}", json={"role": role}) as response:
                assert response.status == 200, await response.text()
        session = aiohttp.ClientSession(stack.gateway_url, headers={"Authorization": f"Bearer {key}"})
        sessions.append(session)
        return user["id"], session

    yield make
    for session in sessions:
        await session.close()


@pytest.fixture
def unique() -> str:
    """A short token that keeps names, schemas and subjects of one test apart from the others."""
    return uuid.uuid4().hex[:10]
