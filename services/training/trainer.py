"""The trainer process: what one run does outside the service's event loop.

The service starts it with multiprocessing's `spawn` (a fresh interpreter: no copy of the parent's event
loop, sockets or threads) and reads its messages from a pipe. It reads the release file and images the
parent saved in the run's scratch folder, trains (continuing from a checkpoint when there is one, else
starting from another version's weights when the run names one),
evaluates on the validation split, exports ONNX and checks it against torch, and reports each step: the
results the service records, and a `Line` for the run's log at every step a user would want to follow.

It dies with its parent: a killed service must not leave a trainer running on its GPU, since the job
comes back (to this replica or another) and trains again from the last checkpoint.
"""

from __future__ import annotations

import ctypes
import io
import os
import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from proto.training import Family, LogLevel, TagGroupValues, TrainingConfig
from shared.errors import LoupeError

# Validation images the ONNX check compares torch and onnxruntime on.
CHECK_IMAGES = 8
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class TrainerJob:
    """What the trainer needs; plain values, pickled to the new process."""

    release_file: Path
    images_dir: Path
    family: Family
    labelset: str
    tag_group: str | None
    config: TrainingConfig
    resume_file: Path | None
    pretrained_file: Path | None  # another version's weights to start from (never given with resume_file)


@dataclass(frozen=True)
class Loaded:
    classes: list[str]
    tag_groups: list[TagGroupValues]  # a tagger's heads in order; [] for the other families
    training_samples: int
    validation_samples: int
    skipped: int


@dataclass(frozen=True)
class Epoch:
    """ml.train's EpochReport, as a type of this module: unpickling it must not import torch into the service."""

    epoch: int
    epochs: int
    loss: float
    metrics: dict[str, float]
    seconds: float
    images_per_s: float
    data_seconds: float
    checkpoint: bytes


@dataclass(frozen=True)
class Line:
    """A line for the run's log."""

    level: LogLevel
    message: str


@dataclass(frozen=True)
class Finished:
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    onnx: bytes
    weights: bytes  # torch.save of the model's state dict, from which later runs may start
    onnx_max_abs_diff: float
    output_names: list[str]


@dataclass(frozen=True)
class Failed:
    message: str  # what to tell the user


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; elsewhere `should_stop` notices soon after."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def main(conn: Connection, job: TrainerJob, parent: int) -> None:
    """The process's entry point: every outcome is one last message on `conn`."""
    die_with_parent(parent)
    try:
        conn.send(run(conn, job, lambda: os.getppid() != parent))
    except LoupeError as exc:
        conn.send(Failed(exc.message))
    except Exception as exc:
        traceback.print_exc()
        conn.send(Line("error", traceback.format_exc()))  # for whoever fixes it; the run's error says what failed
        conn.send(Failed(f"training failed: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def figures(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())


def epoch_line(report: Epoch) -> Line:
    return Line(
        "info",
        f"epoch {report.epoch}/{report.epochs}: loss {report.loss:.4f}, {figures(report.metrics)}; "
        f"{report.seconds:.1f} s, {report.images_per_s:.1f} images/s, {report.data_seconds:.1f} s waiting for data",
    )


def run(conn: Connection, job: TrainerJob, parent_gone) -> Finished:
    # torch's idle threads sleep rather than spin: they share the pod's cores with the service process,
    # whose event loop must keep the job's heartbeats going.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Imported here: the service process itself never loads torch.
    import torch

    from services.training.ml.data import image_tensor
    from services.training.ml.evaluate import PRIMARY_METRIC, evaluate
    from services.training.ml.export import check_onnx, export_onnx
    from services.training.ml.train import pick_device, train
    from services.training.release_data import split_release
    from shared.predictions import output_names

    split = split_release(
        job.release_file, job.family, job.labelset, lambda sha256: job.images_dir / sha256, job.tag_group
    )
    if not split.train or not split.val:
        raise LoupeError(
            "invalid",
            f"the release has {len(split.train)} training and {len(split.val)} validation samples usable for "
            f"{job.family} ({split.skipped} left out: no finished label in the labelset, no stored image, or a "
            "missing tag); both splits need at least one",
        )
    classes = list(split.spec.classes) or [f"{g}/{v}" for g, values in split.spec.tag_groups for v in values]
    # A tagger's heads; a classifier's one group, whose tags are its classes.
    heads = [TagGroupValues(name=g, values=list(v)) for g, v in split.spec.tag_groups]
    conn.send(Loaded(classes, heads, len(split.train), len(split.val), split.skipped))
    unusable = split.skipped - split.missing_tag
    conn.send(
        Line(
            "info",
            f"read the release: {len(split.train)} training and {len(split.val)} validation samples for "
            f"{job.family}; {split.skipped} left out ({unusable} without a finished label in {job.labelset!r} or "
            f"a stored image, {split.missing_tag} missing a tag the task needs)",
        )
    )
    config = job.config
    device = pick_device(config.device)
    conn.send(Line("info", f"training {config.model_size} model on {device.type} for {config.epochs} epochs"))
    resume = job.resume_file.read_bytes() if job.resume_file else None
    pretrained = job.pretrained_file.read_bytes() if job.pretrained_file else None
    last_epoch = 0

    def on_epoch(report) -> None:
        nonlocal last_epoch
        epoch = Epoch(**vars(report))
        last_epoch = epoch.epoch
        conn.send(epoch)  # its log line is written with it (runner.record_epoch)

    model = train(
        split.spec,
        config,
        split.train,
        split.val,
        resume=resume,
        pretrained=pretrained,
        on_epoch=on_epoch,
        should_stop=parent_gone,
    )
    patience = config.early_stopping_patience
    if patience is not None and 0 < last_epoch < config.epochs:
        metric = PRIMARY_METRIC[job.family]
        conn.send(
            Line("info", f"stopped early after epoch {last_epoch}: no better validation {metric} for {patience} epochs")
        )
    evaluation = evaluate(split.spec, model, split.val, config.image_size)
    conn.send(
        Line("info", f"evaluated the best model on {len(split.val)} validation samples: {figures(evaluation.metrics)}")
    )
    model = model.to("cpu").float()
    names = list(output_names(split.spec))
    onnx = export_onnx(model, names, config.image_size)
    images = torch.stack([image_tensor(e.image, config.image_size) for e in split.val[:CHECK_IMAGES]])
    difference = check_onnx(model, onnx, images)
    conn.send(
        Line(
            "info",
            f"exported ONNX ({len(onnx) / 1e6:.1f} MB, outputs {', '.join(names)}); onnxruntime's outputs differ "
            f"from torch's by at most {difference:.2e} on {len(images)} validation images",
        )
    )
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    return Finished(evaluation.metrics, evaluation.per_class, onnx, weights.getvalue(), difference, names)
