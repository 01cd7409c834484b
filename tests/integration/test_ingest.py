"""Every way images come in, through REST (and the bus) against the real stack, bad input included."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import asyncpg
import msgspec
import pytest
from PIL import Image

from proto import subjects
from proto.common import Caller, EventEnvelope
from proto.ingest import BusMedia, FileSpec, InlineFile, Run, RunProgressed, UploadFilesRequest
from services.gateway import uploads
from services.ingest import direct, pipeline, runs
from services.ingest.media import process_image
from services.ingest.service import service as ingest_service
from shared.bus import Bus, RequestContext, encoder
from shared.service import Runtime
from shared.settings import Settings
from shared.storage import Storage
from tests.external_s3 import ExternalS3
from tests.helpers import (base, call, create, dataset_in_new_project, eventually, items_of, presigned_upload, problem,
                           requests_made, requests_sent, sample_count, wait_created, wait_run, wait_samples)
from tests.media_server import MediaServer, jpeg, png_bomb


@pytest.fixture
async def dataset(api: aiohttp.ClientSession, unique: str) -> dict:
    return await dataset_in_new_project(api, f"ingest {unique}")


async def test_presigned_upload_stores_thumbnails_and_registers_samples(api, dataset) -> None:
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display it rotated by 90°
    Image.open(io.BytesIO(jpeg(1, (600, 300)))).save(rotated, "JPEG", exif=exif)  # past 256 px: a thumbnail is made
    run = await presigned_upload(api, dataset, [("a.jpg", jpeg(2)), ("rotated.jpg", rotated.getvalue())])
    assert (run["state"], run["created"], run["failed"], run["kind"]) == ("SUCCEEDED", 2, 0, "upload")
    items = await items_of(api, dataset, run["id"])
    await wait_samples(api, dataset, 2)
    async with api.get(f"{base(dataset)}/samples/{items[1]['sample_id']}") as response:
        sample = await response.json()
    assert (sample["name"], sample["width"], sample["height"], sample["content_hash"]) == (
        "rotated.jpg", 300, 600, items[1]["sha256"])
    async with api.get(f"{base(dataset)}/samples/{sample['id']}/thumbnail", allow_redirects=False) as response:
        assert response.status == 302
        location = response.headers["Location"]
    async with aiohttp.ClientSession() as browser, browser.get(location) as response:
        thumbnail = Image.open(io.BytesIO(await response.read()))
    assert thumbnail.size[1] > thumbnail.size[0], "the thumbnail is shown the way the camera was held"


async def test_the_same_image_is_stored_once_and_re_adding_it_says_duplicate(api, dataset, settings) -> None:
    image = jpeg(3)
    first = await presigned_upload(api, dataset, [("one.jpg", image), ("again.jpg", image)])
    assert (first["created"], first["duplicates"]) == (1, 1)
    one, again = await items_of(api, dataset, first["id"])
    assert again["state"] == "DUPLICATE" and again["sample_id"] == one["sample_id"]
    await wait_samples(api, dataset, 1)
    second = await presigned_upload(api, dataset, [("later.jpg", image)])
    assert (second["state"], second["created"], second["duplicates"]) == ("SUCCEEDED", 0, 1)
    assert (await items_of(api, dataset, second["id"]))[0]["sample_id"] == one["sample_id"]
    await wait_samples(api, dataset, 1)
    storage = Storage(settings)
    stored = await asyncio.to_thread(lambda: [o.object_name for o in storage.client.list_objects(
        storage.bucket("media"), prefix=one["sha256"])])
    assert stored == [one["sha256"]]


async def test_an_image_whose_sample_was_deleted_may_be_added_again(api, dataset) -> None:
    image = jpeg(6)
    first = await presigned_upload(api, dataset, [("gone.jpg", image)])
    await wait_samples(api, dataset, 1)
    sample_id = (await items_of(api, dataset, first["id"]))[0]["sample_id"]
    await call(api, "DELETE", f"{base(dataset)}/samples/{sample_id}", 204)

    async def added_again() -> bool:  # ingest hears of the deletion from the catalog's event, a moment later
        assert (await presigned_upload(api, dataset, [("back.jpg", image)]))["created"] == 1
        return True

    await eventually(added_again, timeout=30, interval=0.2)
    await wait_samples(api, dataset, 1)


async def test_bad_files_fail_one_by_one_and_leave_nothing_behind(api, dataset, settings) -> None:
    good = jpeg(4)
    files = {"good.jpg": good, "truncated.jpg": good[: len(good) // 2], "notes.jpg": b"just some text\n",
             "bomb.png": png_bomb(), "empty.jpg": b""}
    form = aiohttp.FormData()
    for name, data in files.items():
        form.add_field("file", data, filename=name, content_type="image/jpeg")
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/files", data=form) as response:
        assert response.status == 201, await response.text()
        result = await response.json()
    assert result["run"]["state"] == "PARTIAL"
    outcome = {item["name"]: (item["state"], item["error_code"]) for item in result["items"]}
    assert outcome == {"good.jpg": ("CREATED", None), "truncated.jpg": ("FAILED", "corrupt"),
                       "notes.jpg": ("FAILED", "unsupported_format"), "bomb.png": ("FAILED", "image_too_large"),
                       "empty.jpg": ("FAILED", "empty")}
    assert all(item["error"] for item in result["items"] if item["state"] == "FAILED")
    notes = next(item["error"] for item in result["items"] if item["name"] == "notes.jpg")
    assert b"just".hex() not in notes.replace(" ", ""), "an error never quotes the file's bytes"
    await wait_samples(api, dataset, 1)
    storage = Storage(settings)
    staged = await asyncio.to_thread(lambda: list(storage.client.list_objects(
        storage.bucket("staging"), prefix=result["run"]["id"], recursive=True)))
    assert staged == [], "staged uploads are removed once processed"


async def test_a_multipart_upload_stores_each_image_once_at_its_final_key_and_nothing_else(
        api, dataset, settings, stack) -> None:
    small, large, bad = jpeg(30), jpeg(31, (400, 300)), jpeg(32)[:300]
    files = {"small.jpg": small, "again.jpg": small, "other.jpg": jpeg(33), "large.jpg": large, "bad.jpg": bad}
    form = aiohttp.FormData()
    for name, data in files.items():
        form.add_field("file", data, filename=name, content_type="image/jpeg")

    async def upload() -> dict:
        async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/files", data=form) as response:
            assert response.status == 201, await response.text()
            return await response.json()

    result, made = await requests_made(stack, upload())
    outcome = {item["name"]: (item["state"], item["error_code"]) for item in result["items"]}
    assert outcome == {"small.jpg": ("CREATED", None), "again.jpg": ("DUPLICATE", None),
                       "other.jpg": ("CREATED", None), "large.jpg": ("CREATED", None), "bad.jpg": ("FAILED", "corrupt")}
    # One PUT per distinct valid image, a thumbnail only for the one past 256 px, no staging at all.
    assert made == {("media", "PUT"): 3, ("thumbs", "PUT"): 1}
    storage = Storage(settings)
    media = await asyncio.to_thread(lambda: {o.object_name for o in storage.client.list_objects(storage.bucket("media"))})
    await storage.close()
    assert {hashlib.sha256(data).hexdigest() for data in (small, large)} <= media
    assert hashlib.sha256(bad).hexdigest() not in media, "an invalid file leaves no object"
    await wait_samples(api, dataset, 3)
    sample_id = next(item["sample_id"] for item in result["items"] if item["name"] == "small.jpg")
    async with api.get(f"{base(dataset)}/samples/{sample_id}/thumbnail", allow_redirects=False) as response:
        location = response.headers["Location"]
    async with aiohttp.ClientSession() as browser, browser.get(location) as response:
        assert await response.read() == small, "a small JPEG is its own thumbnail"


async def test_a_presigned_upload_reads_each_staged_image_once_and_stores_it_once(api, dataset, stack) -> None:
    # Seeds no other test uses: media another test stored already would not be PUT again (content-addressed).
    first = uuid.uuid4().int % 10**9
    files = [(f"{seed}.jpg", jpeg(seed)) for seed in range(first, first + 10)]
    run, made = await requests_made(stack, presigned_upload(api, dataset, files))
    assert (run["created"], run["failed"]) == (10, 0)
    # The client's PUT to staging is not ingest's; a thumbnail is not needed at 64×48. Deletes are one per ingest
    # batch, and the images may arrive in more than one batch.
    deletes = made.pop(("staging", "DELETE"))
    assert made == {("staging", "GET"): 10, ("media", "PUT"): 10}
    assert 1 <= deletes < 10, "staged images are deleted a batch at a time"


async def test_a_multipart_upload_too_large_for_one_bus_message_goes_presigned_to_the_final_keys(
        api, dataset, bus: Bus, stack) -> None:
    form = aiohttp.FormData()
    big = io.BytesIO()
    Image.new("RGB", (2500, 2500), "teal").save(big, "BMP")  # 18.75 MB, over the 16 MiB bus limit
    for name, data in (("big.bmp", big.getvalue()), ("5.jpg", jpeg(5)), ("6.jpg", jpeg(6))):
        form.add_field("file", data, filename=name, content_type="image/jpeg")
    async def upload() -> dict:
        async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/files", data=form) as response:
            assert response.status == 201, await response.text()
            return await response.json()

    async with requests_sent(bus, subjects.GET_RUN, dataset["project_id"]) as asked:
        result, made = await requests_made(stack, upload())
    assert result["run"]["state"] == "SUCCEEDED" and [i["state"] for i in result["items"]] == ["CREATED"] * 3
    assert asked == [], "the gateway waits for the run's event instead of asking for the run"
    assert not [bucket for bucket, _ in made if bucket == "staging"], "declared by SHA-256: no staging"
    assert made[("thumbs", "PUT")] == 1 and ("media", "PUT") not in made, made


def progressed(run_id: str, finished: bool) -> bytes:
    """ingest's event that run `run_id` moved on, or finished."""
    now = datetime.now(UTC)
    run = Run(id=run_id, project_id=str(uuid.uuid4()), dataset_id=str(uuid.uuid4()), kind="upload",
              state="SUCCEEDED" if finished else "RUNNING", total=2, created=2 if finished else 1, duplicates=0,
              failed=0, pending=0 if finished else 1, source="upload", created_at=now, updated_at=now,
              finished_at=now if finished else None)
    return encoder.encode(EventEnvelope(id=str(uuid.uuid4()), type="ingest.run.progressed", time=now,
                                        project=run.project_id, data=RunProgressed(run=run)))


