"""How much better than random each active-learning heuristic finds the images a model does not know.

    python -m bench.active_learning [--quick] [--families tagging,detection,...]

In process, no stack, on the CPU: per task family a model is trained on normal synthetic images
(loupe.synth, the sizes of `python -m bench.training --quick`; the detector, trained first, starts the
tagger and the classifier as it does there), then ranks pools of unseen images of which one in ten is drawn
with the shifted palette (another camera, another site), with each heuristic of
services/inference/heuristics.py picking a tenth of the pool, as many as there are shifted images. Figures:

- `<role>_<heuristic>_shifted_share`: the share of shifted images among the picks, which is also the share
  of the shifted images picked; `<role>_<heuristic>_lift`: that over the base rate 0.1 (random's is 1 on
  average, a perfect heuristic's 10). Random's are its mean over RANDOM_SEEDS orders per pool.
- `<role>_core_set_shifted_radius` beside `<role>_random_shifted_radius`: how far (Euclidean, unit-length
  embeddings) the farthest shifted image lies from its nearest labelled or picked image, after core-set's
  picks and after random ones (mean over RANDOM_SEEDS). Core-set reads the model's training images as the
  labelled set; covering the shifted images means leaving none of them far from a picked one.

`--quick` ranks one pool of 500; the full run five pools of 1000 (figures: the mean over pools; the table
also shows the range). Each JSON line names the CPU.
"""

from __future__ import annotations

import io
import os

# torch's idle threads must not spin: the machine is shared, and these figures are not timings anyway.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bench.report import arguments
from bench.training import QUICK, ROLES, TRAIN_SEED, device_name, line
from loupe import synth
from proto.training import Family, TrainingConfig
from services.inference import heuristics
from services.inference.heuristics import Distributions
from services.training.ml.data import image_tensor
from services.training.ml.examples import Example
from services.training.ml.train import train
from shared.predictions import TaskSpec, decode, softmax

IMAGE_SIZE = 64
SHIFTED_SHARE = 0.1
RANDOM_SEEDS = 20
BATCH = 64
FAMILIES: tuple[Family, ...] = ("tagging", "detection", "classification", "segmentation")
# Families whose model starts from the detector's weights (bench.training's plans say which).
STARTED_FROM_DETECTOR = {family for family, plan in QUICK.items() if plan.pretrain_epochs}


@dataclass(frozen=True)
class Pool:
    count: int
    seed: int  # normal images are drawn with this seed, shifted ones with seed + 1

    def images(self) -> tuple[list[synth.SynthImage], np.ndarray]:
        """The pool's images, shifted ones spread through it by a seeded shuffle, and which are shifted."""
        shifted = round(self.count * SHIFTED_SHARE)
        drawn = [
            *synth.generate(self.count - shifted, IMAGE_SIZE, seed=self.seed),
            *synth.generate(shifted, IMAGE_SIZE, seed=self.seed + 1, shift=True),
        ]
        order = np.random.default_rng(self.seed).permutation(self.count)
        return [drawn[i] for i in order], order >= self.count - shifted


QUICK_POOLS = (Pool(500, 3),)
FULL_POOLS = tuple(Pool(1000, seed) for seed in range(3, 13, 2))


@dataclass(frozen=True)
class Model:
    spec: TaskSpec
    network: torch.nn.Module
    labeled: np.ndarray  # embeddings of the images it was trained on, M×D


@dataclass(frozen=True)
class Ranking:
    """One heuristic on one pool: the share of shifted images among its picks and, for core-set and random,
    the farthest shifted image's distance to the nearest labelled or picked image."""

    share: float
    shifted_radius: float | None = None


def train_models(families: Sequence[Family]) -> dict[Family, Model]:
    """Each family's model trained on TRAIN_SEED's normal images; the detector first, when another starts
    from it."""
    images = list(synth.generate(max(plan.images for plan in QUICK.values()), IMAGE_SIZE, seed=TRAIN_SEED))
    first: list[Family] = ["detection"] if "detection" in families or STARTED_FROM_DETECTOR & set(families) else []
    models: dict[Family, Model] = {}
    detector_weights = None
    for family in first + [family for family in families if family != "detection"]:
        plan = QUICK[family]
        spec, examples = synth.examples(images[: plan.images], family)
        config = TrainingConfig(
            epochs=plan.epochs,
            batch_size=16,
            image_size=IMAGE_SIZE,
            learning_rate=plan.learning_rate,
            device="cpu",
        )
        pretrained = detector_weights if family in STARTED_FROM_DETECTOR else None
        network = train(spec, config, examples, [], pretrained=pretrained)
        if family == "detection":
            buffer = io.BytesIO()
            torch.save(network.state_dict(), buffer)
            detector_weights = buffer.getvalue()
        _, labeled = run(spec, network, examples)
        models[family] = Model(spec, network, labeled)
    return {family: models[family] for family in families}


