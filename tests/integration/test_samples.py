"""Datasets and samples end to end: REST → gateway → catalog → Postgres, ingest's MediaStored events
on JetStream, and media redirects to the real S3 server."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import asyncpg
import msgspec
import pytest
from nats.js.api import DeliverPolicy
from PIL import Image

from proto import subjects
from proto.common import EventEnvelope
from proto.ingest import MediaStored, StoredMedia
from proto.samples import FindSamplesByHash, sample_id_for
from shared.bus import Bus, encoder
from shared.consumers import HEADER_ORIGINAL_MSG_ID
from shared.settings import Settings
from shared.storage import Storage
from tests.helpers import add, call, create, dataset, eventually, image_hash, items, own, problem


async def get_sample(api: aiohttp.ClientSession, project_id: str, sample_id: str) -> dict:
    return await call(api, "GET", f"/v1/projects/{project_id}/samples/{sample_id}")


async def set_status(client: aiohttp.ClientSession, project_id: str, sample_id: str, status: str) -> int:
    async with client.put(f"/v1/projects/{project_id}/samples/{sample_id}/status", json={"status": status}) as response:
        return response.status


@pytest.fixture
async def project(api: aiohttp.ClientSession, unique: str) -> dict:
    return await create(api, f"samples {unique}")


@pytest.fixture
async def events(bus: Bus) -> AsyncIterator[asyncio.Queue[tuple[str, EventEnvelope]]]:
    """Every catalog dataset and sample event from now on, as (subject, envelope)."""
    queue: asyncio.Queue[tuple[str, EventEnvelope]] = asyncio.Queue()

    async def put(msg) -> None:
        queue.put_nowait((msg.subject, msgspec.json.decode(msg.data, type=EventEnvelope)))

    subscriptions = [await bus.js.subscribe(subject, cb=put, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
                     for subject in ("loupe.evt.catalog.dataset.>", "loupe.evt.catalog.sample.>")]
    yield queue
    for subscription in subscriptions:
        await subscription.unsubscribe()


async def next_event(queue: asyncio.Queue[tuple[str, EventEnvelope]], project_id: str) -> tuple[str, EventEnvelope]:
    while True:
        subject, envelope = await asyncio.wait_for(queue.get(), 10)
        if envelope.project == project_id:
            return subject, envelope


# -- datasets ---------------------------------------------------------------------------------------

async def test_dataset_create_list_rename_conflicts_delete(api, project, unique, events) -> None:
    base = f"/v1/projects/{project['id']}/datasets"
    train = await dataset(api, project["id"], "train")
    assert (train["name"], train["version"], train["project_id"]) == ("train", 1, project["id"])
    async with api.post(base, json={"name": "TRAIN"}) as response:
        assert (await problem(response, 409))["path"] == "$.name"
    val = await dataset(api, project["id"], "val")
    assert (await next_event(events, project["id"]))[0] == subjects.DATASET_CREATED.subject

    async with api.get(base, params={"limit": "1"}) as response:
        first = await response.json()
    async with api.get(base, params={"limit": "1", "cursor": first["next_cursor"]}) as response:
        second = await response.json()
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [train["id"], val["id"]]
    assert second["next_cursor"] is None

    async with api.patch(f"{base}/{val['id']}", json={"name": "validation", "version": 1}) as response:
        renamed = await response.json()
    assert (renamed["name"], renamed["version"]) == ("validation", 2)
    async with api.patch(f"{base}/{val['id']}", json={"description": "stale", "version": 1}) as response:
        assert (await problem(response, 409))["details"]["current_version"] == 2
    async with api.patch(f"{base}/{val['id']}", json={"name": "Train"}) as response:
        await problem(response, 409)
    async with api.patch(f"{base}/{val['id']}", json={"colour": "red"}) as response:
        await problem(response, 422)

    other = await create(api, f"other {unique}")
    for method in ("GET", "PATCH", "DELETE"):
        async with api.request(method, f"/v1/projects/{other['id']}/datasets/{train['id']}", json={}) as response:
            await problem(response, 404)
    async with api.get(f"{base}/not-a-uuid") as response:
        await problem(response, 404)

    made = await add(api, project["id"], train["id"], items(3, unique))
    async with api.delete(f"{base}/{train['id']}") as response:
        assert response.status == 204
    async with api.get(f"/v1/projects/{project['id']}/samples/{made['items'][0]['id']}") as response:
        await problem(response, 404)
    async with api.delete(f"{base}/{train['id']}") as response:
        await problem(response, 404)
    seen = [await next_event(events, project["id"]) for _ in range(4)]
    assert [s for s, _ in seen] == [subjects.DATASET_CREATED.subject, subjects.DATASET_UPDATED.subject,
                                    subjects.SAMPLES_CREATED.subject, subjects.DATASET_DELETED.subject]
    assert seen[1][1].data["changed"] == ["name"]
    assert seen[3][1].data == {"id": train["id"], "project_id": project["id"], "name": "train", "sample_count": 3}


# -- bulk create ------------------------------------------------------------------------------------

async def test_bulk_create_of_1000_is_one_call_and_one_event_and_recreating_says_existing(
        api, project, unique, events) -> None:
    split = await dataset(api, project["id"], "train")
    new = items(1000, unique)
    created = await add(api, project["id"], split["id"], new)
    assert (created["created"], created["existing"]) == (1000, 0)
    ids = [item["id"] for item in created["items"]]
    assert ids == [sample_id_for(split["id"], item["content_hash"]) for item in new]

    assert (await next_event(events, project["id"]))[0] == subjects.DATASET_CREATED.subject
    subject, envelope = await next_event(events, project["id"])
    assert subject == subjects.SAMPLES_CREATED.subject and len(envelope.data["samples"]) == 1000
    assert envelope.data["samples"][7] == {"id": ids[7], "dataset_id": split["id"], "name": "img_00007.jpg",
                                           "content_hash": new[7]["content_hash"], "media_url": None, "width": 640,
                                           "height": 480, "status": "NEW", "external_id": None,
                                           "metadata": {"index": 7}, "priority": 0.0, "labeler_id": None,
                                           "reviewer_id": None}

    sample = await get_sample(api, project["id"], ids[7])
    assert (sample["name"], sample["width"], sample["size_bytes"], sample["metadata"], sample["status"],
            sample["version"], sample["dataset_id"]) == ("img_00007.jpg", 640, 1007, {"index": 7}, "NEW", 1,
                                                         split["id"])

    external = {"media_url": "https://example.com/cat.jpg", "name": "cat", "width": 10, "height": 10}
    again = await add(api, project["id"], split["id"], [*new[:10], external])
    assert (again["created"], again["existing"]) == (1, 10)
    assert [i["outcome"] for i in again["items"]] == ["existing"] * 10 + ["created"]
    assert [i["id"] for i in again["items"][:10]] == ids[:10]

    # The same image under a caller-chosen id is still the sample that exists; a chosen id is kept.
    chosen = str(uuid.uuid4())
    mixed = await add(api, project["id"], split["id"], [{**new[0], "id": str(uuid.uuid4())},
                                                        {**items(1, f"{unique}-x")[0], "id": chosen}])
    assert [(i["id"], i["outcome"]) for i in mixed["items"]] == [(ids[0], "existing"), (chosen, "created")]


async def test_one_bad_item_fails_the_whole_call_and_names_it(api, project, unique) -> None:
    split = await dataset(api, project["id"], "train")
    other = await dataset(api, project["id"], "other")
    url = f"/v1/projects/{project['id']}/datasets/{split['id']}/samples"
    good = items(10, unique)
    await own(api, [item["content_hash"] for item in good])
    taken = (await add(api, project["id"], other["id"], items(1, f"{unique}-taken")))["items"][0]["id"]

    cases = [
        ({7: {"width": 0}}, 422, "$.items[7].width"),
        ({3: {"media_url": "https://example.com/a.jpg"}}, 422, "$.items[3]"),
        ({5: {"content_hash": "XYZ"}}, 422, "$.items[5].content_hash"),
        ({9: {"content_hash": good[2]["content_hash"]}}, 422, "$.items[9].content_hash"),
        ({4: {"colour": "red"}}, 422, "$.items[4]"),
        ({6: {"id": taken}}, 409, "$.items[6].id"),
    ]
    for changes, status, path in cases:
        body = [{**item, **changes.get(i, {})} for i, item in enumerate(good)]
        async with api.post(url, json={"items": body}) as response:
            assert (await problem(response, status))["path"] == path, changes
    async with api.post(url, json={"items": []}) as response:
        assert (await problem(response, 422))["path"] == "$.items"
    for item in good:
        async with api.get(f"/v1/projects/{project['id']}/samples/"
                           f"{sample_id_for(split['id'], item['content_hash'])}") as response:
            await problem(response, 404)


# -- updates and the status workflow ----------------------------------------------------------------

async def test_update_one_sample_metadata_patch_assignment_and_version(api, project, unique, user_client) -> None:
    split = await dataset(api, project["id"], "train")
    [ident] = [i["id"] for i in (await add(api, project["id"], split["id"], items(1, unique)))["items"]]
    labeler_id, _ = await user_client(project["id"], "labeler")
    url = f"/v1/projects/{project['id']}/samples/{ident}"

    async with api.patch(url, json={"name": "renamed.jpg", "metadata_patch": {"index": None, "camera": "left"},
                                    "tags": ["night"], "priority": 2.5, "labeler_id": labeler_id,
                                    "external_id": "ext-1", "version": 1}) as response:
        updated = await response.json()
    assert (updated["name"], updated["metadata"], updated["tags"], updated["priority"], updated["labeler_id"],
            updated["external_id"], updated["version"]) == ("renamed.jpg", {"camera": "left"}, ["night"], 2.5,
                                                            labeler_id, "ext-1", 2)
    async with api.patch(url, json={"metadata": {"whole": True}, "external_id": None}) as response:
        updated = await response.json()
    assert (updated["metadata"], updated["external_id"], updated["version"]) == ({"whole": True}, None, 3)
    async with api.patch(url, json={"name": "again.jpg", "version": 1}) as response:
        body = await problem(response, 409)
    assert (body["path"], body["details"]["current_version"]) == ("$.version", 3)
    async with api.patch(url, json={"reviewer_id": str(uuid.uuid4())}) as response:
        assert (await problem(response, 422))["path"] == "$.reviewer_id"
    async with api.patch(url, json={"metadata": {}, "metadata_patch": {}}) as response:
        assert (await problem(response, 422))["path"] == "$.metadata_patch"
    async with api.patch(url, json={"name": "renamed.jpg"}) as response:
        assert (await response.json())["version"] == 3  # nothing changed, nothing written


async def test_status_steps_follow_the_workflow_and_the_callers_role(api, project, unique, user_client) -> None:
    split = await dataset(api, project["id"], "train")
    a, b = [i["id"] for i in (await add(api, project["id"], split["id"], items(2, unique)))["items"]]
    _, labeler = await user_client(project["id"], "labeler")
    _, reviewer = await user_client(project["id"], "reviewer")
    _, viewer = await user_client(project["id"], "viewer")

    assert (await set_status(viewer, project["id"], a, "IN_PROGRESS")) == 403
    assert (await set_status(labeler, project["id"], a, "IN_PROGRESS")) == 200
    assert (await set_status(labeler, project["id"], a, "TO_REVIEW")) == 200
    async with labeler.put(f"/v1/projects/{project['id']}/samples/{a}/status", json={"status": "DONE"}) as response:
        body = await problem(response, 403)
    assert body["details"] == {"role": "labeler", "needed": "reviewer"} and body["path"] == "$.status"
    async with labeler.patch(f"/v1/projects/{project['id']}/samples/{a}", json={"name": "mine"}) as response:
        await problem(response, 403)  # other fields are a manager's
    assert (await set_status(reviewer, project["id"], a, "DONE")) == 200

    async with api.put(f"/v1/projects/{project['id']}/samples/{b}/status", json={"status": "COMPLETED"}) as response:
        body = await problem(response, 409)
    assert (body["details"]["current"], body["details"]["requested"]) == ("NEW", "COMPLETED")
    assert "IN_PROGRESS" in body["details"]["allowed"] and "IN_PROGRESS" in body["detail"]
    async with api.put(f"/v1/projects/{project['id']}/samples/{b}/status",
                       json={"status": "SKIPPED", "version": 9}) as response:
        await problem(response, 409)

    # Bulk: one forbidden step fails every item, and says which.
    async with api.patch(f"/v1/projects/{project['id']}/samples",
                         json={"items": [{"id": b, "status": "IN_PROGRESS"}, {"id": a, "status": "NEW"}]}) as response:
        assert (await problem(response, 409))["path"] == "$.items[1].status"
    assert (await get_sample(api, project["id"], b))["status"] == "NEW"
    sample = await get_sample(api, project["id"], a)
    assert (sample["status"], sample["version"]) == ("DONE", 4)


async def test_bulk_update_is_all_or_nothing_and_emits_one_event(api, project, unique, events) -> None:
    split = await dataset(api, project["id"], "train")
    ids = [i["id"] for i in (await add(api, project["id"], split["id"], items(5, unique)))["items"]]
    for _ in range(2):  # dataset and samples created
        await next_event(events, project["id"])
    url = f"/v1/projects/{project['id']}/samples"

    async with api.patch(url, json={"items": [{"id": ids[0], "priority": 1.0},
                                              {"id": ids[1], "priority": 1.0, "version": 7}]}) as response:
        body = await problem(response, 409)
    assert (body["path"], body["details"]["id"]) == ("$.items[1].version", ids[1])
    async with api.patch(url, json={"items": [{"id": ids[0], "priority": 1.0}, {"id": str(uuid.uuid4())}]}) as response:
        assert (await problem(response, 404))["path"] == "$.items[1].id"
    async with api.patch(url, json={"items": [{"id": ids[0]}, {"id": ids[0]}]}) as response:
        assert (await problem(response, 422))["path"] == "$.items[1].id"
    assert (await get_sample(api, project["id"], ids[0]))["priority"] == 0

    async with api.patch(url, json={"items": [{"id": ident, "tags": ["sunny"], "status": "IN_PROGRESS", "version": 1}
                                              for ident in ids]}) as response:
        result = await response.json()
    assert [(i["id"], i["version"], i["changed"]) for i in result["items"]] == [
        (ident, 2, ["status", "tags"]) for ident in ids]
    subject, envelope = await next_event(events, project["id"])
    assert subject == subjects.SAMPLES_UPDATED.subject and envelope.data["changed"] == ["status", "tags"]
    assert sorted(s["id"] for s in envelope.data["samples"]) == sorted(ids)
    assert {s["status"] for s in envelope.data["samples"]} == {"IN_PROGRESS"}


# -- delete, move, other projects -------------------------------------------------------------------

async def test_delete_one_and_many(api, project, unique, events) -> None:
    split = await dataset(api, project["id"], "train")
    ids = [i["id"] for i in (await add(api, project["id"], split["id"], items(4, unique)))["items"]]
    for _ in range(2):  # dataset and samples created
        await next_event(events, project["id"])
    async with api.delete(f"/v1/projects/{project['id']}/samples/{ids[0]}") as response:
        assert response.status == 204
    async with api.delete(f"/v1/projects/{project['id']}/samples/{ids[0]}") as response:
        await problem(response, 404)
    delete = f"/v1/projects/{project['id']}/samples/delete"
    async with api.post(delete, json={"ids": [ids[1], ids[0]]}) as response:
        assert (await problem(response, 404))["path"] == "$.ids[1]"
    await get_sample(api, project["id"], ids[1])  # the failed call deleted nothing
    async with api.post(delete, json={"ids": ids[1:]}) as response:
        assert await response.json() == {"deleted": 3}
    seen = [await next_event(events, project["id"]) for _ in range(2)]
    assert [s for s, _ in seen] == [subjects.SAMPLES_DELETED.subject] * 2
    assert seen[0][1].data["ids"] == [ids[0]] and sorted(seen[1][1].data["ids"]) == sorted(ids[1:])


async def test_move_between_datasets_and_a_duplicate_image_is_409_naming_both(api, project, unique, events) -> None:
    train, val, test = [await dataset(api, project["id"], name) for name in ("train", "val", "test")]
    batch = items(4, unique)
    in_train = [i["id"] for i in (await add(api, project["id"], train["id"], batch))["items"]]
    in_val = [i["id"] for i in (await add(api, project["id"], val["id"], batch[:1]))["items"]]
    in_test = [i["id"] for i in (await add(api, project["id"], test["id"], batch[1:2]))["items"]]
    move = f"/v1/projects/{project['id']}/samples/move"

    async with api.post(move, json={"ids": [in_train[2], in_train[0]], "dataset_id": val["id"]}) as response:
        body = await problem(response, 409)
    assert body["path"] == "$.ids[1]" and sorted(body["details"]["samples"]) == sorted([in_train[0], in_val[0]])
    async with api.post(move, json={"ids": [in_train[1], in_test[0]], "dataset_id": val["id"]}) as response:
        body = await problem(response, 409)
    assert sorted(body["details"]["samples"]) == sorted([in_train[1], in_test[0]])
    assert (await get_sample(api, project["id"], in_train[1]))["dataset_id"] == train["id"]

    async with api.post(move, json={"ids": in_train[1:] + in_val, "dataset_id": val["id"]}) as response:
        assert await response.json() == {"moved": 3, "unchanged": 1}
    moved = await get_sample(api, project["id"], in_train[1])
    assert (moved["dataset_id"], moved["version"]) == (val["id"], 2)

    # The moved image can be added to train again: its derived id went along, so it gets a new one.
    again = await add(api, project["id"], train["id"], batch[1:2])
    assert again["items"][0]["outcome"] == "created" and again["items"][0]["id"] != in_train[1]

    async with api.post(move, json={"ids": in_train[:1], "dataset_id": str(uuid.uuid4())}) as response:
        assert (await problem(response, 404))["path"] == "$.dataset_id"
    async with api.post(move, json={"ids": [str(uuid.uuid4())], "dataset_id": val["id"]}) as response:
        assert (await problem(response, 404))["path"] == "$.ids[0]"
    subjects_seen = []
    while len(subjects_seen) < 8:
        subjects_seen.append((await next_event(events, project["id"]))[0])
    assert subjects_seen.count(subjects.SAMPLES_MOVED.subject) == 1


async def test_a_sample_of_another_project_is_404_everywhere(api, project, unique) -> None:
    split = await dataset(api, project["id"], "train")
    [ident] = [i["id"] for i in (await add(api, project["id"], split["id"], items(1, unique)))["items"]]
    other = await create(api, f"elsewhere {unique}")
    other_split = await dataset(api, other["id"], "train")
    base = f"/v1/projects/{other['id']}/samples"
    for method, path, body in (("GET", f"/{ident}", None), ("PATCH", f"/{ident}", {"name": "x"}),
                               ("PUT", f"/{ident}/status", {"status": "IN_PROGRESS"}), ("DELETE", f"/{ident}", None),
                               ("GET", f"/{ident}/media", None), ("GET", f"/{ident}/thumbnail", None),
                               ("GET", f"/{ident}/urls", None), ("GET", "/not-a-uuid", None)):
        async with api.request(method, base + path, json=body, allow_redirects=False) as response:
            await problem(response, 404)
    async with api.post(f"{base}/move", json={"ids": [ident], "dataset_id": other_split["id"]}) as response:
        assert (await problem(response, 404))["path"] == "$.ids[0]"
    async with api.patch(base, json={"items": [{"id": ident, "name": "x"}]}) as response:
        assert (await problem(response, 404))["path"] == "$.items[0].id"
    async with api.post(f"/v1/projects/{other['id']}/datasets/{split['id']}/samples",
                        json={"items": items(1, unique)}) as response:
        await problem(response, 404)
    assert (await get_sample(api, project["id"], ident))["name"] == "img_00000.jpg"


# -- registration from ingest -----------------------------------------------------------------------

async def publish_stored(bus: Bus, stored: MediaStored, msg_id: str, original_id: str | None = None) -> None:
    envelope = EventEnvelope(id=msg_id, type=subjects.MEDIA_STORED.subject.removeprefix(subjects.EVENT_PREFIX),
                             time=datetime.now(UTC), project=stored.project_id, data=stored)
    headers = {subjects.HEADER_MSG_ID: msg_id}
    if original_id is not None:  # a redelivery past JetStream's duplicate window, as a replay sends it
        headers[HEADER_ORIGINAL_MSG_ID] = original_id
    await bus.js.publish(subjects.MEDIA_STORED.subject, encoder.encode(envelope), headers=headers)


async def test_media_stored_events_register_samples_once(api, bus, project, unique, events) -> None:
    split = await dataset(api, project["id"], "train")
    await next_event(events, project["id"])  # dataset created

    def stored(prefix: str, count: int, dataset_id: str = split["id"]) -> MediaStored:
        return MediaStored(project_id=project["id"], dataset_id=dataset_id, run_id=f"run-{unique}", items=[
            StoredMedia(sample_id=sample_id_for(dataset_id, image_hash(f"{prefix}/{i}")),
                        sha256=image_hash(f"{prefix}/{i}"), format="png", width=32, height=24, size=99,
                        name=f"{prefix}-{i}.png", metadata={"i": i}) for i in range(count)])

    batch = stored(unique, 50)
    first = str(uuid.uuid4())
    await publish_stored(bus, batch, first)
    await publish_stored(bus, batch, f"{first}:again", original_id=first)  # the same message again
    await publish_stored(bus, batch, str(uuid.uuid4()))  # another message with the same images
    await publish_stored(bus, stored(f"{unique}-gone", 3, str(uuid.uuid4())), str(uuid.uuid4()))  # no such dataset
    sentinel = stored(f"{unique}-last", 1)
    await publish_stored(bus, sentinel, str(uuid.uuid4()))
    # Events are handled in order: once the last one made its sample, the others were handled too.
    await eventually(lambda: get_sample(api, project["id"], sentinel.items[0].sample_id), interval=0.1)

    sample = await get_sample(api, project["id"], batch.items[3].sample_id)
    assert (sample["name"], sample["format"], sample["content_hash"], sample["metadata"], sample["version"]) == (
        f"{unique}-3.png", "png", batch.items[3].sha256, {"i": 3}, 1)
    created = [await next_event(events, project["id"]) for _ in range(2)]
    assert [len(envelope.data["samples"]) for _, envelope in created] == [50, 1]
    assert created[0][1].data["run_id"] == f"run-{unique}"
    assert events.empty() or (await next_event(events, project["id"]))[0] != subjects.SAMPLES_CREATED.subject

    found = await bus.request(subjects.FIND_SAMPLES, FindSamplesByHash(
        project_id=project["id"], dataset_id=split["id"], content_hashes=[batch.items[0].sha256, "ff" * 32]))
    assert found.found == {batch.items[0].sha256: batch.items[0].sample_id}
    async with api.get("/v1/admin/services/catalog/dead-letters") as response:
        assert all(letter["subject"] != subjects.MEDIA_STORED.subject for letter in (await response.json())["items"])

    # A bulk create of the same images afterwards finds them.
    again = await add(api, project["id"], split["id"], [
        {"content_hash": m.sha256, "name": m.name, "width": 1, "height": 1} for m in batch.items[:2]])
    assert [i["outcome"] for i in again["items"]] == ["existing", "existing"]


async def annotation_has_handled(bus: Bus, stream_seq: int) -> None:
    """Until annotation has handled the events stream up to `stream_seq`."""
    async def handled() -> bool:
        info = await bus.js.consumer_info(subjects.EVENTS_STREAM, "annotation-events")
        assert info.ack_floor.stream_seq >= stream_seq, f"annotation still has events to handle: {info}"
        return True
    await eventually(handled)


async def test_a_creation_event_that_comes_late_leaves_annotation_the_newer_facts_it_has(
        api, bus, project, unique, events, settings) -> None:
    """Annotation may learn of a sample before its creation event (a label write that outran the event asks
    the catalog), or get the event again; the sample's facts at creation must not undo what came since."""
    split = await dataset(api, project["id"], "train")
    [sample] = (await add(api, project["id"], split["id"], items(1, unique)))["items"]
    subject, created = await next_event(events, project["id"])
    while subject != subjects.SAMPLES_CREATED.subject:
        subject, created = await next_event(events, project["id"])
    await call(api, "PATCH", f"/v1/projects/{project['id']}/samples/{sample['id']}", json={"name": "renamed.jpg"})
    subject, _ = await next_event(events, project["id"])
    assert subject == subjects.SAMPLES_UPDATED.subject

    again = await bus.js.publish(subjects.SAMPLES_CREATED.subject, encoder.encode(created),
                                 headers={subjects.HEADER_MSG_ID: str(uuid.uuid4())})
    await annotation_has_handled(bus, again.seq)
    db = await asyncpg.connect(settings.database_url)
    try:
        name = await db.fetchval("SELECT name FROM annotation.samples WHERE id = $1", uuid.UUID(sample["id"]))
    finally:
        await db.close()
    assert name == "renamed.jpg"


