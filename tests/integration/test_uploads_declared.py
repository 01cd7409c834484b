"""Upload slots for files declared by their SHA-256 and type: the bytes go straight to their final key, a file
the organisation has needs no PUT, and S3 itself refuses any other bytes there."""

from __future__ import annotations

import hashlib
import io
import uuid

import aiohttp
import pytest
from PIL import Image

from shared.storage import ObjectMissing, Storage
from tests.helpers import (base, call, dataset_in_new_project, declared, declared_upload, items_of, problem,
                           requests_made, wait_run, wait_samples)
from tests.media_server import jpeg


@pytest.fixture
async def dataset(api: aiohttp.ClientSession, unique: str) -> dict:
    return await dataset_in_new_project(api, f"declared {unique}")


@pytest.fixture
async def storage(settings) -> Storage:
    storage = Storage(settings)
    yield storage
    await storage.close()


def fresh_jpegs(count: int, size: tuple[int, int] = (64, 48)) -> list[tuple[str, bytes]]:
    """Images no other test stored (media is content-addressed and shared)."""
    first = uuid.uuid4().int % 10**9
    return [(f"{seed}.jpg", jpeg(seed, size)) for seed in range(first, first + count)]


async def create_upload(api: aiohttp.ClientSession, dataset: dict, files: list[dict]) -> dict:
    return await call(api, "POST", f"{base(dataset)}/datasets/{dataset['id']}/uploads", 201, json={"files": files})


async def complete(api: aiohttp.ClientSession, dataset: dict, upload: dict) -> dict:
    await call(api, "POST", upload["complete_url"], 202, json={})
    return await wait_run(api, dataset, upload["run_id"])


async def test_declared_files_go_straight_to_their_final_key(api, dataset, stack, storage) -> None:
    files = [*fresh_jpegs(9), *fresh_jpegs(1, (400, 300))]  # the last is past 256 px: it gets a thumbnail
    (upload, run), made = await requests_made(stack, declared_upload(api, dataset, files))
    assert (run["state"], run["created"], run["failed"]) == ("SUCCEEDED", 10, 0)
    assert all(slot["url"] and not slot["stored"] for slot in upload["slots"])
    # Ingest reads each file once where the client put it, and writes only the thumbnail: no staging at all.
    assert made == {("media", "GET"): 10, ("thumbs", "PUT"): 1}
    await wait_samples(api, dataset, 10)
    sha = hashlib.sha256(files[0][1]).hexdigest()
    data, headers = await storage.get_with_headers("media", sha)
    assert (data, headers["Content-Type"]) == (files[0][1], "image/jpeg")
    items = await items_of(api, dataset, run["id"])
    assert [item["sha256"] for item in items] == [hashlib.sha256(data).hexdigest() for _, data in files]


async def test_a_file_the_organisation_stored_needs_no_put_and_no_read(api, dataset, stack, unique) -> None:
    files = fresh_jpegs(3)
    await declared_upload(api, dataset, files[:2])
    other = await dataset_in_new_project(api, f"declared again {unique}")
    (upload, run), made = await requests_made(stack, declared_upload(api, other, files))
    assert [slot["stored"] for slot in upload["slots"]] == [True, True, False]
    assert [slot["url"] is None for slot in upload["slots"]] == [True, True, False]
    assert (run["state"], run["created"], run["failed"]) == ("SUCCEEDED", 3, 0)
    assert made == {("media", "GET"): 1}, "only the new file is read"
    await wait_samples(api, other, 3)


async def test_the_store_takes_only_the_declared_bytes_with_the_signed_headers(api, dataset, storage) -> None:
    [(name, data)] = fresh_jpegs(1)
    upload = await create_upload(api, dataset, [declared(name, data)])
    [slot] = upload["slots"]
    async with aiohttp.ClientSession() as s3:
        async with s3.put(slot["url"], data=jpeg(1), headers=slot["headers"]) as response:
            assert response.status == 400, "S3 checks the body against x-amz-checksum-sha256"
        async with s3.put(slot["url"], data=data) as response:
            assert response.status == 403, "the headers are signed: a PUT without them is refused"
        async with s3.put(slot["url"], data=data, headers={**slot["headers"], "content-type": "text/html"}) as response:
            assert response.status == 403, "the Content-Type is signed too"
    with pytest.raises(ObjectMissing):
        await storage.get_bytes("media", hashlib.sha256(data).hexdigest())
    run = await complete(api, dataset, upload)
    [item] = await items_of(api, dataset, run["id"])
    assert (run["state"], item["error_code"]) == ("FAILED", "not_uploaded")


async def test_declared_bytes_that_fail_validation_are_refused_and_removed(api, dataset, storage) -> None:
    [(_, good)] = fresh_jpegs(1)
    png = io.BytesIO()
    Image.open(io.BytesIO(good)).save(png, "PNG")
    not_an_image = b"<html>not an image</html>" + uuid.uuid4().bytes
    files = [declared("cut.jpg", good[:300]), declared("page.jpg", not_an_image), declared("png.jpg", png.getvalue())]
    upload = await create_upload(api, dataset, files)
    async with aiohttp.ClientSession() as s3:
        for slot, data in zip(upload["slots"], (good[:300], not_an_image, png.getvalue()), strict=True):
            async with s3.put(slot["url"], data=data, headers=slot["headers"]) as response:
                assert response.status == 200
    run = await complete(api, dataset, upload)
    items = await items_of(api, dataset, run["id"])
    assert (run["state"], [item["error_code"] for item in items]) == (
        "FAILED", ["corrupt", "unsupported_format", "content_type_mismatch"])
    assert "declare its type as image/png" in items[2]["error"]
    for file in files:
        with pytest.raises(ObjectMissing):
            await storage.get_bytes("media", file["sha256"])


async def test_one_file_declared_twice_in_an_upload_is_one_sample(api, dataset) -> None:
    [(name, data)] = fresh_jpegs(1)
    _, run = await declared_upload(api, dataset, [(name, data), (f"again-{name}", data)])
    assert (run["state"], run["created"], run["duplicates"]) == ("SUCCEEDED", 1, 1)


@pytest.mark.parametrize(("file", "path"), [
    ({"sha256": "ab" * 32}, "$.files[0].content_type"),
    ({"content_type": "image/jpeg"}, "$.files[0].sha256"),
    ({"sha256": "AB" * 32, "content_type": "image/jpeg"}, "$.files[0].sha256"),
    ({"sha256": "ab" * 32, "content_type": "text/html"}, "$.files[0].content_type"),
])
async def test_a_declaration_needs_a_hex_sha256_and_an_image_type(api, dataset, file, path) -> None:
    async with api.post(f"{base(dataset)}/datasets/{dataset['id']}/uploads", json={"files": [file]}) as response:
        failure = await problem(response, 422)
    assert failure["path"] == path, failure


async def test_slots_of_declared_and_undeclared_files_mix_in_one_upload(api, dataset) -> None:
    (a, a_data), (b, b_data) = fresh_jpegs(2)
    upload = await create_upload(api, dataset, [declared(a, a_data), {"name": b}])
    staged, direct = upload["slots"][1], upload["slots"][0]
    assert staged["headers"] == {} and "staging" in staged["url"] and direct["headers"]
    async with aiohttp.ClientSession() as s3:
        for slot, data in ((direct, a_data), (staged, b_data)):
            async with s3.put(slot["url"], data=data, headers=slot["headers"]) as response:
                assert response.status == 200
    run = await complete(api, dataset, upload)
    assert (run["state"], run["created"]) == ("SUCCEEDED", 2)
