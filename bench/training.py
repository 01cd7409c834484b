"""How fast each task family trains, and how well the models do on images they never saw.

    python -m bench.training [--quick] [--device auto|cpu|cuda] [--families detection,tagging,...]

In process, no stack: the same `train` and `evaluate` a training run calls (services/training/ml), on
synthetic data from loupe.synth: a training set and a held-out set drawn with another seed (which
never picks the model: no validation set during training). Per family it prints the training speed
(`<role>_train_images_per_s`, the median over epochs after the first, which also pays for warm-up), the
family's headline metrics on the held-out set (`detector_map50`, `detector_map50_95`,
`tagger_accuracy`, `segmentor_miou`, `classifier_accuracy`) and the wall time to reach them
(`<role>_wall_s`: generating the data, training, a detector to start from where the plan says so, and
evaluating). `--quick` trains as small as the tests do. Each JSON line also names the device; on a GPU, training uses bf16 autocast.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path

# torch's idle threads must not spin: the figures are of training, not of busy-waiting on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import statistics
import time
from dataclasses import dataclass

import msgspec

from bench.report import arguments
from loupe import synth
from proto.training import TrainingConfig

ROLES = {"detection": "detector", "tagging": "tagger", "segmentation": "segmentor", "classification": "classifier"}
METRICS = {
    "detection": ("map50", "map50_95"),
    "tagging": ("accuracy",),
    "segmentation": ("miou",),
    "classification": ("accuracy",),
}


@dataclass(frozen=True)
class Plan:
    """How one family is trained: images, epochs, learning rate, and for how many epochs a detector is first
    trained on the same images' boxes to start it from (0: from scratch)."""

    images: int
    epochs: int
    learning_rate: float
    pretrain_epochs: int = 0


# --quick: the sizes of the threshold tests (tests/unit/test_ml_thresholds.py), which reach their bars. The
# shape of the largest object (the classifier's class, one of the tagger's groups) is not learnt from a few
# hundred image-level labels from scratch; a detector trained on the same images' boxes knows shapes.
QUICK = {
    "detection": Plan(400, 10, 5e-3),
    "tagging": Plan(400, 10, 2e-3, pretrain_epochs=8),
    "segmentation": Plan(400, 10, 5e-3),
    "classification": Plan(400, 10, 2e-3, pretrain_epochs=8),
}
FULL = {
    family: Plan(plan.images * 5, plan.epochs * 2, plan.learning_rate, plan.pretrain_epochs * 2)
    for family, plan in QUICK.items()
}
PRETRAIN_LEARNING_RATE = 5e-3
HELD_OUT = 200
TRAIN_SEED, HELD_OUT_SEED = 1, 2


def device_name(device: str) -> str:
    import torch

    from services.training.ml.train import pick_device

    chosen = pick_device(device)
    if chosen.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(chosen)}"
    return f"cpu {cpu_model()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def cpu_model() -> str:
    """The CPU's name as the kernel reports it (Linux), else the platform's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def bench_family(family: str, plan: Plan, device: str) -> tuple[float, dict[str, float], float]:
    """(training images per second, held-out metrics, wall seconds)."""
    from services.training.ml.evaluate import evaluate
    from services.training.ml.train import train

    started = time.perf_counter()
    images = list(synth.generate(plan.images, size=64, seed=TRAIN_SEED))
    spec, train_set = synth.examples(images, family)
    _, held_out = synth.examples(synth.generate(HELD_OUT, size=64, seed=HELD_OUT_SEED), family)
    speeds: list[float] = []
    config = TrainingConfig(
        epochs=plan.epochs, batch_size=16, image_size=64, learning_rate=plan.learning_rate, device=device
    )
    pretrained = None
    if plan.pretrain_epochs:
        detection, boxes = synth.examples(images, "detection")
        checkpoints: list[bytes] = []
        pretrain = msgspec.structs.replace(config, epochs=plan.pretrain_epochs, learning_rate=PRETRAIN_LEARNING_RATE)
        train(detection, pretrain, boxes, [], on_epoch=lambda report: checkpoints.append(report.checkpoint))
        pretrained = checkpoints[-1]
    # No validation set: the held-out images must not pick the model either.
    model = train(
        spec, config, train_set, [], pretrained=pretrained, on_epoch=lambda report: speeds.append(report.images_per_s)
    )
    metrics = evaluate(spec, model, held_out, config.image_size).metrics
    return statistics.median(speeds[1:] or speeds), metrics, time.perf_counter() - started


def line(metric: str, value: float, unit: str, n: int, device: str, family: str) -> str:
    return json.dumps(
        {
            "metric": metric,
            "value": round(value, 3),
            "unit": unit,
            "n": n,
            "cores": os.cpu_count(),
            "device": device,
            "family": family,
        }
    )


def main() -> None:
    parser = arguments(__doc__, "the threshold tests' sizes: 400 64×64 images, 10 epochs")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--families", default=",".join(ROLES), help="comma separated task families")
    args = parser.parse_args()
    plans = QUICK if args.quick else FULL
    device = device_name(args.device)
    rows, lines = [], []
    for family in args.families.split(","):
        role, plan = ROLES[family], plans[family]
        speed, metrics, wall = bench_family(family, plan, args.device)
        rows.append((family, plan, speed, metrics, wall))
        lines.append(line(f"{role}_train_images_per_s", speed, "images/s", plan.images, device, family))
        lines += [line(f"{role}_{m}", metrics[m], "ratio", HELD_OUT, device, family) for m in METRICS[family]]
        lines.append(line(f"{role}_wall_s", wall, "s", plan.images, device, family))
    print(f"training on {device}, 64×64 synthetic images, measured on {HELD_OUT} held-out ones")
    print(f"{'family':<16}{'images':>8}{'epochs':>8}{'images/s':>10}{'wall s':>10}  held-out metrics")
    for family, plan, speed, metrics, wall in rows:
        shown = ", ".join(f"{m} {metrics[m]:.3f}" for m in METRICS[family])
        print(f"{family:<16}{plan.images:>8}{plan.epochs:>8}{speed:>10.1f}{wall:>10.1f}  {shown}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