async def test_an_upload_waits_for_its_own_runs_finish_and_no_other_event(bus: Bus) -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    async with uploads.run_finished(bus, mine) as finished:
        # In order: had either of the first two ended the wait, it would have ended with their run.
        for run_id, done in ((mine, False), (other, True), (mine, True)):
            await bus.nc.publish(subjects.RUN_PROGRESSED.subject, progressed(run_id, done))
        run = await asyncio.wait_for(finished, 30)
    assert (run.id, run.state, run.created) == (mine, "SUCCEEDED", 2)


async def test_url_import_fetches_public_images_and_refuses_private_addresses(
        api, dataset, media_server: MediaServer, stack) -> None:
    private = f"http://127.0.0.1:{stack.ports.gateway}/healthz"
    urls = {
        "ok": media_server.url("/img/5.jpg", public=True),
        "loopback": private,
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "redirect-private": media_server.url(f"/redirect?to={private}", public=True),
        "redirect-metadata": media_server.url("/redirect?to=http://169.254.169.254/", public=True),
    }
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/urls",
                        json={"items": [{"url": url, "name": name} for name, url in urls.items()]}) as response:
        assert response.status == 202, await response.text()
        run = await wait_run(api, dataset, (await response.json())["id"])
    outcome = {item["name"]: item for item in await items_of(api, dataset, run["id"])}
    assert outcome["ok"]["state"] == "CREATED"
    for name in ("loopback", "metadata", "redirect-private", "redirect-metadata"):
        assert (outcome[name]["state"], outcome[name]["error_code"]) == ("FAILED", "blocked_address"), name
    assert "169.254.169.254" in outcome["metadata"]["error"]
    await wait_samples(api, dataset, 1)
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/urls",
                        json={"items": [{"url": "ftp://example.com/a.jpg"}]}) as response:
        assert (await problem(response, 422))["path"] == "$.items[0].url"


