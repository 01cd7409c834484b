"""The synthetic data generator: deterministic images whose boxes, polygons, masks and tags are right, and
the training examples made of them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from loupe.cli import main
from loupe.synth import (
    COLOURS,
    SHAPES,
    TAG_GROUPS,
    WEATHER,
    Progress,
    Schema,
    SynthImage,
    examples,
    generate,
    in_validation,
    label_of,
    mask_of,
)
from proto.training import FAMILIES
from shared.errors import LoupeError


def polygon_area(polygon: tuple[tuple[float, float], ...]) -> float:
    xs, ys = np.array(polygon).T
    return float(abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))) / 2)


def pixels(image: SynthImage) -> np.ndarray:
    return np.asarray(image.image)


@pytest.fixture(scope="module")
def images() -> list[SynthImage]:
    return list(generate(60, 64, seed=7))


def test_the_same_seed_makes_the_same_images_and_another_seed_others(images: list[SynthImage]) -> None:
    again = list(generate(60, 64, seed=7))
    assert [image.objects for image in again] == [image.objects for image in images]
    assert [image.tags for image in again] == [image.tags for image in images]
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(again, images, strict=True))
    # Image i depends only on the seed and i, not on how many are asked for.
    assert np.array_equal(pixels(next(generate(1, 64, seed=7))), pixels(images[0]))
    other = list(generate(60, 64, seed=8))
    assert not any(np.array_equal(pixels(a), pixels(b)) for a, b in zip(other, images, strict=True))
    assert len({image.name for image in images + other}) == 120


def test_images_are_rgb_of_the_size_asked_for_with_objects_in_range() -> None:
    made = list(generate(20, 96, seed=1, objects=(2, 4)))
    for image in made:
        assert image.image.mode == "RGB" and image.image.size == (96, 96)
        assert 1 <= len(image.objects) <= 4
    # Two to four are asked for; an object that finds no free place is left out, which is rare.
    assert sum(len(image.objects) >= 2 for image in made) >= 18
    assert list(generate(0)) == []


def test_boxes_are_the_bounds_of_their_polygons_inside_the_image(images: list[SynthImage]) -> None:
    for image in images:
        for obj in image.objects:
            xs, ys = np.array(obj.polygon).T
            assert obj.box == (xs.min(), ys.min(), xs.max(), ys.max())
            x0, y0, x1, y1 = obj.box
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            # Big enough for a small CNN at 64×64: at least a square of a sixth of the side.
            assert polygon_area(obj.polygon) >= (64 / 6) ** 2 * 0.99
            assert obj.shape in SHAPES and obj.colour in COLOURS
            assert len(obj.polygon) == {"circle": 32, "square": 4, "triangle": 3}[obj.shape]


def test_objects_overlap_little(images: list[SynthImage]) -> None:
    for image in images:
        for i, a in enumerate(image.objects):
            for b in image.objects[i + 1 :]:
                width = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
                height = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
                if width > 0 and height > 0:
                    smaller = min((o.box[2] - o.box[0]) * (o.box[3] - o.box[1]) for o in (a, b))
                    assert width * height <= 0.15 * smaller + 1e-9


def test_masks_are_the_polygons_filled_in_drawing_order(images: list[SynthImage]) -> None:
    for image in images:
        mask = mask_of(image)
        assert mask.shape == (64, 64) and mask.dtype == np.uint8
        expected = np.zeros((64, 64), dtype=np.uint8)
        for obj in image.objects:
            alone = Image.new("1", (64, 64), 0)
            ImageDraw.Draw(alone).polygon(obj.polygon, fill=1)
            expected[np.asarray(alone)] = SHAPES.index(obj.shape) + 1
        assert np.array_equal(mask, expected)
        # The last object drawn is whole in the mask, and about as big as its polygon.
        last = image.objects[-1]
        drawn = int((mask == SHAPES.index(last.shape) + 1).sum())
        assert drawn >= 0.8 * polygon_area(last.polygon)


def test_masks_match_the_pixels_where_objects_were_painted(images: list[SynthImage]) -> None:
    """On clear images, object pixels are the object colours and background pixels are not."""
    clear = [image for image in images if image.tags["weather"] == "clear"]
    assert clear
    for image in clear:
        mask = mask_of(image)
        rgb = pixels(image).astype(float)
        last = image.objects[-1]
        inside = rgb[mask == SHAPES.index(last.shape) + 1].mean(axis=0)
        outside = rgb[mask == 0].mean(axis=0)
        assert np.abs(inside - outside).max() > 30, (image.name, inside, outside)


def test_tags_name_the_weather_and_the_largest_object(images: list[SynthImage]) -> None:
    for image in images:
        assert set(image.tags) == {group for group, _ in TAG_GROUPS}
        assert image.tags["weather"] in WEATHER
        largest = max(image.objects, key=lambda obj: polygon_area(obj.polygon))
        assert (image.tags["shape"], image.tags["colour"]) == (largest.shape, largest.colour)
        # Clearly the largest, so the tag is learnable from the pixels.
        others = [polygon_area(obj.polygon) for obj in image.objects if obj is not largest]
        assert all(area <= 0.5 * polygon_area(largest.polygon) for area in others)
    assert {image.tags["weather"] for image in images} == set(WEATHER)


def test_fog_washes_out_and_rain_adds_bright_streaks(images: list[SynthImage]) -> None:
    def mean_of(weather: str, measure) -> float:
        return float(np.mean([measure(pixels(image)) for image in images if image.tags["weather"] == weather]))

    contrast = lambda rgb: rgb.astype(float).std()  # noqa: E731
    brightness = lambda rgb: rgb.astype(float).mean()  # noqa: E731
    assert mean_of("fog", contrast) < 0.75 * mean_of("clear", contrast)
    assert mean_of("fog", brightness) > mean_of("clear", brightness) + 20
    # Streaks: many more near-white pixels than the clear images have.
    bright = lambda rgb: float((rgb.min(axis=-1) > 160).mean())  # noqa: E731
    assert mean_of("rain", bright) > mean_of("clear", bright) + 0.02


def own_pixels(image: SynthImage) -> np.ndarray:
    """The pixels of the last object drawn, which nothing covers."""
    alone = Image.new("1", image.image.size, 0)
    ImageDraw.Draw(alone).polygon(image.objects[-1].polygon, fill=1)
    return pixels(image)[np.asarray(alone)]


def test_shift_changes_palette_and_background_but_not_the_label_space() -> None:
    plain = list(generate(60, 64, seed=3))
    shifted = list(generate(60, 64, seed=3, shift=True))
    assert {image.name for image in plain}.isdisjoint(image.name for image in shifted)
    # The same kinds of labels, only looking different.
    assert {image.tags["colour"] for image in shifted} == set(COLOURS)

    def clear(made: list[SynthImage]) -> list[SynthImage]:
        return [image for image in made if image.tags["weather"] == "clear"]

    def background(made: list[SynthImage]) -> np.ndarray:
        return np.mean([pixels(image)[mask_of(image) == 0].mean(axis=0) for image in clear(made)], axis=0)

    def colour_of(made: list[SynthImage], colour: str) -> np.ndarray:
        return np.mean([own_pixels(image).mean(axis=0) for image in clear(made) if image.objects[-1].colour == colour], axis=0)

    assert np.abs(background(plain) - background(shifted)).max() > 25
    for colour in COLOURS:
        assert np.abs(colour_of(plain, colour) - colour_of(shifted, colour)).max() > 25, colour


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_makes_well_formed_examples(images: list[SynthImage], family: str) -> None:
    spec, made = examples(images[:10], family)  # type: ignore[arg-type]
    assert spec.family == family and len(made) == 10
    if family == "tagging":
        assert spec.classes == () and spec.tag_groups == TAG_GROUPS
    else:
        assert spec.classes == SHAPES and spec.tag_groups == ()
    for example, image in zip(made, images, strict=False):
        assert example.image.shape == (64, 64, 3) and example.image.dtype == np.uint8
        assert example.image.flags.writeable  # augmentation may work in place
        assert np.array_equal(example.image, pixels(image))
        assert example.boxes.dtype == np.float32 and example.boxes.shape == (len(image.objects), 4)
        assert example.box_classes.dtype == np.int64
        assert [SHAPES[k] for k in example.box_classes] == [obj.shape for obj in image.objects]
        assert np.allclose(example.boxes, [obj.box for obj in image.objects])
        if family == "classification":
            assert SHAPES[example.label] == image.tags["shape"]
        else:
            assert example.label is None
        if family == "tagging":
            assert tuple(values[k] for (_, values), k in zip(TAG_GROUPS, example.tags, strict=True)) == tuple(
                image.tags[group] for group, _ in TAG_GROUPS
            )
        else:
            assert example.tags == ()
        if family == "segmentation":
            assert np.array_equal(example.mask, mask_of(image)) and example.mask.flags.writeable
        else:
            assert example.mask is None


@pytest.mark.parametrize(
    ("arguments", "path"),
    [
        ({"count": -1}, "count"),
        ({"count": 1, "size": 8}, "size"),
        ({"count": 1, "seed": -2}, "seed"),
        ({"count": 1, "objects": (0, 2)}, "objects"),
        ({"count": 1, "objects": (3, 2)}, "objects"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(arguments: dict, path: str) -> None:
    with pytest.raises(LoupeError) as refused:
        generate(**arguments)  # at once, not when the first image is asked for
    assert refused.value.code == "invalid" and refused.value.details["path"] == path


def test_an_unknown_family_is_refused(images: list[SynthImage]) -> None:
    with pytest.raises(LoupeError) as refused:
        examples(images[:1], "instance")  # type: ignore[arg-type]
    assert refused.value.details["path"] == "family"


def test_the_validation_split_is_the_fraction_asked_for_spread_evenly() -> None:
    chosen = [index for index in range(100) if in_validation(index, 0.2)]
    assert chosen == list(range(4, 100, 5))
    assert not any(in_validation(index, 0.0) for index in range(100))


def test_a_label_has_a_box_and_a_polygon_per_object_and_a_tag_per_group(images: list[SynthImage]) -> None:
    image = max(images, key=lambda image: len(image.objects))
    schema = Schema(
        classes={shape: f"class-{shape}" for shape in SHAPES},
        tags={(group, value): f"tag-{group}-{value}" for group, values in TAG_GROUPS for value in values},
    )
    label = label_of(image, schema)
    assert label["status"] == "LABELED"
    assert label["tag_class_ids"] == [f"tag-{group}-{image.tags[group]}" for group, _ in TAG_GROUPS]
    objects = label["objects"]
    assert len(objects) == 2 * len(image.objects)
    for z_index, obj in enumerate(image.objects):
        box, polygon = objects[2 * z_index], objects[2 * z_index + 1]
        assert box == {"class_id": f"class-{obj.shape}", "shape": {"type": "bbox", "box": list(obj.box)}, "z_index": z_index}
        assert polygon["shape"] == {"type": "polygon", "points": [list(point) for point in obj.polygon]}
        assert polygon["class_id"] == box["class_id"] and polygon["z_index"] == z_index


def test_the_command_needs_an_api_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LOUPE_API_KEY", raising=False)
    assert main(["synth", "--count", "1"]) == 2
    assert "--token" in capsys.readouterr().err


def test_the_progress_bar_ends_at_the_total_on_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress(4, enabled=True)
    bar.phase("labelling")
    for _ in range(4):
        bar.advance()
    bar.close()
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1
    assert err.rstrip().rsplit("\r", 1)[-1].startswith("[" + "#" * Progress.WIDTH + "] 4/4 images")

    quiet = Progress(4, enabled=False)
    quiet.advance()
    quiet.close()
    assert capsys.readouterr().err == ""
