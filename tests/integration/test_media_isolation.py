"""Two organisations on one Loupe never reach each other's images, tried the way an outside probe found
the holes: a bucket import that reads Loupe's own S3 (the shared media bucket), however its endpoint is
spelled and whatever keys it brings, and naming another organisation's image by its SHA-256, to ingest or to the
catalog."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

from proto import subjects
from proto.ingest import BusMedia
from proto.samples import sample_id_for
from shared.bus import Bus
from shared.storage import Storage
from tests.helpers import (base, call, dataset_in_new_project, declared, declared_upload, items_of, presigned_upload,
                           sample_count, wait_run, wait_samples)
from tests.media_server import jpeg


@pytest.fixture
async def org_b(api: aiohttp.ClientSession, stack, unique: str) -> AsyncIterator[aiohttp.ClientSession]:
    """The admin of a second organisation."""
    async with api.post("/v1/orgs", json={"name": f"org b {unique}", "admin_name": "Bea",
                                          "admin_email": f"bea@{unique}.example"}) as response:
        assert response.status == 201, await response.text()
        key = (await response.json())["api_key"]["key"]
    async with aiohttp.ClientSession(stack.gateway_url, headers={"Authorization": f"Bearer {key}"}) as session:
        yield session


@pytest.fixture
async def a_image(api: aiohttp.ClientSession, unique: str) -> tuple[bytes, str]:
    """An image organisation A (the default one) uploaded, so that it sits in the shared media bucket."""
    dataset = await dataset_in_new_project(api, f"org a {unique}")
    data = jpeg(int(unique, 16) % 1_000_000_000)
    run = await presigned_upload(api, dataset, [("secret.jpg", data)])
    assert run["created"] == 1
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture
async def b_dataset(org_b: aiohttp.ClientSession, unique: str) -> dict:
    """A dataset of organisation B's."""
    return await dataset_in_new_project(org_b, f"org b {unique}")


def nobodys(unique: str) -> str:
    """The SHA-256 of bytes no organisation stored."""
    return hashlib.sha256(b"never stored by anyone " + unique.encode()).hexdigest()


