"""The training loop (services/training/ml/train.py): resume, cancellation, early stopping, validation; and
the metrics (evaluate.py) on predictions whose score is known."""

import os

# See test_ml_models.py: torch's waiting threads must not spin on a shared machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import dataclasses
import io

import msgspec
import numpy as np
import pytest
import torch

from proto.training import TrainingConfig
from services.training.ml.evaluate import score
from services.training.ml.train import EpochReport, train
from shared.errors import LoupeError
from shared.predictions import Prediction, TaskSpec
from tests.unit.test_ml_models import SPECS, example

CONFIG = TrainingConfig(epochs=3, batch_size=4, image_size=32, device="cpu", learning_rate=3e-3, warmup_epochs=1)
TRAIN = [example(i, size=32) for i in range(12)]
VAL = [example(100 + i, size=32) for i in range(4)]


@pytest.fixture(autouse=True)
def threads():
    torch.set_num_threads(2)


def run(config: TrainingConfig = CONFIG, family: str = "detection", **kwargs) -> tuple[torch.nn.Module, list[EpochReport]]:
    reports: list[EpochReport] = []
    model = train(SPECS[family], config, TRAIN, VAL, on_epoch=reports.append, **kwargs)
    return model, reports


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_resuming_from_a_checkpoint_continues_at_the_next_epoch_with_the_same_result():
    config = msgspec.structs.replace(CONFIG, early_stopping_patience=None)
    whole, reports = run(config)
    assert [r.epoch for r in reports] == [1, 2, 3] and all(r.epochs == 3 for r in reports)

    resumed, rest = run(config, resume=reports[0].checkpoint)

    assert [r.epoch for r in rest] == [2, 3]
    assert [r.loss for r in rest] == [r.loss for r in reports[1:]]
    assert [r.metrics for r in rest] == [r.metrics for r in reports[1:]]
    assert same_weights(whole, resumed)


def test_a_checkpoint_from_another_configuration_is_refused():
    _, reports = run(msgspec.structs.replace(CONFIG, epochs=1))
    with pytest.raises(LoupeError) as error:
        run(msgspec.structs.replace(CONFIG, epochs=1, learning_rate=1e-2), resume=reports[0].checkpoint)
    assert error.value.details["path"] == "resume" and "learning_rate" in error.value.message
    with pytest.raises(LoupeError):
        run(msgspec.structs.replace(CONFIG, epochs=1), resume=b"not a checkpoint")


def test_should_stop_ends_training_before_the_next_batch():
    polls = 0

    def stop_on_third_poll() -> bool:
        nonlocal polls
        polls += 1
        return polls >= 3

    model, reports = run(should_stop=stop_on_third_poll)
    assert polls == 3  # two batches trained, the third never started
    assert reports == [] and not model.training


def test_early_stopping_ends_a_run_whose_metric_stops_improving():
    # A learning rate this small leaves the weights where they were; only BatchNorm's statistics still move.
    config = msgspec.structs.replace(CONFIG, epochs=8, learning_rate=1e-12, early_stopping_patience=2, augment=False)
    _, reports = run(config, family="classification")
    accuracies = [r.metrics["accuracy"] for r in reports]
    best_epoch = accuracies.index(max(accuracies)) + 1
    assert len(reports) < 8 and reports[-1].epoch == best_epoch + 2


def test_epoch_reports_measure_the_run():
    _, reports = run(msgspec.structs.replace(CONFIG, epochs=1), family="segmentation")
    (report,) = reports
    assert report.loss > 0 and report.images_per_s > 0 and 0 <= report.data_seconds <= report.seconds
    assert set(report.metrics) >= {"miou", "miou_objects"} and len(report.checkpoint) > 1000


