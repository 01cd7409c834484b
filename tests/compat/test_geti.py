"""The Geti Tune dialect's core (`/api/...`) with plain HTTP, as Geti Tune's REST document writes its flows:
projects with labels, label edits, the training configuration, dataset items uploaded and read back (binary,
thumbnail), annotations, tags, views, models after a training run, dataset revisions and deletes; bad input
answers Geti's error naming the field; what Geti makes the native API sees, and the other way round."""

from __future__ import annotations

import io
import uuid
from typing import Any

import aiohttp
import pytest
from PIL import Image

from loupe import synth
from loupe.stack import Stack
from tests.helpers import add, call, eventually, train

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
async def geti(stack: Stack) -> Any:
    """A client of the dialect as Geti's REST clients call it: JSON bodies under `/api`, the API key in a header."""
    async with aiohttp.ClientSession(f"{stack.gateway_url}/api/", headers={"X-Api-Key": stack.admin_key}) as session:
        yield session


async def geti_call(session: aiohttp.ClientSession, method: str, path: str, expect: int = 200, **request: Any) -> Any:
    """The JSON answer of a call that must answer `expect`; an error must be in Geti's shape."""
    async with session.request(method, path, **request) as response:
        assert response.status == expect, (method, path, await response.text())
        if expect == 204:
            return None
        answer = await response.json()
        if expect >= 400:
            assert answer["http_status"] == expect and answer["error_code"] and answer["message"], answer
        return answer


async def binary(session: aiohttp.ClientSession, path: str) -> tuple[str, bytes]:
    async with session.get(path) as response:
        assert response.status == 200, await response.text()
        return response.content_type, await response.read()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def plain_png(shade: int, size: int = 48) -> bytes:
    return png(Image.new("RGB", (size, size), (shade, 255 - shade, (shade * 7) % 256)))


async def new_project(session: aiohttp.ClientSession, task_type: str, labels: list[dict], **task: Any) -> dict:
    name = f"geti {task_type} {uuid.uuid4().hex[:8]}"
    body = {"name": name, "task": {"task_type": task_type, "labels": labels, **task}}
    return await geti_call(session, "POST", "projects", 201, json=body)


async def upload(session: aiohttp.ClientSession, project_id: str, name: str, data: bytes) -> dict:
    """An image uploaded as a multipart form's `file` part, as Geti's clients send it."""
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="image/png")
    return await geti_call(session, "POST", f"projects/{project_id}/dataset/items", 201, data=form)


def rectangle(label_id: str, x: float, y: float, width: float, height: float) -> dict:
    return {
        "labels": [{"id": label_id}],
        "shape": {"type": "rectangle", "x": x, "y": y, "width": width, "height": height},
    }


async def annotate(session: aiohttp.ClientSession, project_id: str, item_id: str, annotations: list[dict]) -> dict:
    path = f"projects/{project_id}/dataset/items/{item_id}/annotations"
    return await geti_call(session, "POST", path, json={"annotations": annotations})


