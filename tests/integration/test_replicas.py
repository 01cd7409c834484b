"""Two replicas of each worker service, as Kubernetes would run two pods of each, on one NATS, Postgres and S3:
every replica is supervised on a port of its own, jobs are claimed once, so no job's effect is applied twice, and
NATS and Postgres killed and restarted under them are ridden out.

These run on a stack of their own (tests/replica_stack.py), not the session stack.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import signal
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from loupe.stack import Stack, StackError, StackPorts, replica_names
from proto.subjects import WORKER_SERVICES
from tests.helpers import FINISHED, call, create, dataset, eventually, finished, wait_run
from tests.media_server import MediaServer, jpeg
from tests.replica_stack import image_hash, inbox_repeats, replica_stack, samples_by_hash, unpublished_events

REPLICAS = 2
IMPORTS, IMAGES_PER_IMPORT = 6, 20
LABEL_IMPORTS, IMAGES_PER_LABEL_IMPORT = 4, 3
RELEASES, EXPORT_FORMATS = 3, ("coco", "native")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory, media_server: MediaServer) -> Iterator[Stack]:
    with replica_stack(tmp_path_factory.mktemp("replicas"), media_server, REPLICAS, triton=False) as stack:
        yield stack


@pytest.fixture(scope="module")
async def admin(replicated: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {replicated.admin_key}"}
    async with aiohttp.ClientSession(replicated.gateway_url, headers=headers) as session:
        yield session


@pytest.fixture
async def db(replicated: Stack) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(replicated.settings.database_url)
    yield connection
    await connection.close()


async def ready(stack: Stack, name: str) -> bool:
    return await asyncio.to_thread(stack.service_problem, name) is None


async def restarted(stack: Stack, name: str, killed: int) -> bool:
    assert stack.pids().get(name) not in (None, killed)
    return await ready(stack, name)


async def test_every_replica_runs_on_a_port_of_its_own_and_is_supervised(replicated: Stack) -> None:
    expected = [name for service in WORKER_SERVICES for name in replica_names(service, REPLICAS)]
    assert expected[:2] == ["catalog", "catalog#2"]
    assert set(expected) | {"gateway"} <= set(replicated.pids())
    assert len(set(replicated.replica_ports.values())) == len(replicated.replica_ports) == len(expected) + 1
    for name in expected:
        assert await ready(replicated, name), name

    killed = replicated.pids()["ingest#2"]
    os.kill(killed, signal.SIGKILL)
    await eventually(functools.partial(restarted, replicated, "ingest#2", killed), timeout=30, interval=0.2)
    assert (
        f"supervisor: ingest#2 (pid {killed}) was killed by SIGKILL"
        in (replicated.log_dir / "ingest#2.log").read_text()
    )

    # Stopped by name, one replica stays stopped while its twin keeps serving; started again by name.
    await asyncio.to_thread(replicated.stop_service, "annotation#2", True)
    assert "annotation#2" not in replicated.pids() and "annotation" in replicated.pids()
    await asyncio.to_thread(replicated.start_service, "annotation#2")
    assert await ready(replicated, "annotation#2")
    with pytest.raises(ValueError, match="annotation#3"):
        replicated.start_service("annotation#3")


async def test_media_imports_on_replicas_make_each_sample_once(
    replicated: Stack, admin: aiohttp.ClientSession, media_server: MediaServer, db: asyncpg.Connection
) -> None:
    made = await dataset(admin, (await create(admin, "replicated imports"))["id"])
    seeds = [list(range(40_000 + i * IMAGES_PER_IMPORT, 40_000 + (i + 1) * IMAGES_PER_IMPORT)) for i in range(IMPORTS)]

    async def start(batch: list[int]) -> str:
        items = [{"url": media_server.url(f"/img/{seed}.jpg", public=True), "name": f"{seed}.jpg"} for seed in batch]
        path = f"/v1/projects/{made['project_id']}/datasets/{made['id']}/imports/urls"
        return (await call(admin, "POST", path, 202, json={"items": items}))["id"]

    run_ids = await asyncio.gather(*(start(batch) for batch in seeds))
    runs = await asyncio.gather(*(wait_run(admin, made, run_id, timeout=180) for run_id in run_ids))
    assert [(r["state"], r["created"], r["duplicates"], r["failed"]) for r in runs] == [
        ("SUCCEEDED", IMAGES_PER_IMPORT, 0, 0)
    ] * IMPORTS

    async def all_registered() -> dict[str, int]:
        counted = await samples_by_hash(db, made["id"])
        assert len(counted) == IMPORTS * IMAGES_PER_IMPORT, len(counted)
        return counted

    counted = await eventually(all_registered, timeout=60, interval=0.5)
    assert counted == {image_hash(seed): 1 for batch in seeds for seed in batch}
    assert await inbox_repeats(db) == dict.fromkeys(WORKER_SERVICES, 0)


def yolo_zip(seeds: list[int]) -> bytes:
    """A YOLO dataset of the seeds' images, two boxes on each."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("data.yaml", "path: .\ntrain: images/train\nnames:\n  0: car\n  1: person\n")
        for seed in seeds:
            archive.writestr(f"images/train/{seed}.jpg", jpeg(seed))
            archive.writestr(f"labels/train/{seed}.txt", "0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.5 0.5\n")
    return out.getvalue()