async def test_bucket_import_from_an_external_s3(api, dataset, external_s3: ExternalS3, unique) -> None:
    bucket = f"tests-import-{unique}"
    await external_s3.put_images(bucket, "cams/front", range(100, 110))
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket",
                        json=external_s3.source(bucket, "cams/front/", metadata={"camera": "front"})) as response:
        assert response.status == 202, await response.text()
        run = await wait_run(api, dataset, (await response.json())["id"])
    assert (run["state"], run["created"], run["source"]) == (
        "SUCCEEDED", 10, f"s3://{external_s3.endpoint}/{bucket}/cams/front/")
    await wait_samples(api, dataset, 10)
    async with api.post(f"{base(dataset)}/samples/search",
                        json={"metadata": {"s3_key": {"eq": "cams/front/105.jpg"}}}) as response:
        [sample] = (await response.json())["items"]
    assert sample["metadata"] == {"camera": "front", "s3_key": "cams/front/105.jpg"}

    await external_s3.put_images(bucket, "cams/rear", range(110, 115))
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket",
                        json=external_s3.source(bucket, "cams/")) as response:
        run = await wait_run(api, dataset, (await response.json())["id"])
    assert (run["state"], run["created"], run["duplicates"]) == ("SUCCEEDED", 5, 10)
    await wait_samples(api, dataset, 15)


