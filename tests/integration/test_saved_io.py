"""Saved sources and sinks on the real stack: organisation admins keep them, any key of the organisation reads
them; a pipeline that uses them carries their configs and follows their changes (restarting), until it is
given configs of its own; one in use cannot be deleted."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from loupe import synth
from loupe.stack import Stack
from tests.helpers import call, eventually, train

pytestmark = pytest.mark.timeout(600)

SOURCES = "/v1/pipeline-sources"
SINKS = "/v1/pipeline-sinks"


@pytest.fixture(scope="module")
async def project(stack: Stack) -> str:
    """A project with an active (tiny) detector, so that it can have pipelines."""
    loaded = await synth.load(
        synth.generate(32, size=64, seed=41), stack.gateway_url, stack.admin_key, name="saved io", progress=False
    )
    return loaded.project_id


@pytest.fixture(scope="module")
async def trained(api: aiohttp.ClientSession, project: str) -> str:
    await train(api, project)
    return project


def folder(stack: Stack, name: str) -> str:
    path = Path(stack.settings.pipeline_folders) / name
    path.mkdir(exist_ok=True)
    return str(path)


async def test_admins_keep_saved_sources_and_sinks_and_members_read_them(
    api: aiohttp.ClientSession,
    stack: Stack,
    user_client: Callable[..., Awaitable[tuple[str, aiohttp.ClientSession]]],
) -> None:
    path = folder(stack, f"cam-{uuid.uuid4().hex[:6]}")
    source = await call(api, "POST", SOURCES, 201, json={"name": "cam", "source": {"kind": "folder", "path": path}})
    assert source["source"] == {"kind": "folder", "path": path, "poll_s": 1.0} and source["pipelines"] == []
    sink = await call(api, "POST", SINKS, 201, json={"name": "out", "sink": {"kind": "nats", "subject": "cams.out"}})

    _, member = await user_client()
    assert source["id"] in [s["id"] for s in (await call(member, "GET", SOURCES))["items"]]
    assert (await call(member, "GET", f"{SINKS}/{sink['id']}"))["sink"]["subject"] == "cams.out"
    refused = await call(member, "POST", SOURCES, 403, json={"name": "x", "source": {"kind": "http"}})
    assert "admin" in refused["detail"]
    await call(member, "PATCH", f"{SINKS}/{sink['id']}", 403, json={"name": "mine"})

    renamed = await call(api, "PATCH", f"{SOURCES}/{source['id']}", json={"name": "gate cam"})
    assert renamed["name"] == "gate cam" and renamed["source"] == source["source"]
    await call(api, "DELETE", f"{SOURCES}/{source['id']}", 204)
    await call(api, "GET", f"{SOURCES}/{source['id']}", 404)
    await call(api, "DELETE", f"{SINKS}/{sink['id']}", 204)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "source": {"kind": "folder", "path": "/etc"}}, "$.source.path"),
        ({"name": "x", "source": {"kind": "camera"}}, "$.source"),
        ({"name": "", "source": {"kind": "http"}}, "$.name"),
        (
            {
                "name": "x",
                "source": {
                    "kind": "s3",
                    "endpoint": "s3.example.com",
                    "bucket": "frames",
                    "access_key": "key",
                    "secret_key": "s",
                },
            },
            "$.source.kind",
        ),
    ],
)
async def test_a_bad_saved_source_is_refused_naming_the_field(
    api: aiohttp.ClientSession, body: dict, field: str
) -> None:
    refused = await call(api, "POST", SOURCES, 422, json=body)
    assert refused["path"].startswith(field), refused


async def test_a_bad_saved_sink_is_refused_naming_the_field(api: aiohttp.ClientSession) -> None:
    refused = await call(
        api, "POST", SINKS, 422, json={"name": "x", "sink": {"kind": "webhook", "url": "http://10.0.0.1/"}}
    )
    assert refused["path"] == "$.sink.url", refused


async def test_a_pipeline_follows_the_saved_configs_it_uses_until_it_is_given_its_own(
    api: aiohttp.ClientSession, stack: Stack, trained: str
) -> None:
    base = f"/v1/projects/{trained}/pipelines"
    source = await call(api, "POST", SOURCES, 201, json={"name": "push", "source": {"kind": "http"}})
    first = {"kind": "nats", "subject": f"tests.saved.{uuid.uuid4().hex[:8]}"}
    sink = await call(api, "POST", SINKS, 201, json={"name": "bus", "sink": first})
    pipeline = await call(
        api,
        "POST",
        base,
        201,
        json={
            "name": "saved",
            "model": {"family": "detection"},
            "source": {"kind": "folder", "path": folder(stack, "own")},
            "sinks": [{"kind": "nats", "subject": "tests.saved.own"}],
            "enabled": True,
        },
    )
    one = f"{base}/{pipeline['id']}"

    used = await call(api, "PUT", f"{one}/saved", json={"source_id": source["id"], "sink_ids": [sink["id"]]})
    assert used == {"pipeline_id": pipeline["id"], "source_id": source["id"], "sink_ids": [sink["id"]]}
    current = await call(api, "GET", one)
    assert current["source"] == {"kind": "http"} and current["sinks"] == [first]
    assert (await call(api, "GET", f"{SINKS}/{sink['id']}"))["pipelines"] == [pipeline["id"]]
    refused = await call(api, "DELETE", f"{SINKS}/{sink['id']}", 409)
    assert pipeline["id"] in refused["detail"]

    # A change of the saved sink reaches the pipeline, which starts again with it.
    second = {"kind": "nats", "subject": f"tests.saved.{uuid.uuid4().hex[:8]}"}
    await call(api, "PATCH", f"{SINKS}/{sink['id']}", json={"sink": second})
    assert (await call(api, "GET", one))["sinks"] == [second]

    async def running() -> bool:
        assert (await call(api, "GET", one))["state"] == "running"
        return True

    await eventually(running, timeout=120, interval=0.2)

    # Given a sink of its own, the pipeline no longer follows the saved one.
    own = {"kind": "nats", "subject": "tests.saved.mine"}
    await call(api, "PATCH", one, json={"sinks": [own]})
    assert (await call(api, "GET", f"{one}/saved"))["sink_ids"] == [None]
    await call(api, "PATCH", f"{SINKS}/{sink['id']}", json={"sink": first})
    assert (await call(api, "GET", one))["sinks"] == [own]
    assert (await call(api, "GET", f"{SINKS}/{sink['id']}"))["pipelines"] == []
    await call(api, "DELETE", f"{SINKS}/{sink['id']}", 204)

    refused = await call(api, "PUT", f"{one}/saved", 404, json={"source_id": str(uuid.uuid4())})
    assert refused["path"] == "$.source_id", refused
    await call(api, "DELETE", one, 204)
    await call(api, "DELETE", f"{SOURCES}/{source['id']}", 204)