def test_pretrained_weights_initialise_the_layers_they_share():
    _, reports = run(msgspec.structs.replace(CONFIG, epochs=1), family="detection")
    detector = torch.load(io.BytesIO(reports[0].checkpoint), weights_only=True)["model"]
    config = msgspec.structs.replace(CONFIG, epochs=1, learning_rate=1e-12)  # the weights stay as loaded
    tagger = train(SPECS["tagging"], config, TRAIN, [], pretrained=reports[0].checkpoint).state_dict()
    shared = [key for key in tagger if key.startswith(("backbone.", "neck.")) and key.endswith("weight")]
    assert len(shared) > 20 and all(torch.allclose(tagger[key], detector[key]) for key in shared)
    with pytest.raises(LoupeError) as error:
        train(SPECS["tagging"], config, TRAIN, [], pretrained=b"junk")
    assert error.value.details["path"] == "pretrained"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"image_size": 48}, "config.image_size"),
        ({"epochs": 0}, "config.epochs"),
        ({"schedule": "linear"}, "config.schedule"),
        ({"early_stopping_patience": 0}, "config.early_stopping_patience"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(change, path):
    with pytest.raises(LoupeError) as error:
        run(msgspec.structs.replace(CONFIG, **change))
    assert error.value.code == "invalid" and error.value.details["path"] == path


def test_bad_labels_are_refused_with_the_example_named():
    bad = dataclasses.replace(TRAIN[3], label=7)
    with pytest.raises(LoupeError) as error:
        train(SPECS["classification"], CONFIG, [*TRAIN[:3], bad], VAL)
    assert error.value.details["path"] == "train_set[3].label"
    with pytest.raises(LoupeError) as error:
        train(SPECS["classification"], CONFIG, [], VAL)
    assert error.value.details["path"] == "train_set"


@pytest.mark.parametrize("schedule", ["cosine", "step", "constant"])
def test_every_schedule_trains(schedule):
    _, reports = run(msgspec.structs.replace(CONFIG, epochs=2, schedule=schedule), family="tagging")
    assert len(reports) == 2 and np.isfinite(reports[-1].loss)


# -- metrics -------------------------------------------------------------------------------------------------


def perfect(family: str) -> list[Prediction]:
    predictions = []
    for truth in VAL:
        if family == "classification":
            predictions.append(Prediction(label=truth.label, score=1.0))
        elif family == "tagging":
            predictions.append(Prediction(tags=truth.tags, tag_scores=(1.0,) * len(truth.tags)))
        elif family == "detection":
            scores = np.ones(len(truth.boxes), np.float32)
            predictions.append(Prediction(boxes=truth.boxes, box_classes=truth.box_classes, box_scores=scores))
        else:
            predictions.append(Prediction(mask=truth.mask))
    return predictions


@pytest.mark.parametrize(
    ("family", "metrics"),
    [
        ("classification", ["accuracy", "macro_f1"]),
        ("tagging", ["accuracy", "macro_f1", "accuracy/weather", "macro_f1/shape"]),
        ("detection", ["map50", "map50_95"]),
        ("segmentation", ["miou", "miou_objects", "pixel_accuracy"]),
    ],
)
def test_perfect_predictions_score_one(family, metrics, capsys):
    evaluation = score(SPECS[family], perfect(family), VAL)
    assert {name: evaluation.metrics[name] for name in metrics} == {name: 1.0 for name in metrics}
    assert evaluation.per_class
    assert capsys.readouterr().out == ""  # pycocotools' prints are kept out of the logs


def test_classification_scores_match_a_hand_computed_case():
    spec = TaskSpec("classification", ("a", "b", "c"))
    truth = [dataclasses.replace(VAL[0], label=label) for label in (0, 0, 1, 1)]
    predictions = [Prediction(label=label) for label in (0, 1, 1, 1)]
    evaluation = score(spec, predictions, truth)
    # a: precision 1, recall 0.5 -> F1 2/3; b: precision 2/3, recall 1 -> F1 0.8; c occurs nowhere.
    assert evaluation.metrics["accuracy"] == 0.75
    assert evaluation.metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert evaluation.per_class["b"]["precision"] == pytest.approx(2 / 3)


def test_detection_without_any_detection_scores_zero():
    evaluation = score(SPECS["detection"], [Prediction() for _ in VAL], VAL)
    assert evaluation.metrics == {"map50": 0.0, "map50_95": 0.0}
