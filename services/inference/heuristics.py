"""Active-learning heuristics: which unlabelled images are most worth labelling next.

Numpy only. Uncertainty heuristics (least-confidence, margin, entropy) score each image from the
distributions its model predicted; core-set picks images that cover the pool's embedding space (Sener &
Savarese, k-center greedy); random is the baseline every other one must beat. Every score is higher for
an image more worth labelling, and every uncertainty score lies in [0, 1]: each measure is normalised so
that a one-hot distribution scores 0 and a uniform one 1, whatever the number of classes, which lets
tag groups of different sizes, or a Bernoulli and a 5-class pixel, be averaged on one scale.

What each family's distributions are, per image (`Distributions`):
- classification: one softmax vector (Prediction.probabilities holds it as a 1-tuple);
- tagging: one softmax vector per tag group (Prediction.probabilities); the image scores the mean over
  groups, since labelling it answers every group, and for independent groups the image's entropy is the
  sum of theirs;
- detection: the detections' scores (Prediction.box_scores), each a Bernoulli [p, 1 - p]; the image scores
  the sum over its detections, divided by the most there may be (see `detection_score`);
- segmentation: C×H×W per-pixel class probabilities; the image scores the mean over pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from proto.training import FAMILIES, Family
from shared.errors import invalid
from shared.predictions import MAX_DETECTIONS, Prediction

# Per image: a sequence of probability vectors (classification, tagging), a 1-D array of detection scores
# (detection) or a C×H×W array of pixel probabilities (segmentation).
Distributions = Sequence[np.ndarray] | np.ndarray
Uses = Literal["nothing", "predictions", "embeddings"]
# How far float32 softmax outputs may stray from summing to exactly 1.
TOLERANCE = 1e-3
# Pool rows compared with labelled rows at once when finding each pool image's nearest labelled one: bounds
# the memory of that step to this many × the pool's size distances.
LABELED_CHUNK = 1024


@dataclass(frozen=True)
class Heuristic:
    id: str
    description: str
    families: tuple[Family, ...]
    uses: Uses  # what the caller must compute for the pool: nothing, decoded predictions, or embeddings


HEURISTICS: tuple[Heuristic, ...] = (
    Heuristic("random", "a uniformly random order: the baseline the others must beat", FAMILIES, "nothing"),
    Heuristic(
        "least-confidence",
        "images whose most likely answer is least likely: 1 - max p, scaled to [0, 1]",
        FAMILIES,
        "predictions",
    ),
    Heuristic(
        "margin",
        "images whose two most likely answers are closest: 1 - (p1 - p2)",
        FAMILIES,
        "predictions",
    ),
    Heuristic(
        "entropy",
        "images whose predicted distribution has the most entropy, divided by its maximum",
        FAMILIES,
        "predictions",
    ),
    Heuristic(
        "core-set",
        "images that together cover the pool's embeddings best, farthest from the labelled ones first "
        "(k-center greedy); the score is the distance to the nearest labelled or already chosen image",
        FAMILIES,
        "embeddings",
    ),
)
BY_ID = {heuristic.id: heuristic for heuristic in HEURISTICS}


def heuristic_for(heuristic_id: str, family: Family) -> Heuristic:
    """The heuristic with this id, if it ranks images of this family's models; else a LoupeError for `heuristic`."""
    heuristic = BY_ID.get(heuristic_id)
    if heuristic is None:
        raise invalid(
            f"{heuristic_id!r} is not a heuristic; use one of {', '.join(BY_ID)}",
            path="$.heuristic",
        )
    if family not in heuristic.families:
        raise invalid(
            f"heuristic {heuristic_id!r} does not rank {family} models; it ranks {', '.join(heuristic.families)}",
            path="$.heuristic",
        )
    return heuristic


# Measures: rows of probabilities (…×K, classes on the last axis) -> one score per row in [0, 1].


def least_confidence(probabilities: np.ndarray) -> np.ndarray:
    classes = probabilities.shape[-1]
    if classes < 2:
        return np.zeros(probabilities.shape[:-1])
    return (1.0 - probabilities.max(axis=-1)) * classes / (classes - 1)


def margin(probabilities: np.ndarray) -> np.ndarray:
    if probabilities.shape[-1] < 2:
        return np.zeros(probabilities.shape[:-1])
    top_two = np.partition(probabilities, -2, axis=-1)[..., -2:]
    return 1.0 - (top_two[..., 1] - top_two[..., 0])


def entropy(probabilities: np.ndarray) -> np.ndarray:
    classes = probabilities.shape[-1]
    if classes < 2:
        return np.zeros(probabilities.shape[:-1])
    # 0 log 0 is 0: clipping only keeps log finite; the product with p = 0 is still 0.
    terms = probabilities * np.log(np.clip(probabilities, 1e-12, None))
    return np.clip(-terms.sum(axis=-1) / np.log(classes), 0.0, 1.0)


