"""The training loop: AdamW, warmup then a cosine/step/constant schedule, early stopping on the validation
metric, a resumable checkpoint after every epoch, cancellation between batches.

Thread counts (torch.set_num_threads) are the caller's: it knows what else runs on the machine.
"""

from __future__ import annotations

import dataclasses
import io
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import torch
from torch import nn

from proto.training import TrainingConfig
from services.training.ml.data import ExampleDataset, loader
from services.training.ml.evaluate import PRIMARY_METRIC, evaluate
from services.training.ml.examples import Example
from services.training.ml.losses import loss as task_loss
from services.training.ml.models import build_model
from services.training.ml.validation import validate
from shared.errors import LoupeError, invalid
from shared.predictions import TaskSpec

WEIGHT_DECAY = 1e-4
# Cosine decays to this fraction of the peak rate rather than 0, so the last epoch still learns.
COSINE_FLOOR = 0.01
# The step schedule divides the rate by 10 at these fractions of the post-warmup steps.
STEP_MILESTONES = (0.6, 0.85)
CHECKPOINT_FORMAT = 1
# Config fields a resumed run may change: where it runs, not what it computes.
RESUMABLE_CHANGES = {"device", "workers"}


@dataclass(frozen=True)
class EpochReport:
    epoch: int  # 1-based
    epochs: int
    loss: float  # mean training loss over the epoch
    metrics: dict[str, float]  # on the validation set; {} without one
    seconds: float  # the whole epoch: training and validation
    images_per_s: float  # training images per second of training (validation excluded)
    data_seconds: float  # time the loop waited for the loader (decode, resize, augment): starvation shows here
    checkpoint: bytes  # torch.save of everything needed to resume after this epoch


def no_report(report: EpochReport) -> None:
    pass


def never() -> bool:
    return False


def train(
    spec: TaskSpec,
    config: TrainingConfig,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    *,
    resume: bytes | None = None,
    pretrained: bytes | None = None,
    on_epoch: Callable[[EpochReport], None] = no_report,
    should_stop: Callable[[], bool] = never,
) -> nn.Module:
    """Trains a model; returns the best (by the validation metric) or, without a validation set, the last, in
    eval mode. `resume` (an EpochReport's checkpoint) continues at the epoch after it. `pretrained` (a
    checkpoint or a torch.save'd state dict of any family's model of the same size) initialises every weight
    whose name and shape match: backbone and neck, from a detector or segmentor, say. `should_stop` is polled
    before every batch; when it says yes, training ends at once and the best model so far is returned."""
    validate(spec, config, train_set, val_set)
    device = pick_device(config.device)
    seed_everything(config.seed)
    model = build_model(spec, config)
    if pretrained is not None:
        load_pretrained(model, pretrained)
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(config.seed)  # shuffling and the loader workers' seeds
    batches = loader(
        ExampleDataset(spec, train_set, config.image_size, config.augment),
        config.batch_size,
        shuffle=True,
        workers=config.workers,
        pin_memory=device.type == "cuda",
        generator=generator,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, len(batches)))
    progress = Progress()
    if resume is not None:
        progress = restore(resume, spec, config, model, optimizer, scheduler, generator)

    for epoch in range(progress.epoch + 1, config.epochs + 1):
        if config.early_stopping_patience is not None and progress.stale_epochs >= config.early_stopping_patience:
            break
        started = time.perf_counter()
        result = train_epoch(spec, model, batches, optimizer, scheduler, device, should_stop)
        if result is None:
            break
        mean_loss, images, data_seconds = result
        training_seconds = time.perf_counter() - started
        metrics = evaluate(spec, model, val_set, config.image_size).metrics if val_set else {}
        progress = progress.after(epoch, model, metrics.get(PRIMARY_METRIC[spec.family]))
        on_epoch(
            EpochReport(
                epoch=epoch,
                epochs=config.epochs,
                loss=mean_loss,
                metrics=metrics,
                seconds=time.perf_counter() - started,
                images_per_s=images / training_seconds,
                data_seconds=data_seconds,
                checkpoint=checkpoint(spec, config, progress, model, optimizer, scheduler, generator),
            )
        )
    if progress.best_model is not None:
        model.load_state_dict(progress.best_model)
    return model.eval()


