"""The label schema end to end: REST → gateway → catalog → Postgres, and its events on JetStream."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import msgspec
import pytest
from nats.js.api import DeliverPolicy

from proto import subjects
from proto.common import EventEnvelope
from shared.bus import Bus
from tests.helpers import call


@pytest.fixture
async def project(api: aiohttp.ClientSession, unique: str) -> str:
    created = await call(api, "POST", "/v1/projects", 201, json={"name": f"schema {unique}"})
    return f"/v1/projects/{created['id']}"


async def test_create_each_kind_and_get_the_whole_schema(api: aiohttp.ClientSession, project: str) -> None:
    assert (await call(api, "GET", f"{project}/schema"))["version"] == 0
    pose = await call(api, "POST", f"{project}/keypoint-schemas", 201, json={
        "name": "pose", "keypoints": ["head", "left hand", "right hand"], "skeleton": [[0, 1], [0, 2]],
        "colors": ["#FF0000", "#00ff00", "#0000ff"]})
    assert pose["colors"][0] == "#ff0000" and pose["skeleton"] == [[0, 1], [0, 2]] and pose["version"] == 1
    person = await call(api, "POST", f"{project}/label-classes", 201, json={
        "name": "person", "keypoint_schema_id": pose["id"], "external_id": "0", "extra": {"has_instances": True}})
    car = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "car", "color": "#123ABC"})
    sky = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "sky", "kind": "background",
                                                                          "order": -1})
    assert (person["order"], car["order"], car["color"], person["kind"]) == (0, 1, "#123abc", "object")
    assert person["color"] != (await call(api, "POST", f"{project}/label-classes", 201,
                                          json={"name": "bus"}))["color"]  # palette by order
    occluded = await call(api, "POST", f"{project}/attributes", 201, json={
        "name": "occluded", "type": "BOOL", "default": False, "class_ids": [person["id"], car["id"]]})
    colour = await call(api, "POST", f"{project}/attributes", 201, json={
        "name": "colour", "type": "SELECTION", "values": ["red", {"value": "blue"}], "default": "red",
        "class_ids": [car["id"]], "required": True})
    assert [v["value"] for v in colour["values"]] == ["red", "blue"] and all(v["id"] for v in colour["values"])
    speed = await call(api, "POST", f"{project}/attributes", 201, json={
        "name": "speed", "type": "INT", "min": 0, "max": 300, "default": 50.0})
    assert (speed["min"], speed["default"], speed["subject"]) == (0, 50, "LABEL")
    weather = await call(api, "POST", f"{project}/attributes", 201, json={
        "name": "weather", "type": "MULTIPLE_SELECTION", "subject": "IMAGE", "values": ["rain", "fog"],
        "default": ["fog"]})
    time_of_day = await call(api, "POST", f"{project}/tag-groups", 201, json={
        "name": "time of day", "required": True, "tags": [{"name": "day"}, {"name": "night", "color": "#000000"}]})
    assert [t["name"] for t in time_of_day["tags"]] == ["day", "night"]
    assert all(t["group_id"] == time_of_day["id"] for t in time_of_day["tags"])
    dusk = await call(api, "POST", f"{project}/tag-classes", 201, json={
        "group_id": time_of_day["id"], "name": "dusk", "external_id": "t-3"})
    assert dusk["order"] == 2

    schema = await call(api, "GET", f"{project}/schema")
    assert schema["version"] == 11  # one per change
    assert [c["name"] for c in schema["label_classes"]] == ["sky", "person", "car", "bus"]
    assert [a["id"] for a in schema["attributes"]] == [occluded["id"], colour["id"], speed["id"], weather["id"]]
    assert [t["name"] for t in schema["tag_groups"][0]["tags"]] == ["day", "night", "dusk"]
    assert schema["keypoint_schemas"] == [pose]
    assert schema["label_classes"][0] == sky
    for path, key in (("label-classes", "LabelClasses"), ("attributes", "Attributes"), ("tag-groups", "TagGroups"),
                      ("tag-classes", "TagClasses"), ("keypoint-schemas", "KeypointSchemas")):
        listed = await call(api, "GET", f"{project}/{path}")
        assert listed["schema_version"] == 11 and listed["items"], key
        one = listed["items"][0]
        assert await call(api, "GET", f"{project}/{path}/{one['id']}") == one


@pytest.mark.parametrize(("path", "body", "field"), [
    ("attributes", {"name": "a", "type": "SELECTION"}, "$.values"),
    ("attributes", {"name": "a", "type": "MULTIPLE_SELECTION", "values": [{"value": "x", "archived": True}]},
     "$.values"),
    ("attributes", {"name": "a", "type": "TEXT", "values": ["x"]}, "$.values"),
    ("attributes", {"name": "a", "type": "SELECTION", "values": ["x", "X"]}, "$.values[1]"),
    ("attributes", {"name": "a", "type": "INT", "min": 0, "max": 10, "default": 11}, "$.default"),
    ("attributes", {"name": "a", "type": "FLOAT", "min": 0.5, "default": 0.25}, "$.default"),
    ("attributes", {"name": "a", "type": "INT", "min": 10, "max": 1}, "$.min"),
    ("attributes", {"name": "a", "type": "INT", "min": 1.5}, "$.min"),
    ("attributes", {"name": "a", "type": "TEXT", "max": 3}, "$.max"),
    ("attributes", {"name": "a", "type": "SELECTION", "values": ["x"], "default": "y"}, "$.default"),
    ("attributes", {"name": "a", "type": "BOOL", "default": "yes"}, "$.default"),
    ("attributes", {"name": "a", "type": "BOOL", "class_ids": [str(uuid.uuid4())]}, "$.class_ids[0]"),
    ("attributes", {"name": "a", "type": "BOOL", "class_ids": ["not-a-uuid"]}, "$.class_ids[0]"),
    ("attributes", {"name": "a", "type": "BOOL", "subject": "IMAGE", "class_ids": [str(uuid.uuid4())]},
     "$.class_ids"),
    ("attributes", {"name": "a", "type": "DATE"}, "$.type"),
    ("keypoint-schemas", {"name": "k", "keypoints": ["a", "b"], "skeleton": [[0, 2]]}, "$.skeleton[0][1]"),
    ("keypoint-schemas", {"name": "k", "keypoints": ["a", "b"], "skeleton": [[1, 1]]}, "$.skeleton[0]"),
    ("keypoint-schemas", {"name": "k", "keypoints": ["a", "b"], "skeleton": [[0, 1], [1, 0]]}, "$.skeleton[1]"),
    ("keypoint-schemas", {"name": "k", "keypoints": ["a", "A"]}, "$.keypoints[1]"),
    ("keypoint-schemas", {"name": "k", "keypoints": ["a", "b"], "colors": ["#ffffff"]}, "$.colors"),
    ("keypoint-schemas", {"name": "k", "keypoints": []}, "$.keypoints"),
    ("label-classes", {"name": "c", "color": "red"}, "$.color"),
    ("label-classes", {"name": "c", "keypoint_schema_id": str(uuid.uuid4())}, "$.keypoint_schema_id"),
    ("label-classes", {"name": " "}, "$.name"),
    ("label-classes", {"name": "c", "shape": "box"}, "$"),
    ("tag-classes", {"name": "t", "group_id": str(uuid.uuid4())}, "$.group_id"),
    ("tag-groups", {"name": "g", "selection": "ANY"}, "$.selection"),
])
async def test_invalid_definitions_are_422_naming_the_field(api: aiohttp.ClientSession, project: str, path: str,
                                                            body: dict, field: str) -> None:
    problem = await call(api, "POST", f"{project}/{path}", 422, json=body)
    assert problem["code"] == "invalid" and problem["path"] == field, problem
    assert (await call(api, "GET", f"{project}/schema"))["version"] == 0  # nothing was written


async def test_names_are_unique_among_active_items_case_insensitively(api: aiohttp.ClientSession,
                                                                      project: str) -> None:
    car = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "Car", "external_id": "7"})
    problem = await call(api, "POST", f"{project}/label-classes", 422, json={"name": " cAR "})
    assert problem["path"] == "$.name" and car["id"] in problem["detail"]
    assert (await call(api, "POST", f"{project}/label-classes", 422,
                       json={"name": "truck", "external_id": "7"}))["path"] == "$.external_id"
    truck = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "truck"})
    assert (await call(api, "PATCH", f"{project}/label-classes/{truck['id']}", 422,
                       json={"name": "CAR"}))["path"] == "$.name"

    # One attribute name per class: the same name is fine for disjoint classes, not for overlapping ones.
    body = {"name": "state", "type": "SELECTION", "values": ["parked", "moving"], "class_ids": [car["id"]]}
    await call(api, "POST", f"{project}/attributes", 201, json=body)
    await call(api, "POST", f"{project}/attributes", 201, json={**body, "class_ids": [truck["id"]]})
    assert (await call(api, "POST", f"{project}/attributes", 422,
                       json={**body, "class_ids": []}))["path"] == "$.name"
    await call(api, "POST", f"{project}/attributes", 201, json={**body, "subject": "IMAGE", "class_ids": []})

    group = await call(api, "POST", f"{project}/tag-groups", 201, json={"name": "light", "tags": [{"name": "day"}]})
    assert (await call(api, "POST", f"{project}/tag-classes", 422,
                       json={"name": "DAY", "group_id": group["id"]}))["path"] == "$.name"
    assert (await call(api, "POST", f"{project}/tag-groups", 422, json={"name": "LIGHT"}))["path"] == "$.name"
    assert (await call(api, "POST", f"{project}/tag-groups", 422,
                       json={"name": "g", "tags": [{"name": "a"}, {"name": "A"}]}))["path"] == "$.tags[1].name"


async def test_rename_keeps_the_id_and_a_stale_version_is_409(api: aiohttp.ClientSession, project: str) -> None:
    car = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "car"})
    renamed = await call(api, "PATCH", f"{project}/label-classes/{car['id']}",
                         json={"name": "vehicle", "version": 1})
    assert (renamed["id"], renamed["name"], renamed["version"], renamed["color"]) == \
        (car["id"], "vehicle", 2, car["color"])
    problem = await call(api, "PATCH", f"{project}/label-classes/{car['id']}", 409,
                         json={"name": "auto", "version": 1})
    assert problem["details"]["current_version"] == 2 and problem["path"] == "$.version"
    unchanged = await call(api, "PATCH", f"{project}/label-classes/{car['id']}", json={"name": "vehicle"})
    assert unchanged == renamed  # a PATCH that changes nothing is no change
    assert (await call(api, "GET", f"{project}/schema"))["version"] == 2

    keypoints = await call(api, "POST", f"{project}/keypoint-schemas", 201, json={"name": "k", "keypoints": ["a"]})
    grown = await call(api, "PATCH", f"{project}/keypoint-schemas/{keypoints['id']}",
                       json={"keypoints": ["A", "b"], "skeleton": [[0, 1]]})
    assert grown["keypoints"] == ["A", "b"] and grown["id"] == keypoints["id"]
    assert (await call(api, "PATCH", f"{project}/keypoint-schemas/{keypoints['id']}", 422,
                       json={"keypoints": ["A"]}))["path"] == "$.keypoints"


async def test_attribute_edits_that_would_break_labels_are_refused(api: aiohttp.ClientSession,
                                                                   project: str) -> None:
    colour = await call(api, "POST", f"{project}/attributes", 201, json={
        "name": "colour", "type": "SELECTION", "values": ["red", "blue", "green"], "default": "red"})
    red, blue, green = colour["values"]
    edited = await call(api, "PATCH", f"{project}/attributes/{colour['id']}", json={
        "values": [{"id": blue["id"], "value": "navy"}, "red", "white"]})
    assert [(v["value"], v["archived"]) for v in edited["values"]] == \
        [("navy", False), ("red", False), ("white", False), ("green", True)]
    assert [v["id"] for v in edited["values"][:2]] + [edited["values"][3]["id"]] == [blue["id"], red["id"], green["id"]]
    restored = await call(api, "PATCH", f"{project}/attributes/{colour['id']}", json={
        "values": ["navy", "red", "white", "GREEN"]})
    assert restored["values"][3] == {"id": green["id"], "value": "GREEN", "archived": False}
    assert (await call(api, "PATCH", f"{project}/attributes/{colour['id']}", 422,
                       json={"values": ["navy"]}))["path"] == "$.default"  # "red" would be gone
    multiple = await call(api, "PATCH", f"{project}/attributes/{colour['id']}", json={"type": "MULTIPLE_SELECTION"})
    assert multiple["default"] == ["red"]
    assert (await call(api, "PATCH", f"{project}/attributes/{colour['id']}", 422,
                       json={"type": "SELECTION"}))["path"] == "$.type"
    assert (await call(api, "PATCH", f"{project}/attributes/{colour['id']}", 422,
                       json={"subject": "IMAGE"}))["path"] == "$.subject"
    assert (await call(api, "PATCH", f"{project}/attributes/{colour['id']}", 422,
                       json={"values": [{"id": str(uuid.uuid4()), "value": "x"}]}))["path"] == "$.values[0].id"


async def test_delete_archives_hides_and_can_be_restored(api: aiohttp.ClientSession, project: str) -> None:
    car = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "car"})
    group = await call(api, "POST", f"{project}/tag-groups", 201, json={"name": "light", "tags": [{"name": "day"}]})
    day = group["tags"][0]
    for path, item in (("label-classes", car), ("tag-classes", day)):
        await call(api, "DELETE", f"{project}/{path}/{item['id']}", 204)
        await call(api, "DELETE", f"{project}/{path}/{item['id']}", 204)  # again: already archived, no change
        archived = await call(api, "GET", f"{project}/{path}/{item['id']}")
        assert archived["archived"] and archived["version"] == 2
        assert item["id"] not in [i["id"] for i in (await call(api, "GET", f"{project}/{path}"))["items"]]
        listed = await call(api, "GET", f"{project}/{path}", params={"include_archived": "true"})
        assert item["id"] in [i["id"] for i in listed["items"]]
    schema = await call(api, "GET", f"{project}/schema")
    assert schema["label_classes"] == [] and schema["tag_groups"][0]["tags"] == [] and schema["version"] == 4
    full = await call(api, "GET", f"{project}/schema", params={"include_archived": "true"})
    assert [c["id"] for c in full["label_classes"]] == [car["id"]]

    # The name is free again; restoring the old class then needs a rename.
    new_car = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "CAR"})
    assert (await call(api, "PATCH", f"{project}/label-classes/{car['id']}", 422,
                       json={"archived": False}))["path"] == "$.name"
    await call(api, "DELETE", f"{project}/label-classes/{new_car['id']}", 204)
    restored = await call(api, "PATCH", f"{project}/label-classes/{car['id']}", json={"archived": False})
    assert restored["archived"] is False and restored["id"] == car["id"]


async def test_merge_archives_the_source_and_emits_merged(api: aiohttp.ClientSession, bus: Bus,
                                                          project: str) -> None:
    car = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "car"})
    auto = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "auto"})
    sky = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "sky", "kind": "background"})
    plate = await call(api, "POST", f"{project}/attributes", 201, json={
        "name": "plate", "type": "TEXT", "class_ids": [auto["id"]]})
    assert (await call(api, "POST", f"{project}/label-classes/{auto['id']}/merge", 422,
                       json={"into": sky["id"]}))["path"] == "$.into"
    assert (await call(api, "POST", f"{project}/label-classes/{auto['id']}/merge", 422,
                       json={"into": auto["id"]}))["path"] == "$.into"
    assert (await call(api, "POST", f"{project}/label-classes/{auto['id']}/merge", 422,
                       json={"into": str(uuid.uuid4())}))["path"] == "$.into"

    subscription = await bus.js.subscribe("loupe.evt.catalog.>", ordered_consumer=True,
                                          deliver_policy=DeliverPolicy.NEW)
    try:
        merged = await call(api, "POST", f"{project}/label-classes/{auto['id']}/merge", json={"into": car["id"]})
        events = []
        while len(events) < 2:
            msg = await subscription.next_msg(timeout=10)
            envelope = msgspec.json.decode(msg.data, type=EventEnvelope)
            # The project's own created event may be relayed after the subscription starts.
            if envelope.project == project.rsplit("/", 1)[1] and not envelope.type.startswith("catalog.project."):
                events.append((msg.subject, envelope.data))
    finally:
        await subscription.unsubscribe()
    assert merged["source"]["archived"] and merged["source"]["id"] == auto["id"]
    assert merged["target"] == car and merged["schema_version"] == 5
    by_subject = dict(events)
    assert by_subject[subjects.LABEL_CLASS_MERGED.subject] == merged
    widened = by_subject[subjects.ATTRIBUTE.updated.subject]
    assert widened["item"]["class_ids"] == [auto["id"], car["id"]] and widened["changed"] == ["class_ids"]
    assert widened["schema_version"] == 5
    assert (await call(api, "GET", f"{project}/attributes/{plate['id']}"))["class_ids"] == [auto["id"], car["id"]]
    assert [c["id"] for c in (await call(api, "GET", f"{project}/label-classes"))["items"]] == [car["id"], sky["id"]]


async def test_every_change_emits_an_event_with_the_item_and_version(api: aiohttp.ClientSession, bus: Bus,
                                                                     project: str) -> None:
    subscription = await bus.js.subscribe("loupe.evt.catalog.>", ordered_consumer=True,
                                          deliver_policy=DeliverPolicy.NEW)
    try:
        group = await call(api, "POST", f"{project}/tag-groups", 201, json={"name": "g", "tags": [{"name": "t"}]})
        await call(api, "PATCH", f"{project}/tag-groups/{group['id']}", json={"selection": "MULTIPLE"})
        await call(api, "DELETE", f"{project}/tag-groups/{group['id']}", 204)
        await call(api, "PATCH", f"{project}/tag-groups/{group['id']}", json={"archived": False})
        received = []
        while len(received) < 5:
            msg = await subscription.next_msg(timeout=10)
            envelope = msgspec.json.decode(msg.data, type=EventEnvelope)
            # The project's own created event may be relayed after the subscription starts.
            if envelope.project == project.rsplit("/", 1)[1] and not envelope.type.startswith("catalog.project."):
                received.append((msg.subject.rsplit(".", 2)[1:], envelope.data))
    finally:
        await subscription.unsubscribe()
    assert [subject for subject, _ in received] == [
        ["taggroup", "created"], ["tagclass", "created"], ["taggroup", "updated"], ["taggroup", "archived"],
        ["taggroup", "restored"]]
    assert [data["schema_version"] for _, data in received] == [1, 1, 2, 3, 4]
    assert received[1][1]["item"]["group_id"] == group["id"]
    assert received[2][1]["changed"] == ["selection"] and received[2][1]["item"]["version"] == 2


async def test_put_replaces_the_whole_schema(api: aiohttp.ClientSession, project: str) -> None:
    pose_id, person_id = str(uuid.uuid4()), str(uuid.uuid4())
    document = {
        "keypoint_schemas": [{"id": pose_id, "name": "pose", "keypoints": ["a", "b"], "skeleton": [[0, 1]]}],
        "label_classes": [{"id": person_id, "name": "person", "keypoint_schema_id": pose_id},
                          {"name": "car", "external_id": "1"}, {"name": "bike"}],
        "attributes": [{"name": "occluded", "type": "BOOL", "class_ids": [person_id]},
                       {"name": "weather", "type": "SELECTION", "subject": "IMAGE", "values": ["sun", "rain"]}],
        "tag_groups": [{"name": "light", "selection": "MULTIPLE", "tags": [{"name": "day"}, {"name": "night"}]}],
    }
    first = await call(api, "PUT", f"{project}/schema", json=document)
    assert first["version"] == 1 and first["label_classes"][0]["id"] == person_id
    assert [c["order"] for c in first["label_classes"]] == [0, 1, 2]
    assert first["attributes"][0]["class_ids"] == [person_id]

    # GET → PUT of the same document changes nothing, not even the version.
    same = await call(api, "PUT", f"{project}/schema", json=await call(api, "GET", f"{project}/schema"))
    assert same == first
    assert await call(api, "PUT", f"{project}/schema", json=document) == first  # matched by id, then by name

    # Swap two names by id, drop a class and a tag, add a class: one version, left-out items archived.
    car, bike = first["label_classes"][1], first["label_classes"][2]
    light = first["tag_groups"][0]
    second = await call(api, "PUT", f"{project}/schema", json={
        **document, "version": 1,
        "label_classes": [{**car, "name": "bike"}, {**bike, "name": "car"}, {"name": "bus"}],
        "tag_groups": [{**light, "tags": light["tags"][:1]}]})
    assert second["version"] == 2
    assert [(c["id"], c["name"]) for c in second["label_classes"][:2]] == [(car["id"], "bike"), (bike["id"], "car")]
    assert person_id not in [c["id"] for c in second["label_classes"]]
    assert second["tag_groups"][0]["tags"] == light["tags"][:1]
    archived = await call(api, "GET", f"{project}/label-classes/{person_id}")
    assert archived["archived"] and archived["version"] == 2
    # The attribute still points at the archived class: its labels keep their values.
    assert second["attributes"][0]["class_ids"] == [person_id]

    problem = await call(api, "PUT", f"{project}/schema", 409, json={**document, "version": 1})
    assert problem["details"]["current_version"] == 2
    problem = await call(api, "PUT", f"{project}/schema", 422, json={
        "label_classes": [{"name": "a"}, {"name": "A"}]})
    assert problem["path"] == "$.label_classes[1].name"
    problem = await call(api, "PUT", f"{project}/schema", 422, json={
        "attributes": [{"name": "x", "type": "INT", "min": 3, "max": 1}]})
    assert problem["path"] == "$.attributes[0].min"
    problem = await call(api, "PUT", f"{project}/schema", 422, json={
        "tag_groups": [{"name": "g", "tags": [{"name": "t", "group_id": str(uuid.uuid4())}]}]})
    assert problem["path"] == "$.tag_groups[0].tags[0].group_id"
    assert (await call(api, "GET", f"{project}/schema"))["version"] == 2  # failed PUTs wrote nothing


async def test_items_of_another_project_are_not_found(api: aiohttp.ClientSession, project: str,
                                                      unique: str) -> None:
    other = (await call(api, "POST", "/v1/projects", 201, json={"name": f"other {unique}"}))["id"]
    theirs = await call(api, "POST", f"/v1/projects/{other}/label-classes", 201, json={"name": "car"})
    mine = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "car"})
    assert mine["id"] != theirs["id"]
    item = f"{project}/label-classes/{theirs['id']}"
    for method, body in (("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)):
        assert (await call(api, method, item, 404, json=body))["code"] == "not_found"
    await call(api, "POST", f"{item}/merge", 404, json={"into": mine["id"]})
    assert (await call(api, "POST", f"{project}/label-classes/{mine['id']}/merge", 422,
                       json={"into": theirs["id"]}))["path"] == "$.into"
    assert (await call(api, "POST", f"{project}/attributes", 422, json={
        "name": "a", "type": "BOOL", "class_ids": [theirs["id"]]}))["path"] == "$.class_ids[0]"
    assert (await call(api, "PUT", f"{project}/schema", 422, json={
        "label_classes": [theirs]}))["path"] == "$.label_classes[0].id"
    await call(api, "GET", f"{project}/label-classes/not-a-uuid", 404)
    await call(api, "GET", f"/v1/projects/{uuid.uuid4()}/schema", 404)
    assert (await call(api, "GET", f"/v1/projects/{other}/label-classes/{theirs['id']}")) == theirs

    # Deleting a project takes its schema with it.
    await call(api, "DELETE", f"/v1/projects/{other}", 204)
    await call(api, "GET", f"/v1/projects/{other}/schema", 404)


async def test_viewers_read_the_schema_and_only_managers_change_it(api: aiohttp.ClientSession, project: str,
                                                                   user_client: Any) -> None:
    car = await call(api, "POST", f"{project}/label-classes", 201, json={"name": "car"})
    project_id = project.rsplit("/", 1)[1]
    _, viewer = await user_client(project_id, "viewer")
    _, reviewer = await user_client(project_id, "reviewer")
    _, manager = await user_client(project_id, "manager")
    _, outsider = await user_client()
    assert (await call(viewer, "GET", f"{project}/schema"))["label_classes"] == [car]
    assert await call(viewer, "GET", f"{project}/label-classes/{car['id']}") == car
    changes = (("POST", "label-classes", {"name": "bus"}), ("PATCH", f"label-classes/{car['id']}", {"name": "bus"}),
               ("DELETE", f"label-classes/{car['id']}", None), ("PUT", "schema", {}),
               ("POST", f"label-classes/{car['id']}/merge", {"into": car["id"]}))
    for client in (viewer, reviewer):
        for method, path, body in changes:
            problem = await call(client, method, f"{project}/{path}", 403, json=body)
            assert problem["details"]["needed"] == "manager", (method, path)
    await call(outsider, "GET", f"{project}/schema", 404)
    await call(manager, "PATCH", f"{project}/label-classes/{car['id']}", json={"name": "bus"})


async def test_openapi_documents_the_schema_operations(anonymous: aiohttp.ClientSession) -> None:
    async with anonymous.get("/openapi.json") as response:
        document = await response.json()
    ids = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {"getLabelSchema", "replaceLabelSchema", "mergeLabelClass", "createLabelClass", "listAttributes",
            "updateTagGroup", "deleteTagClass", "getKeypointSchema"} <= ids
    create = document["components"]["schemas"]["CreateAttribute"]
    assert create["required"] == ["name", "type"] and create["additionalProperties"] is False