def box_extent(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    return box[0], box[1], box[2] - box[0], box[3] - box[1]


def label_ids(project: dict) -> dict[str, str]:
    return {label["name"]: label["id"] for label in project["task"]["labels"]}


async def test_projects_labels_and_training_configuration(geti: aiohttp.ClientSession) -> None:
    project = await new_project(
        geti, "detection", [{"name": "cat"}, {"name": "dog", "color": "#33ff57", "hotkey": "D"}]
    )
    pid = project["id"]
    assert project["task"]["task_type"] == "detection" and project["active_pipeline"] is False
    assert [(label["name"], label["hotkey"]) for label in project["task"]["labels"]] == [("cat", None), ("dog", "D")]
    assert project["task"]["labels"][1]["color"].lower() == "#33ff57"
    assert pid in [listed["id"] for listed in await geti_call(geti, "GET", "projects")]
    assert (await geti_call(geti, "GET", f"projects/{pid}"))["name"] == project["name"]

    renamed = await geti_call(geti, "PATCH", f"projects/{pid}", json={"name": project["name"] + " renamed"})
    assert renamed["name"] == project["name"] + " renamed"

    ids = label_ids(project)
    patch = {
        "labels_to_add": [{"name": "bird", "hotkey": "B"}],
        "labels_to_edit": [{"id": ids["dog"], "name": "puppy", "color": "#000000", "hotkey": "P"}],
        "labels_to_remove": [{"id": ids["cat"]}],
    }
    task = await geti_call(geti, "PATCH", f"projects/{pid}/labels", json=patch)
    assert task["task_type"] == "detection"
    assert sorted((label["name"], label["hotkey"]) for label in task["labels"]) == [("bird", "B"), ("puppy", "P")]
    assert {label["name"]: label["id"] for label in task["labels"]}["puppy"] == ids["dog"]  # an edit keeps the id

    config = await geti_call(geti, "GET", f"projects/{pid}/training_configuration")
    assert config["epochs"] == 20 and config["batch_size"] == 16
    await geti_call(geti, "PATCH", f"projects/{pid}/training_configuration", 204, json={"epochs": 3, "seed": 7})
    config = await geti_call(geti, "GET", f"projects/{pid}/training_configuration")
    assert (config["epochs"], config["seed"], config["batch_size"]) == (3, 7, 16)

    await geti_call(geti, "DELETE", f"projects/{pid}", 204)
    await geti_call(geti, "GET", f"projects/{pid}", 404)


async def test_bad_input_names_the_field(geti: aiohttp.ClientSession) -> None:
    bad = await geti_call(geti, "POST", "projects", 400, json={"name": "no task"})
    assert bad["path"] == "$.task"
    bad = await geti_call(
        geti, "POST", "projects", 400, json={"name": "x", "task": {"task_type": "painting", "labels": [{"name": "a"}]}}
    )
    assert bad["path"] == "$.task.task_type"
    twice = {"name": f"twice {uuid.uuid4().hex[:8]}", "task": {"task_type": "detection", "labels": [{"name": "a"}] * 2}}
    async with geti.post("projects", json=twice) as response:
        refused = await response.json()
        assert 400 <= response.status < 500 and refused["path"].startswith("$.task.labels"), refused
    assert twice["name"] not in [listed["name"] for listed in await geti_call(geti, "GET", "projects")]

    project = await new_project(geti, "detection", [{"name": "a"}])
    pid = project["id"]
    bad = await geti_call(geti, "PATCH", f"projects/{pid}/training_configuration", 400, json={"epochs": 0})
    assert bad["path"] == "$.epochs"
    bad = await geti_call(
        geti, "PATCH", f"projects/{pid}/labels", 404, json={"labels_to_remove": [{"id": str(uuid.uuid4())}]}
    )
    assert bad["path"] == "$.labels_to_remove[0].id"
    bad = await geti_call(geti, "GET", f"projects/{pid}/dataset/items?limit=1000", 400)
    assert bad["path"] == "limit"
    bad = await geti_call(geti, "GET", f"projects/{pid}/dataset_revisions/items?revision_id=latest", 400)
    assert bad["path"] == "revision_id"
    bad = await geti_call(geti, "POST", f"projects/{pid}/dataset/items", 400, data=b"")
    assert bad["path"] == "file"
    bad = await geti_call(geti, "POST", f"projects/{pid}/dataset/items?name=x.png", 400, data=b"not an image")
    assert bad["path"] == "file"
    no_file = aiohttp.FormData({"note": "no image here"}, default_to_multipart=True)
    bad = await geti_call(geti, "POST", f"projects/{pid}/dataset/items", 400, data=no_file)
    assert bad["path"] == "file"
    item = await upload(geti, pid, "one.png", plain_png(10))
    annotations = f"projects/{pid}/dataset/items/{item['id']}/annotations"
    unknown = {"annotations": [{"labels": [{"id": str(uuid.uuid4())}], "shape": {"type": "full_image"}}]}
    bad = await geti_call(geti, "POST", annotations, 400, json=unknown)
    assert bad["path"] == "$.annotations[0].labels[0].id"
    bad = await geti_call(
        geti, "POST", annotations, 400, json={"annotations": [rectangle(label_ids(project)["a"], 1, 1, -3, 2)]}
    )
    assert bad["path"] == "$.annotations[0].shape.width"
    bad = await geti_call(
        geti, "PATCH", f"projects/{pid}/dataset/items/tags", 400, json={"item_ids": ["nope"], "tags_to_add": ["x"]}
    )
    assert bad["path"] == "$.item_ids[0]"
    bad = await geti_call(geti, "POST", f"projects/{pid}/dataset/views/{uuid.uuid4()}/items", 400, json={})
    assert bad["path"] == "$"
    for path in ("", "/training_configuration", "/dataset/items", "/dataset/views", "/models"):
        await geti_call(geti, "GET", f"projects/{uuid.uuid4()}{path}", 404)


async def test_items_annotations_tags_and_views(geti: aiohttp.ClientSession) -> None:
    project = await new_project(geti, "detection", [{"name": "box"}, {"name": "blob"}])
    pid, ids = project["id"], label_ids(project)
    images = {f"img{index}.png": plain_png(40 * index) for index in range(3)}
    first = await upload(geti, pid, "img0.png", images["img0.png"])
    assert (first["name"], first["width"], first["height"], first["subset"]) == ("img0.png", 48, 48, "unassigned")
    await upload(geti, pid, "img1.png", images["img1.png"])
    async with geti.post(
        f"projects/{pid}/dataset/items?name=img2.png", data=images["img2.png"], headers={"Content-Type": "image/png"}
    ) as response:  # the raw body, as a script may send it
        assert response.status == 201, await response.text()

    listed = await geti_call(geti, "GET", f"projects/{pid}/dataset/items?limit=2")
    assert listed["pagination"] == {"limit": 2, "offset": 0, "total": 3, "count": 2}
    everything = (await geti_call(geti, "GET", f"projects/{pid}/dataset/items"))["items"]
    by_name = {item["name"]: item["id"] for item in everything}
    assert sorted(by_name) == sorted(images)
    item = f"projects/{pid}/dataset/items/{by_name['img1.png']}"
    assert (await geti_call(geti, "GET", item))["name"] == "img1.png"
    content_type, data = await binary(geti, item + "/binary")
    assert data == images["img1.png"] and content_type.startswith("image/")

    async def thumbnail() -> bytes:
        async with geti.get(item + "/thumbnail") as response:
            assert response.status == 200, await response.text()
            return await response.read()

    assert Image.open(io.BytesIO(await eventually(thumbnail, timeout=30))).width <= 48

    assert (await geti_call(geti, "GET", item + "/annotations")) == {
        "annotations": [],
        "user_reviewed": False,
        "prediction_model_id": None,
    }
    sent = [
        rectangle(ids["box"], 2, 3, 10, 12),
        {
            "labels": [{"id": ids["blob"]}],
            "shape": {"type": "polygon", "points": [{"x": 1, "y": 1}, {"x": 9, "y": 1}, {"x": 5, "y": 8}]},
        },
    ]
    written = await annotate(geti, pid, by_name["img1.png"], sent)
    assert written["user_reviewed"] is True
    read = await geti_call(geti, "GET", item + "/annotations")
    assert [(a["labels"], a["shape"]) for a in read["annotations"]] == [(a["labels"], a["shape"]) for a in sent]
    with_annotations = await geti_call(geti, "GET", f"projects/{pid}/dataset/items?with_annotations=true")
    shown = {entry["name"]: entry["annotation"]["annotations"] for entry in with_annotations["items"]}
    assert len(shown["img1.png"]) == 2 and shown["img0.png"] == []
    await geti_call(geti, "DELETE", item + "/annotations", 204)
    assert (await geti_call(geti, "GET", item + "/annotations"))["annotations"] == []

    tags = f"projects/{pid}/dataset/items/tags"
    await geti_call(geti, "PATCH", tags, 204, json={"item_ids": list(by_name.values()), "tags_to_add": ["day", "new"]})
    await geti_call(
        geti,
        "PATCH",
        tags,
        204,
        json={"item_ids": [by_name["img0.png"]], "tags_to_add": ["night"], "tags_to_remove": ["day"]},
    )
    assert sorted(await geti_call(geti, "GET", f"projects/{pid}/dataset/items/{by_name['img0.png']}/tags")) == [
        "new",
        "night",
    ]
    assert await geti_call(geti, "GET", f"projects/{pid}/dataset/tags") == [
        {"name": "new", "count": 3},
        {"name": "day", "count": 2},
        {"name": "night", "count": 1},
    ]

    views = f"projects/{pid}/dataset/views"
    view = await geti_call(geti, "POST", views, 201, json={"name": "chosen", "item_ids": [by_name["img0.png"]]})
    assert (view["name"], view["item_count"]) == ("chosen", 1)
    assert [listed["id"] for listed in await geti_call(geti, "GET", views)] == [view["id"]]
    await geti_call(geti, "POST", f"{views}/{view['id']}/items", 204, json={"filter": {"tags_any": ["day"]}})
    assert (await geti_call(geti, "GET", f"{views}/{view['id']}"))["item_count"] == 3
    await geti_call(geti, "DELETE", f"{views}/{view['id']}/items", 204, json={"item_ids": [by_name["img2.png"]]})
    in_view = await geti_call(geti, "GET", f"{views}/{view['id']}/items")
    assert sorted(entry["name"] for entry in in_view["items"]) == ["img0.png", "img1.png"]
    assert in_view["pagination"]["total"] == 2
    await geti_call(geti, "DELETE", f"{views}/{view['id']}", 204)
    await geti_call(geti, "GET", f"{views}/{view['id']}", 404)

    await geti_call(geti, "DELETE", item, 204)
    await geti_call(geti, "GET", item, 404)
    assert (await geti_call(geti, "GET", f"projects/{pid}/dataset/items"))["pagination"]["total"] == 2


async def test_classification_annotations_are_the_tasks_tags(geti: aiohttp.ClientSession) -> None:
    project = await new_project(geti, "classification", [{"name": "cat"}, {"name": "dog"}], exclusive_labels=True)
    pid, ids = project["id"], label_ids(project)
    assert project["task"]["exclusive_labels"] is True
    item = await upload(geti, pid, "pet.png", plain_png(99))
    path = f"projects/{pid}/dataset/items/{item['id']}/annotations"
    whole = {"annotations": [{"labels": [{"id": ids["dog"]}], "shape": {"type": "full_image"}}]}
    await geti_call(geti, "POST", path, json=whole)
    read = await geti_call(geti, "GET", path)
    assert read["annotations"] == [
        {"labels": [{"id": ids["dog"]}], "shape": {"type": "full_image"}, "confidence": None}
    ]
    bad = await geti_call(geti, "POST", path, 400, json={"annotations": [rectangle(ids["dog"], 0, 0, 4, 4)]})
    assert bad["path"] == "$.annotations[0].shape.type"
    task = await geti_call(geti, "PATCH", f"projects/{pid}/labels", json={"labels_to_add": [{"name": "bird"}]})
    assert sorted(label["name"] for label in task["labels"]) == ["bird", "cat", "dog"]


async def test_the_native_api_and_geti_see_the_same_items_and_labels(
    geti: aiohttp.ClientSession, api: aiohttp.ClientSession
) -> None:
    project = await new_project(geti, "detection", [{"name": "car"}])
    pid, car = project["id"], label_ids(project)["car"]
    native_project = await call(api, "GET", f"/v1/projects/{pid}")
    assert native_project["task_type"] == "bboxes"
    assert [c["name"] for c in (await call(api, "GET", f"/v1/projects/{pid}/schema"))["label_classes"]] == ["car"]

    made_here = await upload(geti, pid, "geti.png", plain_png(5))
    await annotate(geti, pid, made_here["id"], [rectangle(car, 1, 2, 3, 4)])
    sample = await call(api, "GET", f"/v1/projects/{pid}/samples/{made_here['id']}")
    assert sample["name"] == "geti.png"
    label = await call(api, "GET", f"/v1/projects/{pid}/samples/{made_here['id']}/labels/ground-truth")
    assert [(o["class_id"], o["shape"]) for o in label["objects"]] == [
        (car, {"type": "bbox", "box": [1.0, 2.0, 4.0, 6.0]})
    ]

    train_set = await call(api, "POST", f"/v1/projects/{pid}/datasets", 201, json={"name": "train"})
    form = aiohttp.FormData()
    form.add_field("file", plain_png(200), filename="native.png", content_type="image/png")
    uploaded = await call(api, "POST", f"/v1/projects/{pid}/datasets/{train_set['id']}/files", 201, data=form)
    native_id = uploaded["items"][0]["sample_id"]
    await eventually(lambda: call(api, "GET", f"/v1/projects/{pid}/samples/{native_id}"))  # catalogued by an event
    await call(
        api,
        "PUT",
        f"/v1/projects/{pid}/samples/{native_id}/labels/ground-truth",
        200,
        json={"objects": [{"class_id": car, "shape": {"type": "bbox", "box": [5, 5, 15, 25]}}]},
    )
    item = await geti_call(geti, "GET", f"projects/{pid}/dataset/items/{native_id}?with_annotations=true")
    assert (item["name"], item["subset"]) == ("native.png", "training")
    assert item["annotation"]["annotations"] == [
        {
            "labels": [{"id": car}],
            "shape": {"type": "rectangle", "x": 5.0, "y": 5.0, "width": 10.0, "height": 20.0},
            "confidence": None,
        }
    ]

    # An image kept outside Loupe is a redirect to it: the gateway fetches nothing from addresses users name.
    external = {"media_url": "https://images.example.com/far.jpg", "name": "far.jpg", "width": 10, "height": 10}
    created = await add(api, pid, train_set["id"], [external])
    async with geti.get(
        f"projects/{pid}/dataset/items/{created['items'][0]['id']}/binary", allow_redirects=False
    ) as response:
        assert (response.status, response.headers["Location"]) == (302, external["media_url"])

    # A prediction (native auto-labelling's `predictions` labelset) shows where no one labelled the item.
    predicted = await upload(geti, pid, "predicted.png", plain_png(77))
    await call(api, "POST", f"/v1/projects/{pid}/labelsets", 201, json={"name": "predictions"})
    prediction = {"class_id": car, "shape": {"type": "bbox", "box": [0, 0, 8, 8]}, "confidence": 0.75}
    await call(
        api,
        "PUT",
        f"/v1/projects/{pid}/samples/{predicted['id']}/labels/predictions",
        200,
        json={"status": "PRELABELED", "objects": [prediction]},
    )
    shown = await geti_call(geti, "GET", f"projects/{pid}/dataset/items/{predicted['id']}/annotations")
    assert shown["user_reviewed"] is False
    assert [(a["shape"]["width"], a["confidence"]) for a in shown["annotations"]] == [(8.0, 0.75)]


async def test_models_and_dataset_revisions_after_a_training_run(
    geti: aiohttp.ClientSession, api: aiohttp.ClientSession
) -> None:
    project = await new_project(geti, "detection", [{"name": shape} for shape in synth.SHAPES])
    pid, ids = project["id"], label_ids(project)
    images = list(synth.generate(12, size=32, seed=11))
    for index, image in enumerate(images):
        item = await upload(geti, pid, f"{index}.png", png(image.image))
        await annotate(
            geti, pid, item["id"], [rectangle(ids[thing.shape], *box_extent(thing.box)) for thing in image.objects]
        )
    assert await geti_call(geti, "GET", f"projects/{pid}/models") == []
    await geti_call(geti, "GET", f"projects/{pid}/dataset_revisions/items", 404)

    run = await train(api, pid)
    models = await geti_call(geti, "GET", f"projects/{pid}/models")
    assert [model["id"] for model in models] == [run["version_id"]]
    model = await geti_call(geti, "GET", f"projects/{pid}/models/{run['version_id']}")
    assert model["training_info"]["status"] == "successful" and model["files_deleted"] is False
    assert model["training_info"]["dataset_revision_id"] == run["release_id"]
    labels = await geti_call(geti, "GET", f"projects/{pid}/models/{model['id']}/labels")
    assert sorted(label["name"] for label in labels) == sorted(synth.SHAPES)
    assert all(label["id"] == ids[label["name"]] for label in labels)

    revision = f"projects/{pid}/dataset_revisions"
    items = await geti_call(geti, "GET", f"{revision}/items?with_annotations=true&limit=100")
    assert items["pagination"]["total"] == len(images)
    first = items["items"][0]
    assert first["dataset_revision_id"] == run["release_id"] and first["annotation"]["annotations"]
    same = await geti_call(geti, "GET", f"{revision}/items?model_id={model['id']}&limit=1")
    assert same["items"][0]["id"] == first["id"]
    one = await geti_call(geti, "GET", f"{revision}/items/{first['id']}")
    assert one["annotation"] == first["annotation"]
    _, data = await binary(geti, f"{revision}/items/{first['id']}/binary")
    assert Image.open(io.BytesIO(data)).size == (first["width"], first["height"])

    second = await train(api, pid)
    models = await geti_call(geti, "GET", f"projects/{pid}/models")
    assert [model["id"] for model in models] == [second["version_id"], run["version_id"]]  # newest first
    active = next(model["id"] for model in models if model["active"])
    bad = await geti_call(geti, "DELETE", f"projects/{pid}/models/{active}?weights_only=true", 409)
    assert "activate another version" in bad["message"]
    resting = next(model["id"] for model in models if not model["active"])
    await geti_call(geti, "DELETE", f"projects/{pid}/models/{resting}?weights_only=true", 204)
    assert (await geti_call(geti, "GET", f"projects/{pid}/models/{resting}"))["files_deleted"] is True

    kept = await call(api, "POST", f"/v1/projects/{pid}/releases", 201, json={"name": "not for training"})
    await geti_call(geti, "DELETE", revision, 204)
    await geti_call(geti, "GET", f"{revision}/items", 404)
    await geti_call(geti, "GET", f"{revision}/items?model_id={run['version_id']}", 404)
    await call(api, "GET", f"/v1/projects/{pid}/releases/{kept['id']}")  # only training's releases are revisions
    for model in models:
        await geti_call(geti, "DELETE", f"projects/{pid}/models/{model['id']}", 204)
    assert await geti_call(geti, "GET", f"projects/{pid}/models") == []


async def test_each_call_needs_the_role_its_native_operation_needs(
    geti: aiohttp.ClientSession, user_client: Any
) -> None:
    project = await new_project(geti, "detection", [{"name": "a"}])
    pid = project["id"]
    item = await upload(geti, pid, "x.png", plain_png(3))
    annotations = f"/api/projects/{pid}/dataset/items/{item['id']}/annotations"
    _, viewer = await user_client(pid, "viewer")  # keys sent as `Authorization: Bearer`
    _, labeler = await user_client(pid, "labeler")
    _, stranger = await user_client()
    assert (await geti_call(viewer, "GET", f"/api/projects/{pid}/dataset/items"))["pagination"]["total"] == 1
    await geti_call(viewer, "POST", annotations, 403, json={"annotations": []})
    await geti_call(viewer, "PATCH", f"/api/projects/{pid}/training_configuration", 403, json={"epochs": 2})
    await geti_call(labeler, "POST", annotations, json={"annotations": []})
    await geti_call(labeler, "POST", f"/api/projects/{pid}/dataset/items?name=y.png", 403, data=plain_png(4))
    await geti_call(stranger, "GET", f"/api/projects/{pid}/training_configuration", 404)
    assert pid not in [listed["id"] for listed in await geti_call(stranger, "GET", "/api/projects")]
