"""Labels end to end: REST → gateway → annotation (validating against its own read models of the
catalog's schema and samples) → Postgres, and LabelChanged back into the catalog's search."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import aiohttp
import asyncpg
import msgspec
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from loupe.stack import Stack
from proto import subjects
from proto.annotation import LabelChanged, LabelSummary, SampleObjectInput, UpsertObjects, UpsertObjectsRequest
from proto.common import Caller, EventEnvelope
from proto.schema import LabelClass, LabelClassChanged
from services.catalog import schema_versions
from shared.bus import Bus
from shared.errors import LoupeError
from shared.settings import Settings
from tests.helpers import Project, call, eventually, make_project, names, requests_sent


@pytest.fixture
async def project(api: aiohttp.ClientSession, unique: str) -> Project:
    return await make_project(api, unique)


def png_of(mask: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


async def test_put_then_get_every_shape(api: aiohttp.ClientSession, project: Project) -> None:
    mask = np.zeros((480, 640), dtype=np.uint8, order="F")
    mask[100:200, 300:420] = 1
    rle = mask_utils.encode(mask)
    objects = [
        project.box(10, 20, 110, 220, attributes={project.attribute: 2}),
        {"class_id": project.classes["car"], "shape": {"type": "polygon", "points": [[0, 0], [100, 0], [100, 100], [0, 100]],
                                                        "holes": [[[10, 10], [20, 10], [20, 20]]]}, "z_index": 2},
        {"class_id": project.classes["car"], "shape": {"type": "polyline", "points": [[1, 1], [50, 60]]}},
        {"class_id": project.classes["car"], "shape": {"type": "point", "point": [5, 5]}, "confidence": 0.5},
        {"class_id": project.classes["person"],
         "shape": {"type": "keypoints", "keypoints": [[10, 10, 2], [0, 0, 0], [30, 40, 1]]}},
        {"class_id": project.classes["car"], "shape": {"type": "mask", "rle": {"size": [480, 640],
                                                                                "counts": rle["counts"].decode()}}},
        {"class_id": project.classes["car"], "shape": {"type": "mask", "png": png_of(mask)}, "external_id": "m-2"},
    ]
    label = await call(api, "PUT", project.label(project.samples[0]), json={
        "status": "LABELED", "objects": objects, "tag_class_ids": [project.tags["day"]]})
    assert label["version"] == 1 and label["status"] == "LABELED"
    assert [o["shape"]["type"] for o in label["objects"]] == ["bbox", "polygon", "polyline", "point", "keypoints",
                                                              "mask", "mask"]
    # A PNG mask is stored as the same compressed RLE.
    assert label["objects"][5]["shape"]["rle"] == label["objects"][6]["shape"]["rle"]
    assert label["objects"][6]["shape"]["rle"]["counts"] == rle["counts"].decode()
    again = await call(api, "GET", project.label(project.samples[0]))
    assert again == label
    # Sending the label back unchanged keeps every object's version, and the label's grows by one.
    same = await call(api, "PUT", project.label(project.samples[0]), json={
        "status": "LABELED", "objects": [
            {k: o[k] for k in ("id", "class_id", "shape", "z_index", "attributes", "confidence", "external_id")}
            for o in label["objects"]], "tag_class_ids": [project.tags["day"]], "version": 1})
    assert same["version"] == 2 and [o["version"] for o in same["objects"]] == [1] * 7


@pytest.mark.parametrize(("obj", "path", "words"), [
    ({"shape": {"type": "bbox", "box": [600, 10, 700, 50]}}, "$.objects[0].shape.box", "outside the 640×480 image"),
    ({"shape": {"type": "polygon", "points": [[0, 0], [100, 100], [100, 0], [0, 100]]}},
     "$.objects[0].shape.points", "intersect"),
    ({"shape": {"type": "mask", "rle": {"size": [480, 640], "counts": [100, 50]}}},
     "$.objects[0].shape.rle.counts", "640"),
    ({"class_id": str(uuid.uuid4())}, "$.objects[0].class_id", "class"),
    ({"attributes": {"occlusion": 9}}, "$.objects[0].attributes.", "3"),
])
async def test_bad_objects_are_422_naming_the_object_and_field(api: aiohttp.ClientSession, project: Project,
                                                                obj: dict, path: str, words: str) -> None:
    body = project.box(10, 10, 20, 20)
    if "attributes" in obj:  # by name here, by id on the wire
        obj = {"attributes": {project.attribute: obj["attributes"]["occlusion"]}}
    body.update(obj)
    problem = await call(api, "PUT", project.label(project.samples[0]), 422, json={"objects": [body]})
    assert problem["path"].startswith(path), problem
    assert words in problem["detail"], problem
    label = await call(api, "GET", project.label(project.samples[0]))
    assert label["version"] == 0 and label["status"] == "UNLABELED"


async def test_bulk_upsert_is_all_or_nothing(api: aiohttp.ClientSession, project: Project) -> None:
    good = [{"sample_id": project.samples[i % 5], **project.box(i % 600, 1, i % 600 + 10, 11)} for i in range(1200)]
    bad = [*good[:-1], {"sample_id": project.samples[0], **project.box(630, 1, 650, 11)}]
    problem = await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects", 422, json={"items": bad})
    assert problem["path"] == "$.items[1199].shape.box"
    page = await call(api, "GET", f"{project.path}/labelsets/ground-truth/objects")
    assert page["items"] == []
    written = await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects", json={"items": good})
    assert written["created"] == 1200 and len({w["id"] for w in written["items"]}) == 1200
    label = await call(api, "GET", project.label(project.samples[1]))
    assert len(label["objects"]) == 240 and label["status"] == "LABELED" and label["version"] == 1
    # Deleting is all or nothing too: one unknown id and nothing goes.
    ids = [w["id"] for w in written["items"][:10]]
    await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects/delete", 422,
               json={"ids": [*ids, str(uuid.uuid4())]})
    deleted = await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects/delete", json={"ids": ids})
    assert deleted["deleted"] == 10


async def test_bulk_objects_start_every_label_with_the_status_asked_whether_or_not_it_has_a_row(
        api: aiohttp.ClientSession, project: Project) -> None:
    """A bulk write makes the labels it starts whole at once; one that has a row left empty (deleting a label
    nobody wrote keeps an empty one) is started the same way, and either kind is searchable by its status."""
    untouched, emptied = project.samples[:2]
    await call(api, "DELETE", project.label(emptied), 204)
    items = [{"sample_id": sample, **project.box(1, 1, 10, 10)} for sample in (untouched, emptied)]
    await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects", json={"items": items,
                                                                                      "status": "PRELABELED"})
    for sample in (untouched, emptied):
        label = await call(api, "GET", project.label(sample))
        assert (label["status"], label["version"], len(label["objects"])) == ("PRELABELED", 1, 1)

    async def searchable() -> bool:
        found = await names(api, project.id, {"labels": {"status": ["PRELABELED"]}})
        assert sorted(found) == ["img_00000.jpg", "img_00001.jpg"]
        return True
    await eventually(searchable, interval=0.1)


@contextlib.contextmanager
def new_log_lines(stack: Stack, *names: str) -> Iterator[list[str]]:
    """The lines these logs (catalog, postgres, ...) gain inside the block, filled in as it ends."""
    logs = [stack.log_dir / f"{name}.log" for name in names]
    sizes = [log.stat().st_size for log in logs]
    lines: list[str] = []
    yield lines
    for log, size in zip(logs, sizes, strict=True):
        with log.open("rb") as file:
            file.seek(size)
            lines += file.read().decode(errors="replace").splitlines()


def deadlocks_and_retries(lines: list[str]) -> list[str]:
    """What a lock cycle leaves in the logs: Postgres's report, and the catalog's event consumer putting
    the event back for a second delivery (`retrying in 1s`)."""
    return [line for line in lines if "deadlock" in line.lower() or "catalog-events: delivery" in line]


async def summaries_reach(settings: Settings, project_id: str, samples: int, revision: int) -> None:
    """Until all `samples` label summaries of the project stand at `revision`."""
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "catalog"})
    try:
        async def summarised() -> bool:
            versions = await conn.fetchval("SELECT count(*) FROM label_summaries WHERE project_id = $1 "
                                           "AND revision = $2", uuid.UUID(project_id), revision)
            assert versions == samples
            return True
        await eventually(summarised, timeout=30)
    finally:
        await conn.close()


async def test_overlapping_bulk_writes_at_once_apply_their_summaries_without_a_deadlock(
        api: aiohttp.ClientSession, unique: str, stack: Stack, settings: Settings) -> None:
    """Concurrent 1,000-box calls whose samples overlap, each listing them in another order: the catalog
    applies their label events side by side, and must take the summary rows' locks in one order."""
    project = await make_project(api, f"{unique} overlap", samples=200)
    calls = []
    for seed in range(8):
        order = list(project.samples)
        random.Random(seed).shuffle(order)
        calls.append([{"sample_id": s, **project.box(1 + seed, 1, 20 + seed, 20)} for s in order for _ in range(5)])
    with new_log_lines(stack, "catalog", "annotation", "postgres") as lines:
        written = await asyncio.gather(*(call(api, "POST", f"{project.path}/labelsets/ground-truth/objects",
                                              json={"items": items}) for items in calls))
        assert sum(w["created"] for w in written) == 8 * 200 * 5
        await summaries_reach(settings, project.id, 200, revision=8)
    assert deadlocks_and_retries(lines) == []


