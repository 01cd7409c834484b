"""The Sieve dialect (`/sieve/v1/...`) with plain HTTP, as Sieve's document writes its flows: init a project,
add and delete tags, push training data (with the `metadata` extension) and data to tag, follow tag status
until live, and query by job id, image ids and metadata subset; the tags of images the tagger never saw are
right at least 90 % of the time."""

from __future__ import annotations

import io
import uuid
from typing import Any

import aiohttp
import pytest

from loupe import synth
from loupe.stack import Stack
from tests.helpers import call, eventually
from tests.media_server import MediaServer

pytestmark = pytest.mark.timeout(600)

TAGS = ("weather", "colour")
TRAIN_IMAGES = 160
NEW_IMAGES = 30
TAGGER = {"epochs": 12, "batch_size": 16, "image_size": 64, "learning_rate": 5e-3, "workers": 0}


@pytest.fixture(scope="module")
async def sieve(stack: Stack) -> Any:
    """A client of the dialect as Sieve's curl examples call it: `X-API-Key` and JSON bodies."""
    async with aiohttp.ClientSession(f"{stack.gateway_url}/sieve/v1/", headers={"X-API-Key": stack.admin_key}) as s:
        yield s


async def sieve_call(session: aiohttp.ClientSession, path: str, body: dict | None = None, expect: int = 200) -> Any:
    async with session.request("POST" if body is not None else "GET", path, json=body) as response:
        assert response.status == expect, (path, await response.text())
        return await response.json()


def served(media_server: MediaServer, images: list[synth.SynthImage], prefix: str) -> list[str]:
    """The images' URLs on the test's media server, under a public name as a customer's CDN would be."""
    urls = []
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        image.image.save(buffer, format="PNG")
        name = f"{prefix}-{index}.png"
        media_server.files[name] = buffer.getvalue()
        urls.append(media_server.url(f"/files/{name}", public=True))
    return urls


def tags_of(image: synth.SynthImage) -> dict[str, str]:
    return {tag: image.tags[tag] for tag in TAGS}


async def test_the_documented_flows_tag_unseen_images_and_query_them(
    sieve: aiohttp.ClientSession, api: aiohttp.ClientSession, media_server: MediaServer
) -> None:
    name = f"sieve_{uuid.uuid4().hex[:8]}"
    made = await sieve_call(sieve, "init_project", {"project_name": name})
    assert made == {"description": f"Created project {name}", "project_id": made["project_id"]}
    for path in ("get_projects", "get_all_projects"):
        listed = await sieve_call(sieve, path)
        assert listed["description"] == "successful" and name in listed["projects"]

    tags = [{"name": tag, "description": f"the {tag}"} for tag in (*TAGS, "angle")]
    assert await sieve_call(sieve, "add_tags", {"project_name": name, "tags": tags}) == {"description": "pushed tags"}
    deleted = await sieve_call(sieve, "delete_tags", {"project_name": name, "tags": ["angle"]})
    assert deleted == {"description": "successful", "tags": [{"name": "angle", "description": "the angle"}]}
    status = await sieve_call(sieve, "get_tag_status", {"project_name": name})
    assert status == {"description": "successful", "tag_status": [{"name": t, "status": "queued"} for t in TAGS]}

    # Small enough to train in the test's time; set natively, as any project's training configuration.
    await call(api, "PUT", f"/v1/projects/{made['project_id']}/training/config", json=TAGGER)
    train = list(synth.generate(TRAIN_IMAGES, size=64, seed=31))
    pushed = await sieve_call(
        sieve,
        "push_data",
        {
            "project_name": name,
            "urls": served(media_server, train, name),
            "train": True,
            "metadata": [tags_of(image) for image in train],
        },
    )
    assert len(pushed["image_ids"]) == TRAIN_IMAGES and pushed["job_id"] and pushed["training_run_id"]

    async def statuses() -> set[str]:
        found = await sieve_call(sieve, "get_tag_status", {"project_name": name})
        return {item["status"] for item in found["tag_status"]}

    assert await statuses() <= {"training", "live"}
    await eventually(lambda: _is(statuses(), {"live"}), timeout=420, interval=1)

    new = list(synth.generate(NEW_IMAGES, size=64, seed=32))
    to_tag = await sieve_call(
        sieve, "push_data", {"project_name": name, "urls": served(media_server, new, f"{name}-new")}
    )
    assert len(to_tag["image_ids"]) == NEW_IMAGES and to_tag["tagging_job_id"]

    async def tagged() -> list[dict]:
        rows = (await sieve_call(sieve, "get_metadata_by_job_id", {"project_name": name, "job_id": to_tag["job_id"]}))[
            "metadata"
        ]
        return rows if all(set(TAGS) <= set(row) for row in rows) else []

    rows = await eventually(tagged, timeout=120, interval=0.5)
    assert [row["image_id"] for row in rows] == to_tag["image_ids"]
    assert all(row["job_id"] == to_tag["job_id"] for row in rows)
    urls = served(media_server, new, f"{name}-new")
    assert [row["url"] for row in rows] == urls
    right = sum(row[tag] == image.tags[tag] for row, image in zip(rows, new, strict=True) for tag in TAGS)
    assert right / (len(rows) * len(TAGS)) >= 0.9, [
        (tags_of(i), {t: r[t] for t in TAGS}) for r, i in zip(rows, new, strict=True)
    ]

    # The other spellings, image ids, and subsets.
    same = await sieve_call(sieve, "get_metadata_from_job_id", {"project_name": name, "job_id": to_tag["job_id"]})
    assert same["metadata"] == rows
    for path in ("get_metadata_by_image_ids", "get_metadata_from_image_ids"):
        one = await sieve_call(sieve, path, {"project_name": name, "image_ids": [rows[1]["image_id"]]})
        assert one == {"description": "successful", "metadata": [rows[1]]}
    training_rows = (
        await sieve_call(sieve, "get_metadata_by_job_id", {"project_name": name, "job_id": pushed["job_id"]})
    )["metadata"]
    assert [{t: r[t] for t in TAGS} for r in training_rows] == [tags_of(image) for image in train]
    everything = training_rows + rows
    subset = {"colour": [rows[0]["colour"]], "weather": ["fog", "rain"]}
    expected = [
        r["image_id"] for r in everything if r["colour"] == subset["colour"][0] and r["weather"] in ("fog", "rain")
    ]
    for path in ("get_metadata_by_subset", "get_metadata_subset", "get_by_metadata"):
        found = await sieve_call(sieve, path, {"project_name": name, "tags": subset})
        assert sorted(r["image_id"] for r in found["metadata"]) == sorted(expected) and expected

    # The same images, seen natively: training images with their tags as ground truth.
    label = await call(
        api, "GET", f"/v1/projects/{made['project_id']}/samples/{pushed['image_ids'][0]}/labels/ground-truth"
    )
    assert len(label["tag_class_ids"]) == len(TAGS) and label["status"] == "LABELED"
    # And the other way round: a person relabels a training image in Loupe, and Sieve's queries show it.
    other = next(i for i, image in enumerate(train) if tags_of(image) != tags_of(train[0]))
    labels = f"/v1/projects/{made['project_id']}/samples/{{}}/labels/ground-truth"
    relabelled = await call(api, "GET", labels.format(pushed["image_ids"][other]))
    await call(api, "PUT", labels.format(pushed["image_ids"][0]), json={"tag_class_ids": relabelled["tag_class_ids"]})
    seen = await sieve_call(
        sieve, "get_metadata_by_image_ids", {"project_name": name, "image_ids": [pushed["image_ids"][0]]}
    )
    assert {t: seen["metadata"][0][t] for t in TAGS} == tags_of(train[other])


