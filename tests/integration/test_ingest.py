"""Every way images come in, through REST (and the bus) against the real stack, bad input included."""

from __future__ import annotations

import asyncio
import io
import uuid

import aiohttp
import msgspec
import pytest
from PIL import Image

from proto import subjects
from proto.ingest import BusMedia
from shared.bus import Bus
from shared.storage import Storage
from tests.external_s3 import ExternalS3
from tests.integration.test_projects import create, problem
from tests.media_server import MediaServer, jpeg, png_bomb

FINISHED = ("SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED")


@pytest.fixture
async def dataset(api: aiohttp.ClientSession, unique: str) -> dict:
    project = await create(api, f"ingest {unique}")
    async with api.post(f"/v1/projects/{project['id']}/datasets", json={"name": "train"}) as response:
        assert response.status == 201, await response.text()
        return await response.json()


def base(dataset: dict) -> str:
    return f"/v1/projects/{dataset['project_id']}"


async def wait_run(api: aiohttp.ClientSession, dataset: dict, run_id: str, timeout: float = 60.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            async with api.get(f"{base(dataset)}/imports/{run_id}") as response:
                run = await response.json()
            if run["state"] in FINISHED:
                return run
            await asyncio.sleep(0.2)


async def items_of(api: aiohttp.ClientSession, dataset: dict, run_id: str) -> list[dict]:
    async with api.get(f"{base(dataset)}/imports/{run_id}/items", params={"limit": 1000}) as response:
        return (await response.json())["items"]


async def sample_count(api: aiohttp.ClientSession, dataset: dict) -> int:
    async with api.get(f"{base(dataset)}/samples",
                       params={"dataset_id": dataset["id"], "limit": 1, "total": "exact"}) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["total"]


async def wait_samples(api: aiohttp.ClientSession, dataset: dict, count: int, timeout: float = 60.0) -> None:
    """Samples are registered from ingest's event, a moment after the run records them."""
    async with asyncio.timeout(timeout):
        while await sample_count(api, dataset) < count:
            await asyncio.sleep(0.2)
    assert await sample_count(api, dataset) == count


async def presigned_upload(api: aiohttp.ClientSession, dataset: dict, files: list[tuple[str, bytes]]) -> dict:
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/uploads",
                        json={"files": [{"name": name} for name, _ in files]}) as response:
        assert response.status == 201, await response.text()
        upload = await response.json()
    async with aiohttp.ClientSession() as s3:
        for slot, (_, data) in zip(upload["slots"], files, strict=True):
            async with s3.put(slot["url"], data=data) as response:
                assert response.status == 200, await response.text()
    async with api.post(upload["complete_url"], json={}) as response:
        assert response.status == 202, await response.text()
    return await wait_run(api, dataset, upload["run_id"])


async def test_presigned_upload_stores_thumbnails_and_registers_samples(api, dataset) -> None:
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display it rotated by 90°
    Image.open(io.BytesIO(jpeg(1, (80, 40)))).save(rotated, "JPEG", exif=exif)
    run = await presigned_upload(api, dataset, [("a.jpg", jpeg(2)), ("rotated.jpg", rotated.getvalue())])
    assert (run["state"], run["created"], run["failed"], run["kind"]) == ("SUCCEEDED", 2, 0, "upload")
    items = await items_of(api, dataset, run["id"])
    await wait_samples(api, dataset, 2)
    async with api.get(f"{base(dataset)}/samples/{items[1]['sample_id']}") as response:
        sample = await response.json()
    assert (sample["name"], sample["width"], sample["height"], sample["content_hash"]) == (
        "rotated.jpg", 40, 80, items[1]["sha256"])
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
    async with asyncio.timeout(120):
        while True:
            async with api.get(f"{base(dataset)}/imports/{run_id}") as response:
                run = await response.json()
            if run["created"] >= 200:
                break
            await asyncio.sleep(0.05)
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
    async with asyncio.timeout(30):
        while (run := await (await api.get(f"{base(dataset)}/imports/{upload['run_id']}")).json())["state"] != "WAITING":
            await asyncio.sleep(0.1)
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