async def test_label_events_listing_shared_samples_in_opposite_orders_apply_without_a_deadlock(
        api: aiohttp.ClientSession, bus: Bus, unique: str, stack: Stack, settings: Settings) -> None:
    """The catalog's lock order must not rest on annotation listing a call's labels in sample order:
    events straight on the bus, each naming the same 1,000 samples, half of them backwards."""
    project = await make_project(api, f"{unique} opposite", samples=1000)
    events = []
    for revision in range(1, 13):
        order = sorted(project.samples, reverse=revision % 2 == 0)
        labels = [LabelSummary(sample_id=s, revision=revision, status="LABELED", class_counts={project.classes["car"]:
                               revision}) for s in order]
        event = LabelChanged(project_id=project.id, labelset="ground-truth", labels=labels,
                             changed_at=datetime.now(UTC))
        events.append(EventEnvelope(id=str(uuid.uuid4()), type=subjects.LABEL_CHANGED.subject.removeprefix(
            subjects.EVENT_PREFIX), time=datetime.now(UTC), project=project.id, data=event))
    with new_log_lines(stack, "catalog", "postgres") as lines:
        await asyncio.gather(*(bus.js.publish(subjects.LABEL_CHANGED.subject, msgspec.json.encode(envelope),
                                              headers={subjects.HEADER_MSG_ID: envelope.id}) for envelope in events))
        await summaries_reach(settings, project.id, 1000, revision=12)
    assert deadlocks_and_retries(lines) == []