async def _is(found: Any, expected: set[str]) -> bool:
    return await found == expected


async def test_refusals_say_what_to_fix(sieve: aiohttp.ClientSession, media_server: MediaServer) -> None:
    missing = await sieve_call(sieve, "add_tags", {"project_name": "no such project", "tags": [{"name": "x"}]}, 404)
    assert "init_project" in missing["description"]
    name = f"sieve_{uuid.uuid4().hex[:8]}"
    await sieve_call(sieve, "init_project", {"project_name": name})
    url = media_server.url("/img/3.jpg", public=True)
    for body, path in (
        ({"urls": [url], "train": True, "metadata": [{}, {}]}, "metadata"),
        ({"urls": [url], "metadata": [{"weather": "fog"}]}, "metadata"),
        ({"urls": [url], "train": True, "metadata": [{"glare": 1}]}, "metadata[0].glare"),
    ):
        refused = await sieve_call(sieve, "push_data", {"project_name": name, **body}, 400)
        assert refused["path"] == path, refused
    refused = await sieve_call(sieve, "get_metadata_by_job_id", {"project_name": name, "job_id": "nope"}, 400)
    assert refused["path"] == "job_id"
    await sieve_call(sieve, "delete_tags", {"project_name": name, "tags": ["glare"]}, 400)


async def test_images_pushed_before_any_tagger_wait_untagged(
    sieve: aiohttp.ClientSession, media_server: MediaServer
) -> None:
    name = f"sieve_{uuid.uuid4().hex[:8]}"
    await sieve_call(sieve, "init_project", {"project_name": name})
    await sieve_call(sieve, "add_tags", {"project_name": name, "tags": [{"name": "weather"}]})
    urls = [media_server.url(f"/img/{seed}.jpg", public=True) for seed in (41, 42, 41)]  # the first URL twice
    pushed = await sieve_call(sieve, "push_data", {"project_name": name, "urls": urls})
    assert pushed["tagging_job_id"] is None and pushed["image_ids"][0] == pushed["image_ids"][2]
    rows = await sieve_call(sieve, "get_metadata_by_job_id", {"project_name": name, "job_id": pushed["job_id"]})
    assert [(row["image_id"], row["url"]) for row in rows["metadata"]] == list(
        zip(pushed["image_ids"][:2], urls[:2], strict=True)
    )
    subset = await sieve_call(sieve, "get_metadata_by_subset", {"project_name": name, "tags": {"weather": ["fog"]}})
    assert subset["metadata"] == []
