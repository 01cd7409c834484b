"""Active-learning heuristics (services/inference/heuristics.py) on hand-made distributions and embeddings."""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest

from proto.inference import Heuristic
from proto.training import FAMILIES
from services.inference import heuristics
from services.inference.heuristics import (
    HEURISTICS,
    MEASURES,
    covering_picks,
    detection_score,
    distributions_of,
    entropy,
    heuristic_for,
    k_center_greedy,
    least_confidence,
    margin,
    rank,
    uncertainty_scores,
)
from shared.errors import LoupeError
from shared.predictions import MAX_DETECTIONS, Prediction

UNCERTAINTY = ("least-confidence", "margin", "entropy")


def one_hot(classes: int, index: int = 0) -> np.ndarray:
    return np.eye(classes)[index]


def uniform(classes: int) -> np.ndarray:
    return np.full(classes, 1.0 / classes)


@pytest.mark.parametrize("measure", MEASURES.values(), ids=MEASURES.keys())
@pytest.mark.parametrize("classes", [2, 3, 5])
def test_uniform_scores_1_and_one_hot_0_whatever_the_number_of_classes(measure, classes):
    assert measure(uniform(classes)) == pytest.approx(1.0)
    assert measure(one_hot(classes, classes - 1)) == pytest.approx(0.0)


@pytest.mark.parametrize("measure", MEASURES.values(), ids=MEASURES.keys())
def test_a_single_class_is_never_uncertain(measure):
    assert measure(np.array([1.0])) == 0.0


@pytest.mark.parametrize("measure", MEASURES.values(), ids=MEASURES.keys())
def test_measures_score_each_row(measure):
    rows = np.stack([uniform(3), one_hot(3), np.array([0.6, 0.3, 0.1])])
    scores = measure(rows)
    assert scores.shape == (3,)
    assert scores[0] > scores[2] > scores[1]


def test_least_confidence_values():
    assert least_confidence(np.array([0.5, 0.3, 0.2])) == pytest.approx(0.5 * 3 / 2)
    assert least_confidence(np.array([0.9, 0.1])) == pytest.approx(0.2)


def test_margin_orders_by_the_gap_between_the_two_most_likely():
    close = np.array([0.45, 0.15, 0.40])
    apart = np.array([0.6, 0.2, 0.2])
    assert margin(close) == pytest.approx(0.95)
    assert margin(apart) == pytest.approx(0.6)
    # Least confidence cannot tell them apart as well: the runner-up is what margin reads.
    tied_top = np.array([0.5, 0.5, 0.0])
    spread = np.array([0.5, 0.25, 0.25])
    assert margin(tied_top) == pytest.approx(1.0)
    assert margin(spread) == pytest.approx(0.75)
    assert least_confidence(tied_top) == pytest.approx(least_confidence(spread))


def test_entropy_values_in_units_of_the_maximum():
    assert entropy(np.array([0.5, 0.25, 0.25, 0.0])) == pytest.approx(1.5 / 2)  # 1.5 bits of at most 2
    assert entropy(np.array([0.5, 0.25, 0.25])) == pytest.approx(1.5 * math.log(2) / math.log(3))
    assert entropy(np.array([0.9, 0.1])) == pytest.approx(-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) / math.log(2))
    assert entropy(np.array([1.0, 0.0, 0.0, 0.0])) == 0.0  # 0 log 0 is 0, not nan


def test_tagging_scores_the_mean_over_groups():
    certain, unsure = one_hot(3), uniform(4)
    [both_unsure, one_unsure, none_unsure] = uncertainty_scores(
        "entropy", "tagging", [(unsure, uniform(3)), (certain, unsure), (certain, one_hot(4))]
    )
    assert (both_unsure, one_unsure, none_unsure) == pytest.approx((1.0, 0.5, 0.0))


def test_classification_needs_probability_vectors():
    with pytest.raises(ValueError, match="probability vectors"):
        uncertainty_scores("entropy", "classification", [uniform(3)])  # a bare vector, not (vector,)
    with pytest.raises(ValueError, match="probability vectors"):
        uncertainty_scores("entropy", "classification", [()])


@pytest.mark.parametrize("heuristic", UNCERTAINTY)
def test_detection_sums_the_detections_measures_over_the_most_there_may_be(heuristic):
    measure = MEASURES[heuristic]
    assert detection_score(measure, np.array([0.5, 0.5])) == pytest.approx(2 / MAX_DETECTIONS)  # two coin tosses
    assert detection_score(measure, np.array([0.5, 0.5]), max_detections=4) == pytest.approx(0.5)
    assert detection_score(measure, np.full(MAX_DETECTIONS, 0.5)) == pytest.approx(1.0)
    torn, certain = np.array([0.97, 0.5, 0.06]), np.array([0.99, 0.98, 0.01])
    expected = sum(float(measure(np.array([p, 1 - p]))) for p in torn) / MAX_DETECTIONS
    assert detection_score(measure, torn) == pytest.approx(expected)
    assert detection_score(measure, torn) > detection_score(measure, certain)
    # Unlike a mean, many low background peaks do not hide the objects the model doubts.
    doubted_among_clutter = np.concatenate([[0.5, 0.5], np.full(20, 0.05)])
    assert detection_score(measure, doubted_among_clutter) > detection_score(measure, np.array([0.5]))


