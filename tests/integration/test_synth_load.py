"""`loupe synth` against the real stack: synthetic images loaded through the public REST API become samples
with their ground-truth boxes, polygons and tags; loading again changes nothing."""

from __future__ import annotations

import aiohttp
import pytest

from loupe import synth
from loupe.cli import main
from loupe.stack import Stack
from loupe.synth import SHAPES, TAG_GROUPS, SynthImage, generate, load
from tests.helpers import call


async def samples_of(api: aiohttp.ClientSession, project_id: str, dataset_id: str) -> dict[str, str]:
    """name: id of the dataset's samples."""
    page = await call(api, "GET", f"/v1/projects/{project_id}/samples", params={"dataset_id": dataset_id, "limit": 500})
    return {item["name"]: item["id"] for item in page["items"]}


async def test_images_become_samples_with_their_labels_and_a_second_load_changes_nothing(
    api: aiohttp.ClientSession, stack: Stack, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synth, "CHUNK", 5)  # three chunks: the split must not restart with each
    images = list(generate(12, 64, seed=11))
    loaded = await load(images, stack.gateway_url, stack.admin_key, name=f"synth {unique}", progress=False)
    assert loaded.samples == 12 and loaded.objects == sum(2 * len(image.objects) for image in images)
    project = f"/v1/projects/{loaded.project_id}"
    assert (await call(api, "GET", project))["task_type"] == "vector"

    schema = await call(api, "GET", f"{project}/schema")
    classes = {item["id"]: item["name"] for item in schema["label_classes"]}
    assert sorted(classes.values()) == sorted(SHAPES)
    tags = {tag["id"]: (group["name"], tag["name"]) for group in schema["tag_groups"] for tag in group["tags"]}
    assert sorted(tags.values()) == sorted((group, value) for group, values in TAG_GROUPS for value in values)

    train = await samples_of(api, loaded.project_id, loaded.datasets["train"])
    val = await samples_of(api, loaded.project_id, loaded.datasets["val"])
    assert sorted(val) == [images[4].name, images[9].name]
    assert sorted(train) == sorted(image.name for image in images if image.name not in val)

    by_name: dict[str, SynthImage] = {image.name: image for image in images}
    for name, sample_id in {**train, **val}.items():
        image = by_name[name]
        sample = await call(api, "GET", f"{project}/samples/{sample_id}")
        assert (sample["width"], sample["height"], sample["format"]) == (64, 64, "png")
        label = await call(api, "GET", f"{project}/samples/{sample_id}/labels/ground-truth")
        assert label["status"] == "LABELED"
        assert sorted(tags[tag_id] for tag_id in label["tag_class_ids"]) == sorted(image.tags.items())
        boxes = sorted((o["z_index"], classes[o["class_id"]], o["shape"]["box"])
                       for o in label["objects"] if o["shape"]["type"] == "bbox")
        polygons = sorted((o["z_index"], classes[o["class_id"]], [c for point in o["shape"]["points"] for c in point])
                          for o in label["objects"] if o["shape"]["type"] == "polygon")
        assert boxes == [(z, obj.shape, pytest.approx(list(obj.box))) for z, obj in enumerate(image.objects)]
        assert polygons == [(z, obj.shape, pytest.approx([c for point in obj.polygon for c in point]))
                            for z, obj in enumerate(image.objects)]

    # Into the same project again: the schema, datasets and samples are reused, the labels rewritten as they were.
    again = await load(images, stack.gateway_url, stack.admin_key, project=loaded.project_id, progress=False)
    assert again.datasets == loaded.datasets
    assert (await call(api, "GET", f"{project}/schema"))["label_classes"] == schema["label_classes"]
    assert await samples_of(api, loaded.project_id, loaded.datasets["train"]) == train
    assert await samples_of(api, loaded.project_id, loaded.datasets["val"]) == val


def test_the_command_adds_shifted_images_to_a_project(stack: Stack, unique: str, capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    # A sync test: the command runs its own event loop, as it does from a shell.
    assert main(["synth", "--count", "3", "--seed", "5", "--shift", "--name", f"synth cli {unique}",
                 "--url", stack.gateway_url, "--token", stack.admin_key]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("loaded 3 images with ") and "into project " in out
    assert "3/3" in err  # the progress bar


async def test_a_dataset_named_with_capitals_is_found_again_not_made_twice(
    api: aiohttp.ClientSession, stack: Stack, unique: str
) -> None:
    project = await call(api, "POST", "/v1/projects", 201, json={"name": f"synth case {unique}", "task_type": "vector"})
    async with aiohttp.ClientSession() as http:
        client = synth.Api(http, stack.gateway_url, stack.admin_key)
        first = await synth.ensure_dataset(client, project["id"], "Night Shots")
        assert await synth.ensure_dataset(client, project["id"], "Night Shots") == first
        assert await synth.ensure_dataset(client, project["id"], "night shots") == first