async def test_a_stale_version_is_409(api: aiohttp.ClientSession, project: Project) -> None:
    label = await call(api, "PUT", project.label(project.samples[0]), json={"objects": [project.box(1, 1, 5, 5)]})
    obj = label["objects"][0]
    await call(api, "PUT", project.label(project.samples[0]), json={"objects": [], "version": 1})
    await call(api, "PUT", project.label(project.samples[0]), 409, json={"objects": [], "version": 1})
    await call(api, "PATCH", project.label(project.samples[0]), 409, json={"status": "SKIPPED", "version": 0})
    stale = {"sample_id": project.samples[0], "id": obj["id"], "version": 3, **project.box(1, 1, 6, 6)}
    await call(api, "POST", f"{project.path}/labelsets/ground-truth/objects", 409, json={"items": [stale]})


async def test_status_steps_follow_the_workflow_and_roles(api: aiohttp.ClientSession, project: Project,
                                                           user_client) -> None:
    _, labeler = await user_client(project.id, "labeler")
    label = project.label(project.samples[0])
    await call(labeler, "PUT", label, json={"objects": [project.box(1, 1, 5, 5)], "status": "LABELED"})
    problem = await call(labeler, "PATCH", label, 403, json={"status": "REVIEWED"})
    assert "reviewer" in problem["detail"]
    await call(api, "PATCH", label, json={"status": "REVIEWED"})
    problem = await call(api, "PATCH", label, 409, json={"status": "PRELABELED"})
    assert "VERIFIED" in problem["detail"]