# -- media ------------------------------------------------------------------------------------------

def jpeg(colour: str, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


class Media(msgspec.Struct, frozen=True):
    ids: list[str]  # a sample with a thumbnail, one whose thumbnail is not made yet, one with external media
    original: bytes
    thumbnail: bytes
    no_thumb: bytes


async def three_kinds_of_media(api: aiohttp.ClientSession, project: dict, settings: Settings) -> Media:
    split = await dataset(api, project["id"], "train")
    original, thumbnail = jpeg("red", (320, 240)), jpeg("red", (16, 12))  # past 256: not its own thumbnail
    content_hash = hashlib.sha256(original).hexdigest()
    storage = Storage(settings)
    await storage.put_bytes("media", content_hash, original, "image/jpeg")
    await storage.put_bytes("thumbs", content_hash, thumbnail, "image/jpeg")
    no_thumb = jpeg("blue", (300, 300))
    await storage.put_bytes("media", hashlib.sha256(no_thumb).hexdigest(), no_thumb, "image/jpeg")
    await storage.close()
    ids = [i["id"] for i in (await add(api, project["id"], split["id"], [
        {"content_hash": content_hash, "name": "red.jpg", "width": 320, "height": 240},
        {"content_hash": hashlib.sha256(no_thumb).hexdigest(), "name": "blue.jpg", "width": 300, "height": 300},
        {"media_url": "https://images.example.com/cat.jpg", "name": "cat.jpg", "width": 8, "height": 8}]))["items"]]
    return Media(ids, original, thumbnail, no_thumb)


async def test_media_and_thumbnail_redirect_to_presigned_urls(api, anonymous, project, settings: Settings) -> None:
    media = await three_kinds_of_media(api, project, settings)
    ids, original, thumbnail, no_thumb = media.ids, media.original, media.thumbnail, media.no_thumb
    base = f"/v1/projects/{project['id']}/samples"

    async with aiohttp.ClientSession() as plain:  # presigned URLs need no API key
        for path, expected in ((f"{ids[0]}/media", original), (f"{ids[0]}/thumbnail", thumbnail),
                               (f"{ids[1]}/media", no_thumb)):
            async with api.get(f"{base}/{path}", allow_redirects=False) as response:
                assert response.status == 302, await response.text()
                location = response.headers["Location"]
            async with plain.get(location) as response:
                assert response.status == 200 and await response.read() == expected

        async with api.get(f"{base}/{ids[0]}/urls") as response:
            urls = await response.json()
        assert urls["expires_in"] > 0 and urls["sample_id"] == ids[0]
        async with plain.get(urls["thumbnail_url"]) as response:
            assert await response.read() == thumbnail
        async with plain.get(urls["original_url"]) as response:
            assert await response.read() == original

    async with api.get(f"{base}/{ids[1]}/thumbnail", allow_redirects=False) as response:
        assert "no thumbnail yet" in (await problem(response, 404))["detail"]
    async with api.get(f"{base}/{ids[1]}/urls") as response:
        assert (await response.json())["thumbnail_url"] is None
    async with api.get(f"{base}/{ids[2]}/media", allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"] == "https://images.example.com/cat.jpg"
    async with api.get(f"{base}/{ids[2]}/thumbnail", allow_redirects=False) as response:
        await problem(response, 404)

    async with anonymous.get("/openapi.json") as response:
        document = await response.json()
    redirect = document["paths"]["/v1/projects/{project_id}/samples/{sample_id}/media"]["get"]
    assert redirect["operationId"] == "redirectSampleMedia" and "Location" in redirect["responses"]["302"]["headers"]


async def test_urls_of_many_samples_in_one_call(api, project, settings: Settings, user_client) -> None:
    media = await three_kinds_of_media(api, project, settings)
    a_thumb, not_made, external = media.ids
    gone = str(uuid.uuid4())
    _, viewer = await user_client(project["id"], "viewer")
    url = f"/v1/projects/{project['id']}/samples/urls"

    thumbs = await call(viewer, "POST", url, json={"sample_ids": [external, a_thumb, gone, a_thumb, not_made]})
    assert [i["sample_id"] for i in thumbs["items"]] == [external, a_thumb, not_made]  # as asked, once each
    assert thumbs["missing"] == [gone] and thumbs["expires_in"] > 0
    originals = await call(viewer, "POST", url, json={"sample_ids": [a_thumb, not_made], "variant": "original"})
    async with aiohttp.ClientSession() as plain:  # presigned URLs need no API key
        for signed, expected in ((thumbs["items"][1], media.thumbnail), (originals["items"][0], media.original),
                                 (originals["items"][1], media.no_thumb)):
            async with plain.get(signed["url"]) as response:
                assert response.status == 200 and await response.read() == expected
        # Signed without asking the bucket: a thumbnail not made yet answers 404 until ingest makes it.
        async with plain.get(thumbs["items"][2]["url"]) as response:
            assert response.status == 404
    assert thumbs["items"][0]["url"] == "https://images.example.com/cat.jpg"  # external media has no thumbnail

    assert (await call(api, "POST", url, 422, json={"sample_ids": []}))["path"] == "$.sample_ids"
    too_many = [str(uuid.uuid4()) for _ in range(501)]
    assert (await call(api, "POST", url, 422, json={"sample_ids": too_many}))["path"] == "$.sample_ids"
    assert (await call(api, "POST", url, 422, json={"sample_ids": [a_thumb], "variant": "big"}))["path"] == "$.variant"
    _, outsider = await user_client()
    await call(outsider, "POST", url, 404, json={"sample_ids": [a_thumb]})