@pytest.mark.parametrize(("change", "path"), [
    ({"endpoint": None}, "$.endpoint"), ({"endpoint": "https://s3.amazonaws.com"}, "$.endpoint"),
    ({"endpoint": "host:65536"}, "$.endpoint"), ({"endpoint": "[:::]:9000"}, "$.endpoint"),
    ({"bucket": "Upper_Case"}, "$.bucket"), ({"bucket": "192.168.1.1"}, "$.bucket"), ({"bucket": "a..b"}, "$.bucket"),
])
async def test_bucket_imports_name_a_valid_endpoint_and_bucket(api, dataset, change: dict, path: str) -> None:
    """Refused at once, naming the field, rather than accepted and failing in the job over and over
    (tests/unit/test_bucket_source.py has the rules)."""
    body = {"bucket": "raw-frames", "endpoint": "s3.amazonaws.com", "access_key": "a", "secret_key": "b", **change}
    body = {key: value for key, value in body.items() if value is not None}
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket", json=body) as response:
        failure = await problem(response, 422)
    assert failure["path"] == path, failure
    if "endpoint" not in body:
        assert "s3.amazonaws.com" in failure["detail"]


async def test_bus_producers_ingest_bytes_durably_and_once(api, dataset, bus: Bus) -> None:
    message = BusMedia(project_id=dataset["project_id"], dataset_id=dataset["id"], data=jpeg(200),
                       name="frame-200.jpg", metadata={"robot": "r2"})
    for _ in range(2):  # a producer retrying its publish: the same message id is taken once
        await bus.js.publish(subjects.BUS_MEDIA.subject, msgspec.json.encode(message),
                             headers={subjects.HEADER_MSG_ID: "robot-r2-frame-200"})
    await wait_samples(api, dataset, 1)
    async with api.get(f"{base(dataset)}/imports", params={"dataset_id": dataset["id"]}) as response:
        [feed] = (await response.json())["items"]
    assert (feed["kind"], feed["created"], feed["state"]) == ("bus", 1, "RUNNING")


async def test_registering_stored_media_in_another_dataset(api, dataset) -> None:
    run = await presigned_upload(api, dataset, [("x.jpg", jpeg(300))])
    sha = (await items_of(api, dataset, run["id"]))[0]["sha256"]
    async with api.post(f"{base(dataset)}/datasets", json={"name": "val"}) as response:
        other = await response.json()
    async with api.post(f"{base(dataset)}/datasets/{other['id']}/media",
                        json={"items": [{"sha256": sha, "name": "x.jpg"}, {"sha256": "0" * 64}]}) as response:
        assert response.status == 201, await response.text()
        registered = await response.json()
    assert (registered["state"], registered["created"], registered["failed"]) == ("PARTIAL", 1, 1)
    await wait_samples(api, other, 1)