async def test_audit_trail_says_who_changed_what(api: aiohttp.ClientSession, project: Project) -> None:
    label = await call(api, "PUT", project.label(project.samples[2]), json={"objects": [project.box(1, 1, 5, 5)]})
    await call(api, "PATCH", project.label(project.samples[2]), json={"status": "LABELING_IN_PROGRESS"})
    await call(api, "DELETE", project.label(project.samples[2]), 204)
    trail = await call(api, "GET", f"{project.path}/audit", params={"sample_id": project.samples[2]})
    actions = [entry["action"] for entry in trail["items"]]
    assert actions == ["label.deleted", "objects.deleted", "status.changed", "label.created", "objects.written"]
    assert trail["items"][-1]["change"] == {"created": label["objects"], "updated": []}
    assert trail["items"][1]["change"] == {"deleted": [label["objects"][0]["id"]]}
    assert trail["items"][2]["change"] == {"status": ["LABELED", "LABELING_IN_PROGRESS"]}
    assert all(entry["actor"] for entry in trail["items"])
    after = await call(api, "GET", project.label(project.samples[2]))
    assert after["status"] == "UNLABELED" and after["objects"] == [] and after["version"] == 3


async def test_labelsets(api: aiohttp.ClientSession, project: Project) -> None:
    listed = await call(api, "GET", f"{project.path}/labelsets")
    assert [ls["name"] for ls in listed["items"]] == ["ground-truth"]
    await call(api, "POST", f"{project.path}/labelsets", 201, json={"name": "model-v1"})
    await call(api, "POST", f"{project.path}/labelsets", 409, json={"name": "model-v1"})
    await call(api, "PUT", project.label(project.samples[0], "model-v1"),
               json={"objects": [project.box(1, 1, 5, 5, confidence=0.9)], "status": "PRELABELED"})
    await call(api, "DELETE", f"{project.path}/labelsets/ground-truth", 409)
    await call(api, "DELETE", f"{project.path}/labelsets/model-v1", 204)
    await call(api, "GET", project.label(project.samples[0], "model-v1"), 404)


async def test_search_finds_samples_by_their_labels(api: aiohttp.ClientSession, project: Project) -> None:
    """Closes the loop: annotation's LabelChanged events feed the catalog's search read model."""
    two_cars = [project.box(1, 1, 5, 5), project.box(10, 10, 50, 50)]
    await call(api, "PUT", project.label(project.samples[0]), json={"objects": two_cars})
    await call(api, "PUT", project.label(project.samples[1]), json={"objects": two_cars[:1]})
    wanted = {"labels": {"classes": [{"class_id": project.classes["car"], "min": 2}]}}

    async def found(expected: list[str]) -> bool:
        assert await names(api, project.id, wanted) == expected
        return True
    await eventually(lambda: found(["img_00000.jpg"]), interval=0.1)
    await call(api, "DELETE", project.label(project.samples[0]), 204)
    await eventually(lambda: found([]), interval=0.1)


async def test_merging_a_class_moves_its_objects(api: aiohttp.ClientSession, project: Project) -> None:
    truck = await call(api, "POST", f"{project.path}/label-classes", 201, json={"name": "truck"})
    project.classes["truck"] = truck["id"]
    label = await call(api, "PUT", project.label(project.samples[0]),
                       json={"objects": [project.box(1, 1, 5, 5, cls="truck"), project.box(9, 9, 20, 20)]})
    await call(api, "POST", f"{project.path}/label-classes/{truck['id']}/merge", json={"into": project.classes["car"]})

    async def moved() -> dict:
        merged = await call(api, "GET", project.label(project.samples[0]))
        assert merged["version"] > label["version"], merged
        return merged
    merged = await eventually(moved, interval=0.1)
    assert [o["class_id"] for o in merged["objects"]] == [project.classes["car"]] * 2
    assert [o["version"] for o in merged["objects"]] == [2, 1]
    wanted = {"labels": {"classes": [{"class_id": project.classes["car"], "min": 2}]}}

    async def found() -> bool:
        assert await names(api, project.id, wanted) == ["img_00000.jpg"]
        return True
    await eventually(found, interval=0.1)