def train_epoch(
    spec: TaskSpec,
    model: nn.Module,
    batches: torch.utils.data.DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
    should_stop: Callable[[], bool],
) -> tuple[float, int, float] | None:
    """One pass over the data: (mean loss, images seen, seconds spent waiting for batches), or None when
    should_stop said yes."""
    model.train()
    cuda = device.type == "cuda"
    total_loss = torch.zeros((), device=device)  # accumulated on the device: no sync per batch
    images_seen = 0
    data_seconds = 0.0
    waiting_since = time.perf_counter()
    for images, targets in batches:
        data_seconds += time.perf_counter() - waiting_since
        if should_stop():
            return None
        images = images.to(device, non_blocking=True)
        if cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = {key: value.to(device, non_blocking=True) for key, value in targets.items()}
        with torch.autocast(device.type, torch.bfloat16, enabled=cuda):
            outputs = model(images)
        loss = task_loss(spec, outputs, targets)  # in float32: the losses upcast the outputs
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.detach() * len(images)
        images_seen += len(images)
        waiting_since = time.perf_counter()
    mean_loss = total_loss.item() / max(images_seen, 1)
    if not math.isfinite(mean_loss):
        raise invalid(
            "training diverged (the loss is not a finite number): lower the learning rate", path="config.learning_rate"
        )
    return mean_loss, images_seen, data_seconds


def lr_factor(config: TrainingConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate's multiplier at each optimizer step: linear warmup, then the schedule."""
    warmup = config.warmup_epochs * steps_per_epoch
    decay_steps = max(config.epochs * steps_per_epoch - warmup, 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / decay_steps
        if config.schedule == "cosine":
            return COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        if config.schedule == "step":
            return 0.1 ** sum(progress >= milestone for milestone in STEP_MILESTONES)
        return 1.0

    return factor


def pick_device(wanted: str) -> torch.device:
    if wanted == "cuda" and not torch.cuda.is_available():
        raise LoupeError(
            "unavailable",
            "device 'cuda' was asked for but this training node has no usable CUDA GPU: use 'auto' or 'cpu'",
            path="config.device",
        )
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(wanted)


def seed_everything(seed: int) -> None:
    """All randomness in this package draws from torch; python's and numpy's are seeded for code it calls."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA's generators too


@dataclass(frozen=True)
class Progress:
    """Where a run stands after an epoch, for early stopping and for the checkpoint."""

    epoch: int = 0
    best_metric: float = -math.inf
    best_epoch: int = 0
    best_model: dict[str, torch.Tensor] | None = None
    stale_epochs: int = 0  # epochs since the metric last improved

    def after(self, epoch: int, model: nn.Module, metric: float | None) -> Progress:
        if metric is None:  # no validation set: nothing to compare, the last model is the result
            return dataclasses.replace(self, epoch=epoch)
        if metric > self.best_metric:
            best = {key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()}
            return Progress(epoch=epoch, best_metric=metric, best_epoch=epoch, best_model=best, stale_epochs=0)
        return dataclasses.replace(self, epoch=epoch, stale_epochs=self.stale_epochs + 1)


def checkpoint(
    spec: TaskSpec,
    config: TrainingConfig,
    progress: Progress,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> bytes:
    state = {
        "format": CHECKPOINT_FORMAT,
        "spec": dataclasses.asdict(spec),
        "config": msgspec.structs.asdict(config),
        "progress": dataclasses.asdict(progress),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "loader": generator.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def read_checkpoint(data: bytes, path: str) -> dict[str, Any]:
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for bytes that are not its checkpoint
        raise invalid(f"{path} is not a training checkpoint: {error}", path=path) from error
    if not isinstance(state, dict):
        raise invalid(f"{path} is not a training checkpoint", path=path)
    return state


def load_pretrained(model: nn.Module, data: bytes) -> None:
    """Copies the tensors of a checkpoint (or a bare state dict) whose names and shapes match the model's."""
    state = read_checkpoint(data, "pretrained")
    weights = state["model"] if state.get("format") == CHECKPOINT_FORMAT else state
    own = model.state_dict()
    matching = {
        key: value
        for key, value in weights.items()
        if isinstance(value, torch.Tensor) and key in own and own[key].shape == value.shape
    }
    if not matching:
        raise invalid("pretrained shares no weights with this model (another model size?)", path="pretrained")
    model.load_state_dict(matching, strict=False)


def restore(
    data: bytes,
    spec: TaskSpec,
    config: TrainingConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> Progress:
    """Loads a checkpoint into the freshly built run; refuses one made for another task or configuration."""
    state = read_checkpoint(data, "resume")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise invalid("resume is not a training checkpoint of this version", path="resume")
    if state["spec"] != dataclasses.asdict(spec):
        raise invalid("resume was made for another task (family, classes or tag groups differ)", path="resume")
    changed = {
        key for key, value in msgspec.structs.asdict(config).items() if state["config"].get(key) != value
    } - RESUMABLE_CHANGES
    if changed:
        raise invalid(f"resume was made with another configuration ({', '.join(sorted(changed))})", path="resume")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    generator.set_state(state["rng"]["loader"])
    if state["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return Progress(**state["progress"])