async def test_a_dataset_of_another_project_is_404(api, dataset, unique) -> None:
    elsewhere = await create(api, f"elsewhere {unique}")
    async with api.post(f"/v1/projects/{elsewhere['id']}/datasets/{dataset['id']}/uploads",
                        json={"count": 1}) as response:
        await problem(response, 404)
    async with api.get(f"/v1/projects/{elsewhere['id']}/imports/{uuid.uuid4()}") as response:
        await problem(response, 404)


async def test_killing_ingest_mid_import_loses_nothing(api, dataset, external_s3: ExternalS3, stack,
                                                       unique) -> None:
    count = 2000
    bucket = f"tests-kill-{unique}"
    await external_s3.put_images(bucket, "all", range(10_000, 10_000 + count))
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket",
                        json=external_s3.source(bucket, "all/")) as response:
        run_id = (await response.json())["id"]
    run = await wait_created(api, dataset, run_id, 200, timeout=120)
    stack.stop_service("ingest", kill=True)
    assert run["state"] == "RUNNING" and run["created"] < count
    stack.start_service("ingest")
    run = await wait_run(api, dataset, run_id, timeout=240)
    assert (run["state"], run["total"], run["created"], run["duplicates"], run["failed"]) == (
        "SUCCEEDED", count, count, 0, 0)
    await wait_samples(api, dataset, count, timeout=120)


async def test_an_upload_completes_in_parts_reports_missing_files_and_can_be_cancelled(api, dataset) -> None:
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/uploads", json={"count": 3}) as response:
        upload = await response.json()
    async with aiohttp.ClientSession() as s3, s3.put(upload["slots"][0]["url"], data=jpeg(400)) as response:
        assert response.status == 200
    async with api.post(upload["complete_url"], json={"indexes": [0, 1]}) as response:
        assert response.status == 202, await response.text()
    async def waiting() -> dict:
        run = await call(api, "GET", f"{base(dataset)}/imports/{upload['run_id']}")
        assert run["state"] == "WAITING", run
        return run
    run = await eventually(waiting, timeout=30, interval=0.1)
    assert (run["created"], run["failed"], run["pending"]) == (1, 1, 1)
    async with api.get(f"{base(dataset)}/imports/{upload['run_id']}/items", params={"state": "FAILED"}) as response:
        [missing] = (await response.json())["items"]
    assert (missing["index"], missing["error_code"]) == (1, "not_uploaded")
    async with api.post(f"{base(dataset)}/imports/{upload['run_id']}/cancel") as response:
        cancelled = await response.json()
    assert (cancelled["state"], cancelled["pending"]) == ("CANCELLED", 0)
    async with api.post(upload["complete_url"], json={}) as response:
        await problem(response, 409)
    async with api.post(upload["complete_url"].replace(upload["run_id"], str(uuid.uuid4())), json={}) as response:
        await problem(response, 404)


async def test_a_bus_producer_may_send_a_url_instead_of_bytes(api, dataset, bus: Bus, media_server) -> None:
    message = BusMedia(project_id=dataset["project_id"], dataset_id=dataset["id"],
                       url=media_server.url("/img/500.jpg", public=True))
    await bus.js.publish(subjects.BUS_MEDIA.subject, msgspec.json.encode(message),
                         headers={subjects.HEADER_MSG_ID: f"url-{dataset['id']}"})
    await wait_samples(api, dataset, 1)
    async with api.post(f"{base(dataset)}/samples/search", json={}) as response:
        [sample] = (await response.json())["items"]
    assert sample["name"] == "500.jpg"


async def test_an_external_bucket_on_a_private_address_is_refused(api, dataset, stack) -> None:
    private = {"bucket": "anything", "endpoint": f"127.0.0.1:{stack.ports.gateway}", "secure": False,
               "access_key": "a", "secret_key": "b"}
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket", json=private) as response:
        run = await wait_run(api, dataset, (await response.json())["id"])
    assert (run["state"], run["created"], run["failed"]) == ("FAILED", 0, 1)
    [item] = await items_of(api, dataset, run["id"])
    assert item["error_code"] == "listing_failed" and "127.0.0.1" in item["error"]
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket",
                        json={**private, "secret_key": ""}) as response:
        assert (await problem(response, 422))["path"] == "$.access_key"