Measure = Callable[[np.ndarray], np.ndarray]
MEASURES: dict[str, Measure] = {"least-confidence": least_confidence, "margin": margin, "entropy": entropy}


def bernoulli(scores: np.ndarray) -> np.ndarray:
    """Detection scores p (N) -> N×2 distributions [p, 1 - p]."""
    scores = np.asarray(scores, np.float64)
    return np.stack([scores, 1.0 - scores], axis=-1)


def image_score(measure: Measure, family: Family, distributions: Distributions, max_detections: int) -> float:
    """One image's uncertainty under `measure`, in [0, 1]."""
    if family == "classification" or family == "tagging":
        groups = [np.asarray(group, np.float64) for group in distributions]
        if not groups or any(group.ndim != 1 for group in groups):
            raise ValueError(f"a {family} image needs a sequence of probability vectors, one per head")
        return float(np.mean([measure(probabilities(group, f"{family} probabilities")) for group in groups]))
    if family == "detection":
        return detection_score(measure, np.asarray(distributions), max_detections)
    pixels = np.asarray(distributions, np.float64)
    if pixels.ndim != 3:
        raise ValueError(f"segmentation probabilities must be C×H×W, not of shape {pixels.shape}")
    return float(measure(probabilities(np.moveaxis(pixels, 0, -1), "segmentation probabilities (C×H×W)")).mean())


def probabilities(rows: np.ndarray, what: str) -> np.ndarray:
    """rows (…×K) as they are, if each is a distribution; a ValueError naming `what` if not. Catches logits
    passed for probabilities and classes on the wrong axis, which would otherwise rank silently wrong."""
    if rows.size and (rows.min() < -TOLERANCE or not np.allclose(rows.sum(axis=-1), 1.0, atol=TOLERANCE)):
        raise ValueError(f"{what} must be probabilities summing to 1 over the classes")
    return rows


def detection_score(measure: Measure, scores: np.ndarray, max_detections: int = MAX_DETECTIONS) -> float:
    """An image's detections (their scores, each a Bernoulli [p, 1 - p]) -> the sum of their measures divided
    by max_detections, the most the detector reports, so in [0, 1]. The sum, as over tag groups: the entropy of
    independent detections adds up. Not the max: reported down to a score of 0.05, almost every image has
    some peak near 0.5, so the max saturates and ranks nothing (on synthetic data its top tenth held no more
    shifted images than random). Not the mean: an image's many low background peaks would drown the objects
    the model doubts. An image without detections scores 0: every peak it has lies below the reporting
    threshold, so the model is sure there is nothing to find; images a detector is blind to are core-set's
    to find, not uncertainty's."""
    if scores.ndim != 1:
        raise ValueError(f"detection scores must be one score per detection, not of shape {scores.shape}")
    if scores.size and (scores.min() < 0.0 or scores.max() > 1.0):
        raise ValueError("detection scores must lie in [0, 1]")
    if len(scores) > max_detections:
        raise ValueError(f"{len(scores)} detections where at most max_detections = {max_detections} were expected")
    return float(measure(bernoulli(scores)).sum() / max_detections)


def uncertainty_scores(
    heuristic_id: str, family: Family, distributions: Sequence[Distributions], max_detections: int = MAX_DETECTIONS
) -> np.ndarray:
    """Each image's score under an uncertainty heuristic (least-confidence, margin, entropy), N in [0, 1];
    max_detections is the most detections the detector was asked to report (see `detection_score`)."""
    measure = MEASURES[heuristic_for(heuristic_id, family).id]
    return np.array([image_score(measure, family, image, max_detections) for image in distributions], np.float64)


def distributions_of(family: Family, prediction: Prediction) -> Distributions:
    """What the uncertainty heuristics read from a decoded prediction. Segmentation's are not in it: the
    caller passes the softmax of the model's mask logits, C×H×W."""
    if family == "detection":
        return prediction.box_scores
    if family == "segmentation":
        raise ValueError("segmentation predictions hold no probabilities; pass the mask logits' softmax, C×H×W")
    if not prediction.probabilities:
        raise ValueError(f"this {family} prediction has no probabilities")
    return prediction.probabilities