async def import_bucket(client: aiohttp.ClientSession, dataset: dict, body: dict) -> tuple[int, dict]:
    async with client.post(f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket", json=body) as response:
        return response.status, await response.json()


async def test_a_bucket_import_without_an_endpoint_is_refused(org_b, b_dataset, settings, unique) -> None:
    media = Storage(settings).bucket("media")
    for keys in ({}, {"access_key": settings.s3_access_key, "secret_key": settings.s3_secret_key}):
        status, failure = await import_bucket(org_b, b_dataset, {"bucket": media, **keys})
        assert (status, failure["path"]) == (422, "$.endpoint"), failure
        assert "s3.amazonaws.com" in failure["detail"]
    # The service-only way to read files a Loupe service staged is not part of the REST body.
    status, failure = await import_bucket(org_b, b_dataset, {"bucket": media, "endpoint": "s3.amazonaws.com",
                                                           "staged": True})
    assert status == 422 and "staged" in failure["detail"], failure


async def test_no_spelling_of_our_s3_endpoint_is_an_import_source(org_b, b_dataset, settings, stack, a_image,
                                                                  unique) -> None:
    """Even with Loupe's own keys and with LOUPE_FETCH_ALLOW allowing the address (as the tests' stack does)."""
    data, sha = a_image
    port = stack.ports.s3
    spellings = [settings.s3_endpoint, f"localhost:{port}", f"LOCALHOST:{port}", f"localhost.:{port}",
                 f"[::1]:{port}", f"127.1:{port}", f"0x7f000001:{port}", f"2130706433:{port}", f"127.0.0.2:{port}",
                 f"0.0.0.0:{port}", f"[::]:{port}", f"[::ffff:127.0.0.1]:{port}", f"[::ffff:7f00:1]:{port}"]
    spellings += [settings.s3_public_endpoint] if settings.s3_public_endpoint else []
    storage = Storage(settings)
    refused_at_once = 0
    for endpoint in spellings:
        for bucket in (storage.bucket("media"), storage.bucket("releases")):
            status, answer = await import_bucket(org_b, b_dataset, {
                "bucket": bucket, "endpoint": endpoint, "secure": False,
                "access_key": settings.s3_access_key, "secret_key": settings.s3_secret_key})
            if status == 422:
                assert answer["path"] == "$.endpoint", answer
                refused_at_once += 1
                continue
            assert status == 202, answer
            run = await wait_run(org_b, b_dataset, answer["id"])
            assert (run["state"], run["created"], run["duplicates"]) == ("FAILED", 0, 0), (endpoint, run)
            [item] = await items_of(org_b, b_dataset, run["id"])
            assert item["error_code"] == "listing_failed", (endpoint, item)
            assert sha not in item["error"] and data[:8].hex() not in item["error"].replace(" ", "")
            if endpoint == settings.s3_endpoint:
                assert "is Loupe's own storage" in item["error"], item
    assert 0 < refused_at_once < 2 * len(spellings), "some spellings are valid host names, refused by address"
    assert await sample_count(org_b, b_dataset) == 0


async def test_a_url_import_never_reads_our_s3_even_with_a_presigned_url(org_b, b_dataset, settings, a_image,
                                                                         unique) -> None:
    data, sha = a_image
    leaked = Storage(settings).presigned_get("media", sha)  # as if A's presigned URL had leaked to B
    async with org_b.post(f"{base(b_dataset)}/datasets/{b_dataset['id']}/imports/urls",
                          json={"items": [{"url": leaked}]}) as response:
        assert response.status == 202, await response.text()
        run = await wait_run(org_b, b_dataset, (await response.json())["id"])
    [item] = await items_of(org_b, b_dataset, run["id"])
    assert (item["state"], item["error_code"]) == ("FAILED", "blocked_address")
    assert "Loupe's own storage" in item["error"] and data[:8].hex() not in item["error"].replace(" ", "")


async def test_registering_another_organisations_image_answers_as_for_an_unknown_one(api, org_b, b_dataset, a_image,
                                                                                       unique) -> None:
    data, sha = a_image
    nobody = nobodys(unique)

    async def register(client: aiohttp.ClientSession, target: dict, digest: str) -> tuple[dict, dict]:
        async with client.post(f"{base(target)}/datasets/{target['id']}/media",
                               json={"items": [{"sha256": digest, "name": "x.jpg"}]}) as response:
            assert response.status == 201, await response.text()
            run = await response.json()
        [item] = await items_of(client, target, run["id"])
        return run, item

    theirs, their_item = await register(org_b, b_dataset, sha)
    unknown, unknown_item = await register(org_b, b_dataset, nobody)
    assert (their_item["state"], their_item["error_code"]) == ("FAILED", "unknown_media")
    comparable = ("state", "total", "created", "duplicates", "failed", "pending", "kind", "source")
    assert [theirs[k] for k in comparable] == [unknown[k] for k in comparable]
    assert {**their_item, "index": 0, "source": "", "sha256": ""} == {
        **unknown_item, "error": unknown_item["error"].replace(nobody, sha), "index": 0, "source": "", "sha256": ""}
    assert await sample_count(org_b, b_dataset) == 0

    # A may still use its own image anywhere in A: another project, another dataset.
    elsewhere = await dataset_in_new_project(api, f"org a elsewhere {unique}")
    mine, my_item = await register(api, elsewhere, sha)
    assert (mine["created"], my_item["state"]) == (1, "CREATED")
    await wait_samples(api, elsewhere, 1)


async def test_an_organisation_that_stores_the_same_bytes_itself_may_register_them(org_b, b_dataset, a_image, bus: Bus,
                                                                                   api, unique) -> None:
    """Storage deduplicates across organisations; the API does not show it. Bus images count as stored too,
    for the project's organisation (a bus message has no caller)."""
    data, sha = a_image
    run = await presigned_upload(org_b, b_dataset, [("mine-too.jpg", data)])
    assert (run["state"], run["created"]) == ("SUCCEEDED", 1)
    by_bus = jpeg(int(unique, 16) % 1_000_000_000 + 1)
    await bus.js.publish(subjects.BUS_MEDIA.subject, msgspec.json.encode(BusMedia(
        project_id=b_dataset["project_id"], dataset_id=b_dataset["id"], data=by_bus)),
        headers={subjects.HEADER_MSG_ID: f"isolation-{unique}"})
    await wait_samples(org_b, b_dataset, 2)

    other = await dataset_in_new_project(org_b, f"org b other {unique}")
    bus_sha = hashlib.sha256(by_bus).hexdigest()
    async with org_b.post(f"{base(other)}/datasets/{other['id']}/media",
                          json={"items": [{"sha256": sha}, {"sha256": bus_sha}]}) as response:
        assert response.status == 201, await response.text()
        assert (await response.json())["created"] == 2
    a_dataset = await dataset_in_new_project(api, f"org a {unique} bus")
    async with api.post(f"{base(a_dataset)}/datasets/{a_dataset['id']}/media",
                        json={"items": [{"sha256": bus_sha}]}) as response:
        assert (await response.json())["failed"] == 1, "A never stored B's bus image"


async def test_creating_a_sample_of_another_organisations_image_answers_as_for_an_unknown_one(api, org_b, b_dataset,
                                                                                            a_image, unique) -> None:
    """The catalog's bulk create names media by SHA-256 too, and a sample's /media hands out its original."""
    data, sha = a_image
    nobody = nobodys(unique)

    async def create_samples(client: aiohttp.ClientSession, target: dict, digest: str) -> tuple[int, dict]:
        elsewhere = {"media_url": "https://images.example.com/x.jpg", "name": "elsewhere.jpg", "width": 8, "height": 8}
        async with client.post(f"{base(target)}/datasets/{target['id']}/samples", json={"items": [
                elsewhere, {"content_hash": digest, "name": "x.jpg", "width": 8, "height": 8}]}) as response:
            return response.status, await response.json()

    status, theirs = await create_samples(org_b, b_dataset, sha)
    assert (status, theirs["code"], theirs["path"]) == (422, "invalid", "$.items[1].content_hash"), theirs
    assert sha not in theirs["detail"]
    status, unknown = await create_samples(org_b, b_dataset, nobody)
    assert status == 422
    assert {**theirs, "request_id": ""} == {**unknown, "request_id": ""}
    assert await sample_count(org_b, b_dataset) == 0, "all or nothing: the other item was not created either"
    async with org_b.get(f"{base(b_dataset)}/samples/{sample_id_for(b_dataset['id'], sha)}/media",
                         allow_redirects=False) as response:
        assert response.status == 404

    # A may still make samples of its own image, and gets the image.
    mine = await dataset_in_new_project(api, f"org a samples {unique}")
    status, made = await create_samples(api, mine, sha)
    assert (status, made["created"]) == (200, 2), made
    async with api.get(f"{base(mine)}/samples/{made['items'][1]['id']}/media", allow_redirects=False) as response:
        assert response.status == 302
        location = response.headers["Location"]
    async with aiohttp.ClientSession() as plain, plain.get(location) as response:
        assert await response.read() == data


async def test_declaring_another_organisations_image_by_its_hash_proves_nothing(org_b, b_dataset, a_image) -> None:
    """An upload slot declared by SHA-256 is answered as for an image nobody stored, and only B's own PUT of the
    bytes makes a sample: the object A's upload left at that key is not B's."""
    data, _ = a_image
    upload = await call(org_b, "POST", f"{base(b_dataset)}/datasets/{b_dataset['id']}/uploads", 201,
                        json={"files": [declared("guess.jpg", data)]})
    [slot] = upload["slots"]
    assert (slot["stored"], bool(slot["url"])) == (False, True)
    await call(org_b, "POST", upload["complete_url"], 202, json={})
    run = await wait_run(org_b, b_dataset, upload["run_id"])
    [item] = await items_of(org_b, b_dataset, run["id"])
    assert (run["state"], item["error_code"]) == ("FAILED", "not_uploaded")
    assert await sample_count(org_b, b_dataset) == 0
    _, run = await declared_upload(org_b, b_dataset, [("mine.jpg", data)])
    assert (run["state"], run["created"]) == ("SUCCEEDED", 1), "with the bytes, B has the image"
