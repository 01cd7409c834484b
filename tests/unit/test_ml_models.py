"""Models, losses and data of the training core (services/training/ml), on tiny inputs."""

import os

# libgomp's threads spin while they wait; on a machine shared with other processes that makes torch many
# times slower. Read when torch loads, so it is set before the first import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import onnxruntime
import pytest
import torch

from proto.training import TrainingConfig
from services.training.ml.data import ExampleDataset, centernet_targets, collate
from services.training.ml.examples import Example
from services.training.ml.export import INPUT_NAME, check_onnx, export_onnx
from services.training.ml.losses import loss
from services.training.ml.models import WIDTHS, build_model, embedding
from shared.predictions import EMBEDDING, TaskSpec, output_names
from tests.unit.test_ml_predictions import SPECS


@pytest.fixture(autouse=True)
def threads():
    torch.set_num_threads(2)


def example(seed: int, size: int = 64) -> Example:
    """A square of one class on noise, labelled for every family at once."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    cls = seed % 3
    x0, y0 = (int(v) for v in rng.integers(4, size // 2, 2))
    side = size // 4
    image[y0 : y0 + side, x0 : x0 + side, cls] = 250
    mask = np.zeros((size, size), np.uint8)
    mask[y0 : y0 + side, x0 : x0 + side] = cls + 1
    return Example(
        image=image,
        boxes=np.array([[x0, y0, x0 + side, y0 + side]], np.float32),
        box_classes=np.array([cls], np.int64),
        mask=mask,
        label=cls,
        tags=(seed % 2, cls),
    )


EXPECTED_SHAPES: dict[str, list[tuple[int, ...]]] = {  # for a batch of 2 at 64×64, before the embedding
    "classification": [(2, 3)],
    "tagging": [(2, 2), (2, 3)],
    "detection": [(2, 3, 16, 16), (2, 2, 16, 16), (2, 2, 16, 16)],
    "segmentation": [(2, 4, 64, 64)],
}


@pytest.mark.parametrize("model_size", ["small", "medium"])
@pytest.mark.parametrize("family", list(SPECS))
def test_every_model_gives_its_named_outputs_at_the_documented_shapes(family, model_size):
    spec = SPECS[family]
    model = build_model(spec, TrainingConfig(model_size=model_size)).eval()
    with torch.no_grad():
        outputs = model(torch.rand(2, 3, 64, 64))
        single = model(torch.rand(1, 3, 96, 96))
    assert isinstance(outputs, tuple)
    width = WIDTHS[model_size]
    assert [tuple(o.shape) for o in outputs] == [*EXPECTED_SHAPES[family], (2, width.stages[-1] + width.neck)]
    assert len(output_names(spec)) == len(outputs) and output_names(spec)[-1] == EMBEDDING
    assert all(o.shape[0] == 1 for o in single)


@pytest.mark.parametrize("family", list(SPECS))
def test_every_model_ends_with_a_unit_length_embedding(family):
    model = build_model(SPECS[family], TrainingConfig()).eval()
    with torch.no_grad():
        vectors = model(torch.rand(3, 3, 64, 64))[-1]
    assert vectors.dtype == torch.float32
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(3))


def test_a_zero_embedding_stays_zero_rather_than_nan():
    vectors = embedding(torch.zeros(2, 3), torch.zeros(2, 4))
    assert vectors.shape == (2, 7) and torch.equal(vectors, torch.zeros(2, 7))


@pytest.mark.parametrize("family", list(SPECS))
def test_the_onnx_export_carries_every_output_embedding_last(family):
    """What Triton serves: each output named, the embedding as torch computes it, at any batch size."""
    spec = SPECS[family]
    torch.manual_seed(0)
    model = build_model(spec, TrainingConfig()).eval()
    onnx_bytes = export_onnx(model, output_names(spec), 32)
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    assert tuple(o.name for o in session.get_outputs()) == output_names(spec)
    images = torch.rand(3, 3, 32, 32)
    check_onnx(model, onnx_bytes, images)
    vectors = session.run([EMBEDDING], {INPUT_NAME: images.numpy()})[0]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_medium_is_larger_than_small():
    sizes = [
        sum(p.numel() for p in build_model(SPECS["detection"], TrainingConfig(model_size=s)).parameters())
        for s in ("small", "medium")
    ]
    assert sizes[1] > 2 * sizes[0]


def test_output_names_are_identifiers_whatever_the_tag_group_names():
    spec = TaskSpec("tagging", (), (("time of day", ("day", "night")), ("größe", ("s", "l"))))
    assert output_names(spec) == ("tag0_logits", "tag1_logits", "embedding")


@pytest.mark.parametrize("family", list(SPECS))
def test_loss_decreases_on_a_tiny_batch(family):
    torch.manual_seed(0)
    spec = SPECS[family]
    model = build_model(spec, TrainingConfig())
    images, targets = collate([ExampleDataset(spec, [example(i)], 64, augment=False)[0] for i in range(4)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        value = loss(spec, model(images), targets)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(value.item())
    assert losses[-1] < 0.5 * losses[0]


def test_resizing_scales_boxes_and_masks_together():
    original = example(1, size=128)
    image, targets = ExampleDataset(SPECS["segmentation"], [original], 64, augment=False)[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    ys, xs = torch.nonzero(targets["mask"], as_tuple=True)
    x0, y0, x1, y1 = (original.boxes[0] / 2).tolist()
    mask_box = (xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1)
    assert mask_box == pytest.approx((x0, y0, x1, y1), abs=0.5)  # half a pixel: nearest sampling


def test_flipping_keeps_boxes_on_their_mask():
    torch.manual_seed(0)
    data = ExampleDataset(SPECS["segmentation"], [example(2)], 64, augment=True)
    detection = ExampleDataset(SPECS["detection"], [example(2)], 64, augment=True)
    flipped = False
    for _ in range(12):
        state = torch.get_rng_state()
        _, seg = data[0]
        torch.set_rng_state(state)  # the same draws: the same flip
        _, det = detection[0]
        ys, xs = torch.nonzero(seg["mask"], as_tuple=True)
        centre = torch.nonzero(det["weight"])[0]  # (row, col) of the centre cell at stride 4
        assert centre.tolist() == [int((ys.float().mean() + 0.5) // 4), int((xs.float().mean() + 0.5) // 4)]
        flipped |= xs.min().item() > 32
    assert flipped


def test_centernet_targets_peak_at_each_centre():
    targets = centernet_targets(torch.tensor([[8.0, 12.0, 24.0, 20.0]]), torch.tensor([2]), 3, 64)
    heatmap = targets["heatmap"]
    assert heatmap.shape == (3, 16, 16) and heatmap[2, 4, 4] == 1.0 and heatmap[:2].sum() == 0
    assert targets["size"][:, 4, 4].tolist() == [4.0, 2.0]
    assert targets["offset"][:, 4, 4].tolist() == [0.0, 0.0]
    assert targets["weight"].sum() == 1
