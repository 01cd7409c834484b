"""What the trainer process tells the service for the run's log."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from proto.training import TrainingConfig
from services.training import trainer

pytestmark = pytest.mark.timeout(120)


def test_an_epoch_line_summarises_the_epoch() -> None:
    report = trainer.Epoch(
        epoch=3, epochs=20, loss=0.51234, metrics={"map50": 0.625, "map50_95": 0.3}, seconds=4.25,
        images_per_s=118.04, data_seconds=0.5, checkpoint=b"",
    )
    line = trainer.epoch_line(report)
    assert line == trainer.Line(
        "info",
        "epoch 3/20: loss 0.5123, map50 0.6250, map50_95 0.3000; 4.2 s, 118.0 images/s, 0.5 s waiting for data",
    )


def test_an_unexpected_error_sends_its_traceback_then_the_failure(tmp_path: Path) -> None:
    """The trainer as the service starts it, on a release file that is not there."""
    job = trainer.TrainerJob(
        release_file=tmp_path / "missing.jsonl", images_dir=tmp_path, family="detection", labelset="ground-truth",
        tag_group=None, config=TrainingConfig(), resume_file=None, pretrained_file=None,
    )
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=trainer.main, args=(sender, job, os.getpid()))
    process.start()
    sender.close()
    messages = []
    try:
        while True:
            messages.append(receiver.recv())
    except EOFError:
        pass
    process.join(30)
    traceback, failed = messages
    assert traceback.level == "error" and traceback.message.startswith("Traceback (most recent call last):")
    assert "FileNotFoundError" in traceback.message and "missing.jsonl" in traceback.message
    assert isinstance(failed, trainer.Failed) and failed.message.startswith("training failed: FileNotFoundError")