def run(
    spec: TaskSpec, network: torch.nn.Module, examples: Sequence[Example]
) -> tuple[list[Distributions], np.ndarray]:
    """What the heuristics read of each image, and the N×D embeddings, as the inference service gets them:
    decoded predictions (segmentation: the softmax of its mask logits) and the last output."""
    distributions: list[Distributions] = []
    embeddings = []
    with torch.inference_mode():
        for start in range(0, len(examples), BATCH):
            batch = examples[start : start + BATCH]
            images = torch.stack([image_tensor(example.image, IMAGE_SIZE) for example in batch])
            outputs = [output.numpy() for output in network(images)]
            embeddings.append(outputs[-1])
            if spec.family == "segmentation":
                distributions.extend(np.moveaxis(softmax(np.moveaxis(logits, 0, -1)), -1, 0) for logits in outputs[0])
            else:
                sizes = [(example.image.shape[0], example.image.shape[1]) for example in batch]
                predictions = decode(spec, outputs, IMAGE_SIZE, sizes)
                distributions.extend(heuristics.distributions_of(spec.family, p) for p in predictions)
    return distributions, np.concatenate(embeddings)


def shifted_radius(embeddings: np.ndarray, shifted: np.ndarray, labeled: np.ndarray, picks: list[int]) -> float:
    centres = np.concatenate([labeled, embeddings[picks]])
    nearest = heuristics.nearest_labeled(embeddings[shifted], centres)
    assert nearest is not None
    return float(np.sqrt(nearest.max()))


def rank_pool(model: Model, pool: Pool) -> dict[str, Ranking]:
    """Every heuristic's picks on one pool."""
    images, shifted = pool.images()
    _, examples = synth.examples(images, model.spec.family)
    distributions, embeddings = run(model.spec, model.network, examples)
    picked = round(pool.count * SHIFTED_SHARE)

    def picks(heuristic: str, seed: int = 0) -> list[int]:
        ranked = heuristics.rank(
            heuristic,
            model.spec.family,
            picked,
            distributions=distributions,
            embeddings=embeddings,
            labeled_embeddings=model.labeled,
            seed=seed,
        )
        return [index for index, _ in ranked]

    def covering(chosen: list[int]) -> Ranking:
        return Ranking(float(shifted[chosen].mean()), shifted_radius(embeddings, shifted, model.labeled, chosen))

    random = [covering(picks("random", seed)) for seed in range(RANDOM_SEEDS)]
    rankings = {
        "random": Ranking(
            statistics.fmean(r.share for r in random),
            statistics.fmean(r.shifted_radius for r in random if r.shifted_radius is not None),
        )
    }
    for heuristic in heuristics.MEASURES:
        rankings[heuristic] = Ranking(float(shifted[picks(heuristic)].mean()))
    rankings["core-set"] = covering(picks("core-set"))
    return rankings


def main() -> None:
    parser = arguments(__doc__, "one pool of 500 images instead of five of 1000")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma separated task families")
    args = parser.parse_args()
    pools = QUICK_POOLS if args.quick else FULL_POOLS
    families: list[Family] = [family for family in FAMILIES if family in args.families.split(",")]
    device = device_name("cpu")
    models = train_models(families)
    ranked = {family: [rank_pool(models[family], pool) for pool in pools] for family in families}
    images = sum(pool.count for pool in pools)
    print(
        f"active learning on {device}: models trained on {QUICK['detection'].images} normal 64×64 synthetic images "
        f"rank {len(pools)} pool(s) of {pools[0].count}, a tenth of them shifted; each heuristic picks a tenth"
    )
    print(f"{'family':<16}{'heuristic':<18}{'shifted share':>14}{'range':>14}{'lift':>7}{'shifted radius':>16}")
    lines = []
    for family in families:
        role = ROLES[family]
        for heuristic in ranked[family][0]:
            name = heuristic.replace("-", "_")
            shares = [rankings[heuristic].share for rankings in ranked[family]]
            share = statistics.fmean(shares)
            radii = [rankings[heuristic].shifted_radius for rankings in ranked[family]]
            radius = statistics.fmean(r for r in radii if r is not None) if radii[0] is not None else None
            shown = f"{radius:>16.3f}" if radius is not None else ""
            spread = f"{min(shares):.2f}–{max(shares):.2f}"
            print(f"{family:<16}{heuristic:<18}{share:>14.3f}{spread:>14}{share / SHIFTED_SHARE:>7.1f}{shown}")
            lines.append(line(f"{role}_{name}_shifted_share", share, "ratio", images, device, family))
            lines.append(line(f"{role}_{name}_lift", share / SHIFTED_SHARE, "x", images, device, family))
            if radius is not None:
                lines.append(line(f"{role}_{name}_shifted_radius", radius, "distance", images, device, family))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