async def label_import(admin: aiohttp.ClientSession, project_path: str, dataset_id: str, data: bytes) -> dict:
    made = await call(
        admin,
        "POST",
        f"{project_path}/label-imports",
        201,
        json={"format": "yolo", "dataset_id": dataset_id, "create_classes": True},
    )
    async with aiohttp.ClientSession() as s3, s3.put(made["upload_url"], data=data) as response:
        assert response.status == 200, await response.text()
    path = f"{project_path}/label-imports/{made['id']}"
    await call(admin, "POST", f"{path}/start")
    return await finished(admin, path, 180)


async def release_with_exports(admin: aiohttp.ClientSession, project_path: str, name: str) -> tuple[dict, list[dict]]:
    made = await call(admin, "POST", f"{project_path}/releases", 201, json={"name": name})
    release = await finished(admin, f"{project_path}/releases/{made['id']}", 180)
    exports = [
        await call(admin, "POST", f"{project_path}/releases/{made['id']}/exports", 201, json={"format": fmt})
        for fmt in EXPORT_FORMATS
    ]
    return release, [await finished(admin, f"{project_path}/exports/{e['id']}", 180) for e in exports]


async def test_label_imports_releases_and_exports_on_replicas_apply_once(
    replicated: Stack, admin: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    project_id = (await create(admin, "replicated labels"))["id"]
    path = f"/v1/projects/{project_id}"
    # One dataset each: the imports share the project's classes, made by whichever comes first.
    datasets = [await dataset(admin, project_id, f"part {i}") for i in range(LABEL_IMPORTS)]
    first_seed = 50_000
    imports = await asyncio.gather(
        *(
            label_import(
                admin,
                path,
                made["id"],
                yolo_zip(
                    list(
                        range(first_seed + i * IMAGES_PER_LABEL_IMPORT, first_seed + (i + 1) * IMAGES_PER_LABEL_IMPORT)
                    )
                ),
            )
            for i, made in enumerate(datasets)
        )
    )
    samples, objects = LABEL_IMPORTS * IMAGES_PER_LABEL_IMPORT, LABEL_IMPORTS * IMAGES_PER_LABEL_IMPORT * 2
    assert [(i["state"], i["imported"], i["objects"]) for i in imports] == [
        ("SUCCEEDED", IMAGES_PER_LABEL_IMPORT, IMAGES_PER_LABEL_IMPORT * 2)
    ] * LABEL_IMPORTS, [(i["state"], i["error"]) for i in imports]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM annotation.objects o JOIN annotation.labelsets l "
            "ON l.id = o.labelset_id WHERE l.project_id = $1",
            project_id,
        )
        == objects
    )
    assert await db.fetchval("SELECT count(*) FROM catalog.label_classes WHERE project_id = $1", project_id) == 2

    done = await asyncio.gather(*(release_with_exports(admin, path, f"v{i}") for i in range(RELEASES)))
    for release, exports in done:
        assert (release["state"], release["samples"], release["objects"]) == ("SUCCEEDED", samples, objects), release
        assert [(e["state"], e["samples"], e["objects"]) for e in exports] == [("SUCCEEDED", samples, objects)] * len(
            EXPORT_FORMATS
        ), exports
    assert await db.fetchval("SELECT count(*) FROM annotation.releases WHERE project_id = $1", project_id) == RELEASES
    assert await db.fetchval(
        "SELECT count(*) FROM annotation.exports WHERE project_id = $1", project_id
    ) == RELEASES * len(EXPORT_FORMATS)
    assert {e["state"] for _, exports in done for e in exports} <= set(FINISHED)

    async def drained() -> bool:
        assert await unpublished_events(db) == dict.fromkeys(WORKER_SERVICES, 0)
        return True

    await eventually(drained, timeout=30, interval=0.5)
    assert await inbox_repeats(db) == dict.fromkeys(WORKER_SERVICES, 0)


async def test_servers_killed_and_restarted_under_the_replicas_are_ridden_out(
    replicated: Stack, admin: aiohttp.ClientSession, media_server: MediaServer
) -> None:
    with pytest.raises(StackError, match="ingest is not a running server"):
        replicated.restart_server("ingest")
    before = replicated.pids()
    for server in ("nats", "postgres"):
        await asyncio.to_thread(replicated.restart_server, server, True)
        assert replicated.pids()[server] != before[server]

    async def ready_again() -> bool:  # every replica has noticed and reconnected (the gateway asks them all)
        async with admin.get("/readyz") as response:
            assert response.status == 200, await response.text()
            return True

    await eventually(ready_again, timeout=60, interval=0.5)
    made = await dataset(admin, (await create(admin, "after the restarts"))["id"])
    items = [
        {"url": media_server.url(f"/img/{seed}.jpg", public=True), "name": f"{seed}.jpg"} for seed in (60_000, 60_001)
    ]
    path = f"/v1/projects/{made['project_id']}/datasets/{made['id']}/imports/urls"
    run = await wait_run(admin, made, (await call(admin, "POST", path, 202, json={"items": items}))["id"], timeout=120)
    assert (run["state"], run["created"]) == ("SUCCEEDED", 2), run
    assert {name for name in replicated.pids() if "#" in name} == {f"{s}#2" for s in WORKER_SERVICES}


def test_replicas_are_refused_for_the_gateway_and_unknown_services(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gateway runs once"):
        Stack(tmp_path, StackPorts.free(), replicas={"gateway": 2})
    with pytest.raises(ValueError, match="'ingestt'"):
        Stack(tmp_path, StackPorts.free(), replicas={"ingestt": 2})
    with pytest.raises(ValueError, match="at least 1"):
        Stack(tmp_path, StackPorts.free(), replicas=0)