# -- claims: no transaction across network I/O, and outcomes recorded once ---------------------------------

REPLICA = "tests-ingest-replica"


@contextlib.asynccontextmanager
async def ingest_replica(settings: Settings) -> AsyncIterator[Runtime]:
    """Another ingest process's runtime, in the test: the stack's own Postgres schema, NATS and S3, and no
    consumers, so it works only on the runs a test hands it."""
    async def codecs(conn: asyncpg.Connection) -> None:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")

    rt = Runtime(ingest_service, settings)
    rt.pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4, init=codecs,
                                        server_settings={"search_path": "ingest, public", "application_name": REPLICA})
    rt.bus = await Bus.connect(settings, REPLICA)
    try:
        yield rt
    finally:
        await rt.bus.close()
        await rt.pool.close()
        await rt.storage.close()


async def unstarted_run(api: aiohttp.ClientSession, rt: Runtime, dataset: dict, count: int) -> asyncpg.Record:
    """A URL run of `count` pending items whose first job is never submitted, so only the test works on it."""
    async with api.get(base(dataset)) as response:
        org_id = (await response.json())["org_id"]
    async with rt.db.acquire() as conn, conn.transaction():
        run_id = await runs.create_run(conn, dataset["project_id"], dataset["id"], "url", "tests", org_id, "tests")
        await runs.add_items(conn, run_id, 0, [(f"item-{i}", FileSpec()) for i in range(count)], "PENDING")
    return await rt.db.fetchrow("SELECT * FROM runs WHERE id = $1", run_id)


async def counts(rt: Runtime, run_id: uuid.UUID) -> tuple[int, int]:
    """The run's created count, and how many MediaStored events it queued."""
    created = await rt.db.fetchval("SELECT created FROM runs WHERE id = $1", run_id)
    events = await rt.db.fetchval("SELECT count(*) FROM outbox WHERE subject = $1 AND position($2 IN "
                                  "convert_from(payload, 'UTF8')) > 0", subjects.MEDIA_STORED.subject, str(run_id))
    return created, events


async def blocked_batch(rt: Runtime, run: asyncpg.Record, images: dict[str, bytes]
                        ) -> tuple[pipeline.Reader, asyncio.Event, asyncio.Task[int]]:
    """A batch of the run started with a reader that stops at its first read until `go` is set: once this
    returns, the batch holds its claim and is reading. The reader, `go`, and the batch."""
    reading, go = asyncio.Event(), asyncio.Event()

    async def read(row: asyncpg.Record) -> bytes:
        reading.set()
        await go.wait()
        return images[row["source"]]
    batch = asyncio.create_task(pipeline.process_batch(rt, run, read))
    async with asyncio.timeout(30):
        await reading.wait()
    return read, go, batch


async def test_a_batch_holds_no_transaction_while_its_bytes_move(api, dataset, settings) -> None:
    images = {f"item-{i}": jpeg(20_000 + i) for i in range(2)}
    async with ingest_replica(settings) as rt:
        run = await unstarted_run(api, rt, dataset, len(images))
        read, go, batch = await blocked_batch(rt, run, images)
        idle_in_transaction = await rt.db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
            REPLICA)
        claimed = await rt.db.fetchval("SELECT count(*) FROM items WHERE run_id = $1 AND claimed_until > now()",
                                       run["id"])
        # Claimed: another replica gets nothing of it meanwhile.
        other = await pipeline.process_batch(rt, run, read)
        go.set()
        assert await batch == 2
        assert (idle_in_transaction, claimed, other) == (0, 2, 0)
        assert await counts(rt, run["id"]) == (2, 1)
    await wait_samples(api, dataset, 2)