@pytest.mark.parametrize("heuristic", UNCERTAINTY)
def test_an_image_without_detections_is_certain(heuristic):
    measure = MEASURES[heuristic]
    empty = np.zeros(0, np.float32)
    assert detection_score(measure, empty) == 0.0
    [torn, certain, nothing] = uncertainty_scores(heuristic, "detection", [np.array([0.5]), np.array([0.99]), empty])
    assert torn > certain > nothing == 0.0


def test_what_is_not_a_distribution_is_refused():
    with pytest.raises(ValueError, match="classification probabilities must be probabilities"):
        uncertainty_scores("entropy", "classification", [(np.array([2.0, -1.0, 0.5]),)])  # logits
    with pytest.raises(ValueError, match="tagging probabilities"):
        uncertainty_scores("entropy", "tagging", [(uniform(3), np.array([0.5, 0.4]))])
    with pytest.raises(ValueError, match="C×H×W"):
        pixels = np.broadcast_to(uniform(3), (4, 5, 3))  # H×W×C: classes on the wrong axis
        uncertainty_scores("entropy", "segmentation", [pixels])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        uncertainty_scores("entropy", "detection", [np.array([0.5, 1.5])])
    # float32 softmax outputs pass as they are.
    vector = np.array([0.2, 0.3, 0.5], np.float32) * np.float32(1.0001)
    assert uncertainty_scores("entropy", "classification", [(vector,)])[0] > 0


def test_detection_scores_fit_max_detections():
    with pytest.raises(ValueError, match="max_detections = 2"):
        uncertainty_scores("margin", "detection", [np.full(3, 0.5)], max_detections=2)


def test_detection_scores_must_be_one_per_detection():
    with pytest.raises(ValueError, match="one score per detection"):
        uncertainty_scores("entropy", "detection", [np.zeros((2, 2))])


def test_segmentation_scores_the_mean_over_pixels():
    pixels = np.zeros((3, 2, 4))  # C×H×W
    pixels[:, 0, :] = uniform(3)[:, None]  # the top row is uniform
    pixels[0, 1, :] = 1.0  # the bottom row certain background
    [score] = uncertainty_scores("entropy", "segmentation", [pixels])
    assert score == pytest.approx(0.5)
    with pytest.raises(ValueError, match="C×H×W"):
        uncertainty_scores("entropy", "segmentation", [pixels[0]])


def test_distributions_come_from_predictions():
    vector = uniform(3)
    assert distributions_of("classification", Prediction(label=0, score=1 / 3, probabilities=(vector,))) == (vector,)
    scores = np.array([0.9, 0.2], np.float32)
    assert distributions_of("detection", Prediction(box_scores=scores)) is scores
    with pytest.raises(ValueError, match="no probabilities"):
        distributions_of("tagging", Prediction(tags=(0,), tag_scores=(1.0,)))
    with pytest.raises(ValueError, match="softmax"):
        distributions_of("segmentation", Prediction(mask=np.zeros((2, 2), np.uint8)))


def test_the_heuristics_are_those_the_api_names():
    assert set(get_args(Heuristic)) == set(heuristics.BY_ID)


def test_every_heuristic_ranks_every_family():
    assert [h.id for h in HEURISTICS] == ["random", "least-confidence", "margin", "entropy", "core-set"]
    for heuristic in HEURISTICS:
        assert heuristic.families == FAMILIES
        assert heuristic_for(heuristic.id, "detection") is heuristic
    assert {h.id: h.uses for h in HEURISTICS}["core-set"] == "embeddings"


def test_an_unknown_heuristic_is_refused_naming_the_known_ones():
    with pytest.raises(LoupeError) as caught:
        rank("bald", "classification", 3, distributions=[])
    assert caught.value.code == "invalid"
    assert caught.value.details["path"] == "$.heuristic"
    assert "entropy" in caught.value.message


def test_a_family_a_heuristic_does_not_rank_is_refused(monkeypatch):
    only_classification = heuristics.Heuristic("entropy", "", ("classification",), "predictions")
    monkeypatch.setitem(heuristics.BY_ID, "entropy", only_classification)
    with pytest.raises(LoupeError, match="does not rank detection models"):
        rank("entropy", "detection", 3, distributions=[])


@pytest.mark.parametrize("heuristic", UNCERTAINTY)
def test_rank_puts_the_most_uncertain_first_and_ties_by_index(heuristic):
    pool = [(one_hot(3),), (uniform(3),), (np.array([0.6, 0.3, 0.1]),), (uniform(3),)]
    ranked = rank(heuristic, "classification", 3, distributions=pool)
    assert [index for index, _ in ranked] == [1, 3, 2]
    assert ranked[0][1] == pytest.approx(1.0)


