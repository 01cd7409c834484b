"""Decoding model outputs into predictions (shared/predictions.py), numpy only: as training evaluates and as
inference reads Triton's answers, by position or by name, with or without the embedding."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from shared.errors import LoupeError
from shared.predictions import EMBEDDING, Prediction, TaskSpec, decode, output_names, softmax

CLASSES = ("circle", "square", "triangle")
SPECS = {
    "classification": TaskSpec("classification", CLASSES),
    "tagging": TaskSpec("tagging", (), (("weather", ("clear", "fog")), ("shape", CLASSES))),
    "detection": TaskSpec("detection", CLASSES),
    "segmentation": TaskSpec("segmentation", CLASSES),
}
SHAPES: dict[str, list[tuple[int, ...]]] = {  # each output of a batch of 2 at 64×64, without the batch axis
    "classification": [(3,), (8,)],
    "tagging": [(2,), (3,), (8,)],
    "detection": [(3, 16, 16), (2, 16, 16), (2, 16, 16), (8,)],
    "segmentation": [(4, 64, 64), (8,)],
}
SIZES = [(48, 80), (64, 64)]


def random_outputs(family: str, seed: int = 0) -> list[np.ndarray]:
    """Outputs of a batch of 2, in output_names order, the last a unit-length embedding."""
    rng = np.random.default_rng(seed)
    outputs = [rng.normal(size=(2, *shape)).astype(np.float32) for shape in SHAPES[family]]
    outputs[-1] /= np.linalg.norm(outputs[-1], axis=1, keepdims=True)
    return outputs


def same(a: Prediction, b: Prediction) -> bool:
    def equal(x, y) -> bool:
        if isinstance(x, tuple) and isinstance(y, tuple):
            return len(x) == len(y) and all(equal(u, v) for u, v in zip(x, y, strict=True))
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            return isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and np.array_equal(x, y)
        return x == y

    return all(equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(Prediction))


def detection_outputs(*boxes: tuple[int, int, float, float, float]) -> list[np.ndarray]:
    """One image's heatmap, size and offset (batch of 1, 3 classes, 16×16 cells) with a peak per
    (row, column, logit, width, height in cells), all of class 0."""
    heatmap = np.full((1, 3, 16, 16), -10.0, np.float32)
    size = np.zeros((1, 2, 16, 16), np.float32)
    for row, column, logit, width, height in boxes:
        heatmap[0, 0, row, column] = logit
        size[0, :, row, column] = [width, height]
    return [heatmap, size, np.zeros((1, 2, 16, 16), np.float32)]


def test_importing_it_loads_neither_torch_nor_another_service():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, shared.predictions; print(sorted({m.split('.')[0] for m in sys.modules}))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "'torch'" not in loaded and "'services'" not in loaded


@pytest.mark.parametrize("family", list(SPECS))
def test_every_family_names_the_embedding_last(family):
    names = output_names(SPECS[family])
    assert names[-1] == EMBEDDING and len(names) == len(SHAPES[family])


@pytest.mark.parametrize("family", list(SPECS))
def test_outputs_by_name_decode_as_outputs_in_order(family):
    spec = SPECS[family]
    outputs = random_outputs(family)
    by_name = dict(reversed(list(zip(output_names(spec), outputs, strict=True))))  # Triton's order is its own
    in_order = decode(spec, outputs, 64, SIZES, min_score=0.0)
    named = decode(spec, by_name, 64, SIZES, min_score=0.0)
    assert all(same(a, b) for a, b in zip(in_order, named, strict=True))
    for i, prediction in enumerate(in_order):
        assert prediction.embedding is not None and prediction.embedding.dtype == np.float32
        np.testing.assert_array_equal(prediction.embedding, outputs[-1][i])


@pytest.mark.parametrize("family", list(SPECS))
def test_outputs_of_a_model_exported_without_an_embedding_still_decode(family):
    spec = SPECS[family]
    outputs = random_outputs(family)
    with_embedding = decode(spec, outputs, 64, SIZES, min_score=0.0)
    task_outputs = dict(zip(output_names(spec), outputs[:-1], strict=False))
    for old in (outputs[:-1], task_outputs):
        predictions = decode(spec, old, 64, SIZES, min_score=0.0)
        assert all(p.embedding is None for p in predictions)
        assert all(
            same(p, dataclasses.replace(q, embedding=None)) for p, q in zip(predictions, with_embedding, strict=True)
        )


def test_outputs_the_task_needs_must_be_there():
    spec = SPECS["detection"]
    heatmap, size, _, embedding = random_outputs("detection")
    with pytest.raises(LoupeError, match="no output offset") as missing:
        decode(spec, {"heatmap": heatmap, "size": size, EMBEDDING: embedding}, 64, SIZES)
    assert missing.value.code == "internal"
    with pytest.raises(LoupeError, match="2 outputs where heatmap, size, offset, embedding were expected"):
        decode(spec, [heatmap, size], 64, SIZES)


def test_classification_and_tagging_give_whole_distributions():
    logits = np.array([[0.0, 3.0, 1.0]], np.float32)
    (cls,) = decode(SPECS["classification"], [logits], 64, [(8, 8)])
    (distribution,) = cls.probabilities
    np.testing.assert_allclose(distribution, softmax(logits[0]))
    assert cls.score == pytest.approx(distribution.max())
    weather, shape = np.array([[2.0, 0.0]], np.float32), np.array([[0.0, 0.0, 1.0]], np.float32)
    (tags,) = decode(SPECS["tagging"], [weather, shape], 64, [(8, 8)])
    assert [p.shape for p in tags.probabilities] == [(2,), (3,)]
    np.testing.assert_allclose(tags.probabilities[1], softmax(shape[0]))
    assert tags.tags == (0, 2) and tags.tag_scores == pytest.approx([p.max() for p in tags.probabilities])
    (boxes,) = decode(SPECS["detection"], detection_outputs(), 64, [(8, 8)])
    assert boxes.probabilities == ()


def test_decode_finds_boxes_in_original_pixels():
    spec = SPECS["detection"]
    heatmap = np.full((1, 3, 16, 16), -10.0, np.float32)
    heatmap[0, 1, 5, 3] = 5.0  # class 1, row 5, column 3
    size = np.zeros((1, 2, 16, 16), np.float32)
    size[0, :, 5, 3] = [4.0, 2.0]  # cells: 16×8 pixels at 64
    offset = np.zeros((1, 2, 16, 16), np.float32)
    offset[0, :, 5, 3] = [0.5, 0.25]
    (prediction,) = decode(spec, [heatmap, size, offset], 64, [(128, 256)])  # height 128, width 256
    assert prediction.box_classes.tolist() == [1]
    # centre (3.5, 5.25) cells = (14, 21) px at 64 -> x×4, y×2 in the original
    np.testing.assert_allclose(prediction.boxes, [[(14 - 8) * 4, (21 - 4) * 2, (14 + 8) * 4, (21 + 4) * 2]])
    assert prediction.box_scores[0] == pytest.approx(1 / (1 + np.exp(-5.0)))


def test_min_size_drops_boxes_narrower_or_lower_than_it_in_original_pixels():
    # At 64 px, 2×1 cells are 8×4 px; the original is twice as large: 16×8 px.
    outputs = detection_outputs((4, 4, 5.0, 2.0, 1.0), (10, 10, 3.0, 4.0, 4.0))  # the small box scores higher
    original = [(128, 128)]
    assert len(decode(SPECS["detection"], outputs, 64, original)[0].boxes) == 2
    (kept,) = decode(SPECS["detection"], outputs, 64, original, min_size=8.0)
    assert len(kept.boxes) == 2  # 16×8 px: exactly as large as asked
    (kept,) = decode(SPECS["detection"], outputs, 64, original, min_size=9.0, max_detections=1)
    # The small box goes before max_detections counts: the large one, though it scores lower, is kept.
    np.testing.assert_allclose(kept.boxes, [[8 * 10 - 16, 8 * 10 - 16, 8 * 10 + 16, 8 * 10 + 16]])


def test_min_score_and_max_detections_limit_the_boxes():
    outputs = detection_outputs((2, 2, 4.0, 2.0, 2.0), (8, 8, 0.0, 2.0, 2.0), (12, 12, -1.0, 2.0, 2.0))
    assert len(decode(SPECS["detection"], outputs, 64, [(64, 64)])[0].boxes) == 3
    (strict,) = decode(SPECS["detection"], outputs, 64, [(64, 64)], min_score=0.4)  # sigmoid(0) is 0.5
    assert strict.box_scores.tolist() == pytest.approx([1 / (1 + np.exp(-4.0)), 0.5])
    (one,) = decode(SPECS["detection"], outputs, 64, [(64, 64)], max_detections=1)
    assert one.box_scores.tolist() == pytest.approx([1 / (1 + np.exp(-4.0))])


def test_decode_resizes_masks_and_reads_classes_and_tags():
    logits = np.zeros((1, 4, 64, 64), np.float32)
    logits[0, 2, :32, :] = 1.0
    (seg,) = decode(SPECS["segmentation"], [logits], 64, [(30, 20)])
    assert seg.mask is not None and seg.mask.shape == (30, 20)
    assert (seg.mask[:15] == 2).all() and (seg.mask[15:] == 0).all()
    (cls,) = decode(SPECS["classification"], [np.array([[0.0, 3.0, 0.0]])], 64, [(8, 8)])
    assert cls.label == 1 and cls.score == pytest.approx(np.exp(3) / (np.exp(3) + 2))
    (tags,) = decode(SPECS["tagging"], [np.array([[0.0, 1.0]]), np.array([[5.0, 0.0, 0.0]])], 64, [(8, 8)])
    assert tags.tags == (1, 0)


def test_mask_threshold_turns_unsure_pixels_into_background():
    logits = np.zeros((1, 4, 64, 64), np.float32)
    logits[0, 3, :, :32] = 5.0  # left half: class 3 at about 0.98
    logits[0, 1, :, 32:] = 1.0  # right half: class 1 at about 0.48
    (plain,) = decode(SPECS["segmentation"], [logits], 64, [(64, 64)])
    assert plain.mask is not None
    assert (plain.mask[:, :32] == 3).all() and (plain.mask[:, 32:] == 1).all()
    (sure,) = decode(SPECS["segmentation"], [logits], 64, [(64, 64)], mask_threshold=0.5)
    assert sure.mask is not None
    assert (sure.mask[:, :32] == 3).all() and (sure.mask[:, 32:] == 0).all()