# -- the schema annotation validates with: its own copy, current for every write ----------------------

async def events_applied(bus: Bus) -> None:
    """Until annotation has handled every event published so far."""
    async def applied() -> bool:
        info = await bus.js.consumer_info(subjects.EVENTS_STREAM, "annotation-events")
        assert info.num_pending == 0 and info.num_ack_pending == 0, f"annotation still has events to handle: {info}"
        return True
    await eventually(applied)


async def stored_schema_version(settings: Settings, project_id: str) -> int | None:
    db = await asyncpg.connect(settings.database_url)
    try:
        return await db.fetchval("SELECT version FROM annotation.label_schemas WHERE project_id = $1",
                                 uuid.UUID(project_id))
    finally:
        await db.close()


async def stored_schema_becomes(settings: Settings, project_id: str, version: int | None) -> None:
    """Until annotation's copy of the project's schema is at `version` (None: forgotten), within 10 s."""
    async def stored() -> bool:
        assert await stored_schema_version(settings, project_id) == version
        return True
    await eventually(stored)


async def test_a_schema_item_archived_just_before_a_write_is_refused_by_it(api: aiohttp.ClientSession,
                                                                          project: Project) -> None:
    label, objects = project.label(project.samples[0]), f"{project.path}/labelsets/ground-truth/objects"
    await call(api, "PUT", label, json={"objects": [project.box(1, 1, 5, 5)]})  # annotation holds the schema
    car, day = project.classes["car"], project.tags["day"]
    for _ in range(3):  # each round a new version that annotation's events may not have brought yet
        await call(api, "DELETE", f"{project.path}/label-classes/{car}", 204)
        problem = await call(api, "PUT", label, 422, json={"objects": [project.box(1, 1, 5, 5)]})
        assert problem["path"] == "$.objects[0].class_id" and "archived" in problem["detail"]
        problem = await call(api, "POST", objects, 422, json={
            "items": [{"sample_id": project.samples[1], **project.box(1, 1, 5, 5)}]})
        assert problem["path"] == "$.items[0].class_id" and "archived" in problem["detail"]
        await call(api, "PATCH", f"{project.path}/label-classes/{car}", json={"archived": False})
        await call(api, "PUT", label, json={"objects": [project.box(1, 1, 5, 5)]})

        await call(api, "DELETE", f"{project.path}/attributes/{project.attribute}", 204)
        problem = await call(api, "PUT", label, 422, json={
            "objects": [project.box(1, 1, 5, 5, attributes={project.attribute: 1})]})
        assert problem["path"] == f"$.objects[0].attributes.{project.attribute}" and "archived" in problem["detail"]
        await call(api, "PATCH", f"{project.path}/attributes/{project.attribute}", json={"archived": False})

        await call(api, "DELETE", f"{project.path}/tag-classes/{day}", 204)
        problem = await call(api, "PATCH", label, 422, json={"tag_class_ids": [day]})
        assert problem["path"] == "$.tag_class_ids[0]" and "archived" in problem["detail"]
        await call(api, "PATCH", f"{project.path}/tag-classes/{day}", json={"archived": False})
        await call(api, "PATCH", label, json={"tag_class_ids": [day]})
    # A class made just before a write can be used by it.
    truck = await call(api, "POST", f"{project.path}/label-classes", 201, json={"name": "truck"})
    project.classes["truck"] = truck["id"]
    await call(api, "POST", objects, json={"items": [{"sample_id": project.samples[1],
                                                      **project.box(1, 1, 5, 5, cls="truck")}]})


async def test_label_writes_ask_the_catalog_for_the_schema_once_per_version(
        api: aiohttp.ClientSession, bus: Bus, settings: Settings, project: Project) -> None:
    label = project.label(project.samples[0])
    async with requests_sent(bus, subjects.GET_LABEL_SCHEMA, project.id) as requests:
        for _ in range(5):
            await call(api, "PUT", label, json={"objects": [project.box(1, 1, 5, 5)]})
        assert len(requests) == 1  # the project's first write: annotation had never seen its schema
        version = (await call(api, "GET", f"{project.path}/label-classes"))["schema_version"]
        assert await stored_schema_version(settings, project.id) == version

        await call(api, "POST", f"{project.path}/label-classes", 201, json={"name": "bus"})
        await stored_schema_becomes(settings, project.id, version + 1)
        assert len(requests) == 2  # the event fetched the new version, once
        for _ in range(5):
            await call(api, "PUT", label, json={"objects": [project.box(1, 1, 5, 5)]})
        assert len(requests) == 2