@pytest.mark.parametrize("heuristic", [h.id for h in HEURISTICS])
def test_rank_edge_cases(heuristic):
    embeddings = np.eye(3)
    pool = [(one_hot(3, i),) for i in range(3)]
    everything = rank(heuristic, "classification", 10, distributions=pool, embeddings=embeddings)
    assert sorted(index for index, _ in everything) == [0, 1, 2]  # n > N: all of them, each once
    assert rank(heuristic, "classification", 0, distributions=pool, embeddings=embeddings) == []
    assert rank(heuristic, "classification", 5, distributions=[], embeddings=np.zeros((0, 3))) == []
    with pytest.raises(ValueError, match="0 or more"):
        rank(heuristic, "classification", -1, distributions=pool, embeddings=embeddings)


def test_rank_needs_what_its_heuristic_reads():
    with pytest.raises(ValueError, match="embeddings"):
        rank("core-set", "tagging", 3, distributions=[])
    with pytest.raises(ValueError, match="distributions"):
        rank("margin", "tagging", 3, embeddings=np.eye(3))
    with pytest.raises(ValueError, match="the pool"):
        rank("random", "tagging", 3)
    with pytest.raises(ValueError, match="both alike"):
        rank("random", "tagging", 3, distributions=[], embeddings=np.eye(3))


def test_random_is_a_permutation_fixed_by_the_seed():
    pool = np.zeros((50, 2))
    first = rank("random", "detection", 50, embeddings=pool, seed=7)
    assert sorted(index for index, _ in first) == list(range(50))
    assert rank("random", "detection", 50, embeddings=pool, seed=7) == first
    assert rank("random", "detection", 50, embeddings=pool, seed=8) != first
    assert [score for _, score in first] == sorted((score for _, score in first), reverse=True)


def clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled and pool points of one main cluster, and a small far-away outlier cluster in the pool only."""
    rng = np.random.default_rng(seed)
    labeled = rng.normal(0, 1, (40, 8))
    main = rng.normal(0, 1, (60, 8))
    outliers = rng.normal(0, 0.2, (5, 8)) + 10
    return labeled, main, outliers


def test_k_center_greedy_picks_the_outlier_cluster_first():
    labeled, main, outliers = clusters()
    pool = np.concatenate([main, outliers])
    picks = k_center_greedy(pool, labeled, 3)
    # One pick covers the tight outlier cluster; then the main cluster's loneliest points.
    assert picks[0] >= len(main)
    assert all(index < len(main) for index in picks[1:])
    # The same with nothing labelled: the first pick is farthest from the pool's mean.
    assert k_center_greedy(pool, None, 1)[0] >= len(main)
    assert k_center_greedy(pool, np.zeros((0, 8)), 3) == k_center_greedy(pool, None, 3)


def test_k_center_greedy_is_deterministic_and_scores_shrink():
    labeled, main, outliers = clusters(1)
    pool = np.concatenate([main, outliers])
    picks = covering_picks(pool, labeled, 20)
    assert covering_picks(pool.copy(), labeled.copy(), 20) == picks
    distances = [distance for _, distance in picks]
    assert distances == sorted(distances, reverse=True)
    assert rank("core-set", "segmentation", 20, embeddings=pool, labeled_embeddings=labeled) == picks


def test_k_center_greedy_matches_the_definition():
    rng = np.random.default_rng(2)
    pool, labeled = rng.normal(size=(30, 4)), rng.normal(size=(7, 4))
    centres = list(labeled)
    expected = []
    for _ in range(10):
        nearest = [min(np.linalg.norm(row - centre) for centre in centres) for row in pool]
        chosen = int(np.argmax(nearest))
        expected.append((chosen, nearest[chosen]))
        centres.append(pool[chosen])
    picks = covering_picks(pool, labeled, 10)
    assert [index for index, _ in picks] == [index for index, _ in expected]
    assert [distance for _, distance in picks] == pytest.approx([distance for _, distance in expected])


def test_labelled_embeddings_are_compared_in_chunks_with_the_same_result(monkeypatch):
    rng = np.random.default_rng(3)
    pool, labeled = rng.normal(size=(50, 4)), rng.normal(size=(25, 4))
    whole = covering_picks(pool, labeled, 10)
    monkeypatch.setattr(heuristics, "LABELED_CHUNK", 4)
    chunked = covering_picks(pool, labeled, 10)
    assert [index for index, _ in chunked] == [index for index, _ in whole]
    assert [distance for _, distance in chunked] == pytest.approx([distance for _, distance in whole])


def test_k_center_greedy_edge_cases():
    assert k_center_greedy(np.zeros((0, 4)), None, 3) == []
    assert k_center_greedy(np.eye(4), None, 0) == []
    # n > N, with duplicates: every index once, never one twice.
    pool = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert sorted(k_center_greedy(pool, None, 10)) == [0, 1, 2, 3]
    assert sorted(k_center_greedy(pool, pool, 10)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="M×2"):
        k_center_greedy(pool, np.zeros((3, 5)), 2)
    with pytest.raises(ValueError, match="N×D"):
        k_center_greedy(np.zeros(4), None, 2)