async def test_a_batch_whose_claim_expired_and_was_taken_over_records_nothing(api, dataset, settings) -> None:
    images = {f"item-{i}": jpeg(21_000 + i) for i in range(3)}
    async with ingest_replica(settings) as rt:
        run = await unstarted_run(api, rt, dataset, len(images))
        _, go, slow = await blocked_batch(rt, run, images)
        # As if the slow one's process had stopped renewing its claim: it expires, and another takes the items.
        await rt.db.execute("UPDATE items SET claimed_until = now() - interval '1 second' WHERE run_id = $1",
                            run["id"])

        async def read_now(row: asyncpg.Record) -> bytes:
            return images[row["source"]]
        assert await pipeline.process_batch(rt, run, read_now) == 3
        go.set()
        assert await slow == 3  # it worked on them, and recorded none: they were no longer its own
        assert await counts(rt, run["id"]) == (3, 1)
        states = [r["state"] for r in await rt.db.fetch("SELECT state FROM items WHERE run_id = $1", run["id"])]
        assert states == ["CREATED"] * 3
    await wait_samples(api, dataset, 3)


async def test_recording_a_batch_twice_changes_nothing(api, dataset, settings) -> None:
    data = [jpeg(22_000 + i) for i in range(2)]
    async with ingest_replica(settings) as rt:
        run = await unstarted_run(api, rt, dataset, len(data))
        token, rows = await pipeline.claim(rt, run["id"], None)
        worked = [(row, pipeline.Prepared(image, process_image(image))) for row, image in zip(rows, data, strict=True)]
        first = await pipeline.record(rt, run, token, worked, {}, set())
        again = await pipeline.record(rt, run, token, worked, {}, set())
        assert (len(first), again) == (2, [])
        assert await counts(rt, run["id"]) == (2, 1)


async def test_one_image_in_two_batches_at_once_makes_one_sample(api, dataset, settings) -> None:
    image = jpeg(23_000)
    async with ingest_replica(settings) as rt:
        run = await unstarted_run(api, rt, dataset, 2)
        claims = [await pipeline.claim(rt, run["id"], [index]) for index in range(2)]
        for token, rows in claims:  # each asked the catalog before either was recorded, and neither found it
            worked = [(rows[0], pipeline.Prepared(image, process_image(image)))]
            await pipeline.record(rt, run, token, worked, {}, set())
        items = await rt.db.fetch("SELECT state, sample_id FROM items WHERE run_id = $1 ORDER BY idx", run["id"])
        assert [item["state"] for item in items] == ["CREATED", "DUPLICATE"]
        assert items[0]["sample_id"] == items[1]["sample_id"]
        assert await counts(rt, run["id"]) == (1, 1)
    await wait_samples(api, dataset, 1)


async def test_a_multipart_upload_that_dies_before_it_records_leaves_no_run_and_its_retry_loses_nothing(
        api, dataset, settings, monkeypatch) -> None:
    files = [InlineFile(name="a.jpg", data=jpeg(60)), InlineFile(name="bad.jpg", data=b"not an image")]
    request = UploadFilesRequest(project_id=dataset["project_id"], dataset_id=dataset["id"], files=files)
    async with api.get(base(dataset)) as response:
        caller = Caller(org_id=(await response.json())["org_id"], key_id="tests")
    ctx = RequestContext(request_id="tests", caller=caller)

    async def dies(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError("the ingest process died here, after storing and before recording")

    async with ingest_replica(settings) as rt:
        runs_before = await rt.db.fetchval("SELECT count(*) FROM runs WHERE dataset_id = $1", uuid.UUID(dataset["id"]))
        with monkeypatch.context() as patched:
            patched.setattr(direct, "create_run", dies)
            with pytest.raises(ConnectionResetError):
                await direct.upload_files(rt, request, ctx)
        assert await rt.db.fetchval(
            "SELECT count(*) FROM runs WHERE dataset_id = $1", uuid.UUID(dataset["id"])) == runs_before
        assert await rt.storage.get_bytes("media", hashlib.sha256(jpeg(60)).hexdigest()) == jpeg(60)
        run = await direct.upload_files(rt, request, ctx)  # the caller's retry
    assert (run.state, run.created, run.failed, run.finished_at is not None) == ("PARTIAL", 1, 1, True)
    await wait_samples(api, dataset, 1)
    assert await sample_count(api, dataset) == 1
