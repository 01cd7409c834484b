"""Stored buckets: a project keeps an S3 bucket and its keys (sealed) and imports from it by id, the whole prefix
or single objects, against the real stack and a second, external S3."""

from __future__ import annotations

import aiohttp
import pytest

from services.ingest import bucket as bucket_imports
from services.ingest import pipeline, runs
from services.ingest.service import READERS
from tests.external_s3 import ExternalS3
from tests.helpers import base, call, dataset_in_new_project, items_of, wait_run, wait_samples
from tests.integration.test_ingest import ingest_replica


@pytest.fixture
async def dataset(api: aiohttp.ClientSession, unique: str) -> dict:
    return await dataset_in_new_project(api, f"stored buckets {unique}")


def stored(external_s3: ExternalS3, bucket: str, name: str = "frames") -> dict:
    return {"name": name, "bucket": bucket, "endpoint": external_s3.endpoint, "secure": False,
            "access_key": external_s3.access_key, "secret_key": external_s3.secret_key}


async def import_from(api: aiohttp.ClientSession, dataset: dict, body: dict) -> dict:
    run = await call(api, "POST", f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket", 202, json=body)
    return await wait_run(api, dataset, run["id"])


async def test_a_stored_bucket_is_kept_without_showing_its_keys(api, dataset, external_s3: ExternalS3,
                                                               unique) -> None:
    buckets = f"{base(dataset)}/buckets"
    made = await call(api, "POST", buckets, 201, json=stored(external_s3, f"kept-{unique}"))
    assert (made["name"], made["bucket"], made["endpoint"], made["secure"]) == (
        "frames", f"kept-{unique}", external_s3.endpoint, False)
    assert await call(api, "GET", f"{buckets}/{made['id']}") == made
    assert (await call(api, "GET", buckets))["items"] == [made]
    for shown in (made, await call(api, "GET", buckets)):
        assert external_s3.secret_key not in str(shown) and "access_key" not in str(shown)

    again = await call(api, "POST", buckets, 409, json=stored(external_s3, "other"))
    assert again["path"] == "$.name"
    missing_key = {**stored(external_s3, "other", "second"), "secret_key": ""}
    assert (await call(api, "POST", buckets, 422, json=missing_key))["path"] == "$.secret_key"

    await call(api, "DELETE", f"{buckets}/{made['id']}", 204)
    await call(api, "GET", f"{buckets}/{made['id']}", 404)
    assert (await call(api, "GET", buckets))["items"] == []


async def test_stored_buckets_need_the_manager_role(api, dataset, external_s3: ExternalS3, user_client) -> None:
    buckets = f"{base(dataset)}/buckets"
    _, labeler = await user_client(dataset["project_id"], "labeler")
    await call(labeler, "GET", buckets, 403)
    await call(labeler, "POST", buckets, 403, json=stored(external_s3, "anything"))
    _, manager = await user_client(dataset["project_id"], "manager")
    await call(manager, "POST", buckets, 201, json=stored(external_s3, "anything"))


async def test_import_from_a_stored_bucket_its_prefix_or_single_keys(api, dataset, external_s3: ExternalS3,
                                                                     unique) -> None:
    bucket = f"tests-stored-{unique}"
    await external_s3.put_images(bucket, "cams", range(300, 305))
    kept = await call(api, "POST", f"{base(dataset)}/buckets", 201, json=stored(external_s3, bucket))

    run = await import_from(api, dataset, {"bucket_id": kept["id"], "keys": ["cams/301.jpg", "cams/missing.jpg"]})
    assert (run["state"], run["created"], run["failed"], run["source"]) == (
        "PARTIAL", 1, 1, f"s3://{external_s3.endpoint}/{bucket}/")
    created, failed = await items_of(api, dataset, run["id"])
    assert (created["source"], created["name"], created["state"]) == ("cams/301.jpg", "301.jpg", "CREATED")
    assert (failed["state"], failed["error_code"]) == ("FAILED", "unreadable")

    run = await import_from(api, dataset, {"bucket_id": kept["id"], "prefix": "cams/", "metadata": {"rig": "a"}})
    assert (run["state"], run["created"], run["duplicates"]) == ("SUCCEEDED", 4, 1)
    await wait_samples(api, dataset, 5)
    [sample] = (await call(api, "POST", f"{base(dataset)}/samples/search",
                           json={"metadata": {"s3_key": {"eq": "cams/303.jpg"}}}))["items"]
    assert sample["metadata"] == {"rig": "a", "s3_key": "cams/303.jpg"}


async def test_a_stored_bucket_of_another_project_or_with_inline_keys_is_refused(api, dataset, external_s3,
                                                                                 unique) -> None:
    imports = f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket"
    elsewhere = await dataset_in_new_project(api, f"elsewhere {unique}")
    theirs = await call(api, "POST", f"{base(elsewhere)}/buckets", 201, json=stored(external_s3, "theirs"))
    await call(api, "POST", imports, 404, json={"bucket_id": theirs["id"]})
    ours = await call(api, "POST", f"{base(dataset)}/buckets", 201, json=stored(external_s3, "ours"))
    both = await call(api, "POST", imports, 422, json={"bucket_id": ours["id"], "secret_key": "x"})
    assert both["path"] == "$.secret_key"
    assert (await call(api, "POST", imports, 422, json={"bucket_id": ours["id"], "prefix": "a/", "keys": ["b"]})
            )["path"] == "$.keys"
    assert (await call(api, "POST", imports, 422, json={"endpoint": external_s3.endpoint}))["path"] == "$.bucket"


async def test_a_deleted_stored_bucket_is_not_imported_from(api, dataset, external_s3, unique) -> None:
    kept = await call(api, "POST", f"{base(dataset)}/buckets", 201, json=stored(external_s3, f"gone-{unique}"))
    await call(api, "DELETE", f"{base(dataset)}/buckets/{kept['id']}", 204)
    await call(api, "POST", f"{base(dataset)}/datasets/{dataset['id']}/imports/bucket", 404,
               json={"bucket_id": kept["id"]})


async def test_deleting_a_stored_bucket_stops_an_import_still_reading_it(api, dataset, external_s3: ExternalS3,
                                                                        settings, unique) -> None:
    """A run keeps only the stored bucket's id: once the bucket is deleted, its next listing fails, saying so."""
    bucket = f"tests-gone-{unique}"
    await external_s3.put_images(bucket, "x", range(330, 332))
    kept = await call(api, "POST", f"{base(dataset)}/buckets", 201, json=stored(external_s3, bucket))
    org_id = (await call(api, "GET", base(dataset)))["org_id"]
    async with ingest_replica(settings) as rt:
        async with rt.db.acquire() as conn:  # as IMPORT_BUCKET makes it, but with no job: only the test works on it
            run_id = await runs.create_run(conn, dataset["project_id"], dataset["id"], "bucket", "tests", org_id,
                                           "tests", bucket={"bucket_id": kept["id"], "prefix": "x/", "metadata": {}})
        await call(api, "DELETE", f"{base(dataset)}/buckets/{kept['id']}", 204)
        await pipeline.step(rt, run_id, READERS, bucket_imports.list_more)
    run = await wait_run(api, dataset, str(run_id))
    assert (run["state"], run["created"], run["failed"]) == ("FAILED", 0, 1)
    [item] = await items_of(api, dataset, str(run_id))
    assert item["error_code"] == "listing_failed" and "was deleted" in item["error"]