def covering_picks(pool: np.ndarray, labeled: np.ndarray | None, n: int) -> list[tuple[int, float]]:
    """k-center greedy (Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set
    Approach"): n pool rows (at most all of them), each the one farthest (Euclidean) from its nearest labelled
    or already chosen row, with that distance, in the order chosen. O(N·n·D) time and O(N) memory beyond the
    inputs: one running vector of each pool row's distance to its nearest centre. Deterministic: ties go to
    the lowest index. Without labelled rows the first pick is the row farthest from the pool's mean, scored
    by that distance."""
    if n < 0:
        raise ValueError(f"n must be 0 or more, not {n}")
    pool = np.asarray(pool, np.float64)
    if pool.ndim != 2:
        raise ValueError(f"pool embeddings must be N×D, not of shape {pool.shape}")
    count = min(n, len(pool))
    if count == 0:
        return []
    nearest = nearest_labeled(pool, labeled)
    picks: list[tuple[int, float]] = []
    if nearest is None:
        from_mean = squared_distances(pool, pool.mean(axis=0))
        first = int(np.argmax(from_mean))
        picks.append((first, float(np.sqrt(from_mean[first]))))
        nearest = squared_distances(pool, pool[first])
        nearest[first] = -1.0
    while len(picks) < count:
        chosen = int(np.argmax(nearest))
        picks.append((chosen, float(np.sqrt(max(nearest[chosen], 0.0)))))
        np.minimum(nearest, squared_distances(pool, pool[chosen]), out=nearest)
        # Chosen rows are never chosen again, even once every row is at distance 0 (duplicates).
        nearest[chosen] = -1.0
    return picks


def k_center_greedy(pool: np.ndarray, labeled: np.ndarray | None, n: int) -> list[int]:
    """The pool indices `covering_picks` chooses, in selection order."""
    return [index for index, _ in covering_picks(pool, labeled, n)]


def squared_distances(rows: np.ndarray, point: np.ndarray) -> np.ndarray:
    difference = rows - point
    return np.einsum("ij,ij->i", difference, difference)


def nearest_labeled(pool: np.ndarray, labeled: np.ndarray | None) -> np.ndarray | None:
    """Each pool row's squared distance to its nearest labelled row; None without labelled rows."""
    if labeled is None or len(labeled) == 0:
        return None
    labeled = np.asarray(labeled, np.float64)
    if labeled.ndim != 2 or labeled.shape[1] != pool.shape[1]:
        raise ValueError(f"labelled embeddings must be M×{pool.shape[1]} like the pool's, not {labeled.shape}")
    nearest = np.full(len(pool), np.inf)
    pool_norms = np.einsum("ij,ij->i", pool, pool)
    for start in range(0, len(labeled), LABELED_CHUNK):
        chunk = labeled[start : start + LABELED_CHUNK]
        # |a - b|² = |a|² + |b|² - 2a·b: one matrix product per chunk instead of a loop over labelled rows.
        squared = pool_norms[:, None] + np.einsum("ij,ij->i", chunk, chunk)[None, :] - 2.0 * pool @ chunk.T
        np.minimum(nearest, squared.min(axis=1), out=nearest)
    return np.maximum(nearest, 0.0)


def pool_size(distributions: Sequence[Distributions] | None, embeddings: np.ndarray | None) -> int:
    sizes = {len(pool) for pool in (distributions, embeddings) if pool is not None}
    if len(sizes) != 1:
        raise ValueError("the pool is its distributions or its embeddings, one row per image: give one, or both alike")
    return sizes.pop()


def rank(
    heuristic_id: str,
    family: Family,
    n: int,
    *,
    distributions: Sequence[Distributions] | None = None,
    embeddings: np.ndarray | None = None,
    labeled_embeddings: np.ndarray | None = None,
    seed: int = 0,
    max_detections: int = MAX_DETECTIONS,
) -> list[tuple[int, float]]:
    """The n (at most all) pool images most worth labelling under a heuristic, best first, as (pool index,
    score). The pool is `distributions` (one per image, for the uncertainty heuristics) and/or `embeddings`
    (N×D, for core-set; labeled_embeddings, M×D, are the images already labelled); random needs either, for
    the pool's size, and its order depends only on seed and that size. Uncertainty ties go to the lower
    index. An unknown heuristic, or one that does not rank this family, is a LoupeError."""
    heuristic = heuristic_for(heuristic_id, family)
    if n < 0:
        raise ValueError(f"n must be 0 or more, not {n}")
    if heuristic.uses == "embeddings":
        if embeddings is None:
            raise ValueError("core-set needs the pool's embeddings")
        return covering_picks(embeddings, labeled_embeddings, n)
    if heuristic.uses == "predictions":
        if distributions is None:
            raise ValueError(f"{heuristic.id} needs the pool's predicted distributions")
        scores = uncertainty_scores(heuristic.id, family, distributions, max_detections)
    else:
        scores = np.random.default_rng(seed).random(pool_size(distributions, embeddings))
    order = np.argsort(-scores, kind="stable")[:n]
    return [(int(index), float(scores[index])) for index in order]