async def test_a_redelivered_or_older_schema_event_changes_nothing(api: aiohttp.ClientSession, bus: Bus,
                                                                    settings: Settings, project: Project) -> None:
    await call(api, "PUT", project.label(project.samples[0]), json={"objects": [project.box(1, 1, 5, 5)]})
    await events_applied(bus)
    version = await stored_schema_version(settings, project.id)
    car = await call(api, "GET", f"{project.path}/label-classes/{project.classes['car']}")
    async with requests_sent(bus, subjects.GET_LABEL_SCHEMA, project.id) as requests:
        for schema_version in (1, version):  # an older event, then the newest one again
            event = LabelClassChanged(item=msgspec.convert(car, LabelClass), changed=[], schema_version=schema_version)
            envelope = EventEnvelope(id=str(uuid.uuid4()), type=subjects.LABEL_CLASS.updated.subject.removeprefix(
                subjects.EVENT_PREFIX), time=datetime.now(UTC), project=project.id, data=event)
            await bus.js.publish(subjects.LABEL_CLASS.updated.subject, msgspec.json.encode(envelope),
                                 headers={subjects.HEADER_MSG_ID: envelope.id})
        await events_applied(bus)
        assert requests == []
    assert await stored_schema_version(settings, project.id) == version


async def test_a_caller_of_another_organisation_is_not_answered_from_the_copy(api: aiohttp.ClientSession,
                                                                             bus: Bus, project: Project) -> None:
    await call(api, "PUT", project.label(project.samples[0]), json={"objects": [project.box(1, 1, 5, 5)]})
    stranger = Caller(org_id=str(uuid.uuid4()), key_id="stranger", is_admin=True, role="admin")
    request = UpsertObjectsRequest(project_id=project.id, labelset="ground-truth", body=UpsertObjects(
        items=[msgspec.convert({"sample_id": project.samples[0], **project.box(1, 1, 5, 5)}, SampleObjectInput)]))
    with pytest.raises(LoupeError) as refused:
        await bus.request(subjects.UPSERT_OBJECTS, request, caller=stranger)
    assert refused.value.code == "not_found"


async def test_deleting_a_project_forgets_its_schema(api: aiohttp.ClientSession, settings: Settings,
                                                    project: Project) -> None:
    await call(api, "PUT", project.label(project.samples[0]), json={"objects": [project.box(1, 1, 5, 5)]})
    assert await stored_schema_version(settings, project.id) is not None
    await call(api, "DELETE", project.path, 204)
    await stored_schema_becomes(settings, project.id, None)


async def test_the_catalog_publishes_each_schema_version_before_answering_and_never_lowers_it(
        api: aiohttp.ClientSession, bus: Bus, project: Project) -> None:
    versions = await bus.js.key_value(subjects.SCHEMA_VERSIONS)
    await call(api, "POST", f"{project.path}/label-classes", 201, json={"name": "van"})
    listed = await call(api, "GET", f"{project.path}/label-classes")
    assert (await versions.get(project.id)).value == str(listed["schema_version"]).encode()
    # Two edits commit in order but may publish in either; the newer version stays.
    other = uuid.uuid4()
    await schema_versions.raise_to(bus, other, 5)
    await schema_versions.raise_to(bus, other, 3)
    assert (await versions.get(str(other))).value == b"5"
    await asyncio.gather(*(schema_versions.raise_to(bus, other, version) for version in range(20, 5, -1)))
    assert (await versions.get(str(other))).value == b"20"


async def test_bulk_put_writes_each_label_it_can_and_says_why_not_for_the_others(
    api: aiohttp.ClientSession, project: Project
) -> None:
    first, stale, invalid, last = project.samples[:4]
    await call(api, "PUT", project.label(stale), json={"objects": [project.box(1, 1, 5, 5)]})
    unknown = str(uuid.uuid4())
    items = [
        {"sample_id": first, "label": {"objects": [project.box(10, 10, 20, 20)], "tag_class_ids": [project.tags["day"]]}},
        {"sample_id": stale, "label": {"objects": [], "version": 7}},
        {"sample_id": unknown, "label": {"objects": [project.box(10, 10, 20, 20)]}},
        {"sample_id": invalid, "label": {"objects": [project.box(10, 10, 700, 20)]}},
        {"sample_id": last, "label": {"objects": [project.box(30, 30, 40, 40), project.box(50, 50, 60, 60)]}},
    ]
    reply = await call(api, "POST", f"{project.path}/labelsets/ground-truth/labels", json={"items": items})
    assert [(r["sample_id"], r["outcome"]) for r in reply["items"]] == [
        (first, "written"), (stale, "conflict"), (unknown, "not_found"), (invalid, "invalid"), (last, "written")]
    assert reply["written"] == 2 and reply["items"][0]["version"] == 1
    assert reply["items"][3]["path"].startswith("$.items[3].label.objects[0]"), reply["items"][3]
    assert "version" in reply["items"][1]["error"]

    read = await call(api, "POST", f"{project.path}/labelsets/ground-truth/labels/read",
                      json={"sample_ids": [last, unknown, first, stale, invalid]})
    assert [(label["sample_id"], label["version"], len(label["objects"])) for label in read["items"]] == [
        (last, 1, 2), (unknown, 0, 0), (first, 1, 1), (stale, 1, 1), (invalid, 0, 0)]
    assert read["items"][2]["tag_class_ids"] == [project.tags["day"]]
    assert read["items"][2] == await call(api, "GET", project.label(first))

    # A sample twice in one call is the caller's mistake, named.
    problem = await call(api, "POST", f"{project.path}/labelsets/ground-truth/labels", 422,
                         json={"items": [items[0], items[0]]})
    assert problem["path"] == "$.items[1]"


async def test_bulk_label_writes_search_like_single_ones(api: aiohttp.ClientSession, project: Project) -> None:
    items = [{"sample_id": s, "label": {"objects": [project.box(1, 1, 9, 9)] * (i + 1)}}
             for i, s in enumerate(project.samples)]
    await call(api, "POST", f"{project.path}/labelsets/ground-truth/labels", json={"items": items})

    async def counted() -> bool:
        found = await names(api, project.id, {"labels": {"classes": [{"class_id": project.classes["car"], "min": 3}]}})
        return len(found) == len(project.samples) - 2

    await eventually(counted)


async def test_a_bulk_write_that_outruns_the_sample_events_asks_the_catalog_once_per_page(
        api: aiohttp.ClientSession, unique: str, settings: Settings, bus: Bus) -> None:
    """Samples annotation's read model does not have yet (their creation event has not arrived) are asked of
    the catalog a search page at a time, not one request each; one that does not exist is 404 naming its item."""
    project = await make_project(api, f"{unique} outrun", samples=6)
    project_id = uuid.UUID(project.id)
    path = f"{project.path}/labelsets/ground-truth/objects"
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "annotation"})

    async def known() -> int:
        return await conn.fetchval("SELECT count(*) FROM samples WHERE project_id = $1", project_id)

    async def all_known() -> bool:
        return await known() == 6

    try:
        await eventually(all_known)
        await conn.execute("DELETE FROM samples WHERE project_id = $1", project_id)  # as if the events lagged
        unknown = str(uuid.uuid4())
        items = [{"sample_id": sample, **project.box(1, 1, 50, 50)} for sample in [*project.samples, unknown]]
        problem = await call(api, "POST", path, 404, json={"items": items})
        assert problem["path"] == "$.items[6].sample_id", problem

        await conn.execute("DELETE FROM samples WHERE project_id = $1", project_id)
        items = items[:-1]
        async with requests_sent(bus, subjects.SEARCH_SAMPLES, project.id) as searches, \
                requests_sent(bus, subjects.GET_SAMPLE, project.id) as gets:
            written = await call(api, "POST", path, json={"items": items})
        assert written["created"] == 6
        assert (len(searches), len(gets)) == (1, 0)
        assert await known() == 6
    finally:
        await conn.close()
