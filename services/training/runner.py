"""The `training-run` job: one run, from its release to a registered model version.

The service's event loop only moves bytes and records progress; the trainer process (services/training/
trainer.py) does the work. Per epoch the trainer sends its report with a checkpoint, which is stored
in the models bucket before the epoch is recorded and announced, so whatever the run's progress says,
a checkpoint at least that far exists. A job delivered again after its process died (JetStream
redelivers once the heartbeats stop) finds the run RUNNING, counts a resume and continues from that
checkpoint: the epoch count goes on where it was.

Each step goes into the run's log (runs.log): the trainer's `Line`s and the job's own (downloads, resume,
hand-back, publishing, the outcome). The bus gets no event per line: `training.run.progressed` already
announces each epoch, and the log is read through its command.

Cancellation: the cancel command sets `cancel_requested`; the job looks every `WATCH_S`, stops the
trainer (SIGTERM, then SIGKILL after `STOP_GRACE_S`) and records CANCELLED. A service that is stopping
stops its trainer too, and hands the job back to be resumed elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import subprocess
import tempfile
import time
import uuid
from functools import cache
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path

import msgspec

from proto import subjects
from proto.training import FINISHED_STATES, PretrainedVersion, TrainingRun, TrainingRunJob, TrainingRunProgressed
from services.training import model_repository, registry, runs, trainer
from shared import object_keys, outbox
from shared.consumers import Delivery
from shared.errors import LoupeError
from shared.rows import from_row
from shared.service import Runtime
from shared.storage import ObjectMissing

log = logging.getLogger(__name__)

WATCH_S = 0.5
STOP_GRACE_S = 2.0
DOWNLOADS_AT_ONCE = 16


class HandedBack(Exception):
    """The service is stopping: the job goes back to the queue and resumes from its checkpoint."""


@cache
def code_version() -> str:
    """`git describe` of the code when it runs from a checkout, else the installed package's version."""
    root = Path(__file__).resolve().parents[2]
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    if described:
        return f"git:{described}"
    try:
        return f"loupe {metadata.version('loupe')}"
    except metadata.PackageNotFoundError:
        return "unknown"


async def run_job(rt: Runtime, job: TrainingRunJob, delivery: Delivery) -> None:
    row = await rt.db.fetchrow("SELECT state, cancel_requested FROM runs WHERE id = $1", uuid.UUID(job.run_id))
    if row is None or row["state"] in FINISHED_STATES:
        return  # a redelivery of a finished run
    if row["cancel_requested"]:
        await finish(rt, job.run_id, "CANCELLED")
        return
    async with rt.db.acquire() as conn, conn.transaction():
        run = await runs.update(
            conn,
            job.run_id,
            "state = 'RUNNING', started_at = coalesce(started_at, now()), "
            "resumed = resumed + CASE WHEN state = 'RUNNING' THEN 1 ELSE 0 END",
        )
        started = (
            f"started again (resume {run.resumed}) after its last attempt stopped"
            if row["state"] == "RUNNING"
            else f"started training {run.model!r} ({run.family}) from release {run.release_id}"
        )
        await runs.log(conn, run.id, "info", started)
    try:
        with tempfile.TemporaryDirectory(prefix="loupe-training-") as scratch:
            try:
                work = await prepare(rt, run, Path(scratch))
            except LoupeError as exc:
                await finish(rt, run.id, "FAILED", exc.message)
                return
            await Supervision(rt, run, work).supervise()
    except HandedBack:
        raise
    except Exception as exc:
        # Retried from the checkpoint with backoff; the last delivery's failure is the run's.
        failure = f"{type(exc).__name__}: {exc}"
        if delivery.attempt >= rt.settings.job_max_deliveries:
            await finish(rt, run.id, "FAILED", f"training failed {delivery.attempt} times, last: {failure}")
        else:
            await runs.log(
                rt.db, run.id, "warning", f"attempt {delivery.attempt} failed ({failure}); it will be retried"
            )
        raise


async def finish(rt: Runtime, run_id: str, state: str, error: str | None = None) -> None:
    """Record how a run ended without a version, and forget its checkpoint."""
    async with rt.db.acquire() as conn, conn.transaction():
        await runs.update(conn, run_id, "state = $2, error = $3, eta_s = NULL, finished_at = now()", state, error)
        await runs.log(conn, run_id, *(("error", f"failed: {error}") if state == "FAILED" else ("info", "cancelled")))
    with contextlib.suppress(Exception):
        await rt.storage.delete_many("models", [object_keys.training_checkpoint(run_id)])


async def prepare(rt: Runtime, run: TrainingRun, scratch: Path) -> trainer.TrainerJob:
    """Save the release file, the images it names and the last checkpoint (if any), else the weights of the
    version the run starts from (if any), for the trainer."""
    release_file = scratch / "release.jsonl"
    await rt.storage.get_file("releases", object_keys.release_snapshot(run.project_id, run.release_id), release_file)
    images = scratch / "images"
    images.mkdir()
    hashes = await asyncio.to_thread(release_images, release_file, run.labelset)
    gate = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
    began = time.monotonic()

    async def download(sha256: str) -> None:
        async with gate:
            try:
                await rt.storage.get_file("media", object_keys.original(sha256), images / sha256)
            except ObjectMissing:
                raise LoupeError("invalid", f"the release's image {sha256} is no longer in storage") from None

    await asyncio.gather(*(download(sha256) for sha256 in hashes))
    size = sum(path.stat().st_size for path in images.iterdir())
    await runs.log(
        rt.db,
        run.id,
        "info",
        f"downloaded {len(hashes)} images ({size / 1e6:.1f} MB) in {time.monotonic() - began:.1f} s",
    )
    resume_file = None
    with contextlib.suppress(ObjectMissing):  # no checkpoint yet: start from zero
        data = await rt.storage.get_bytes("models", object_keys.training_checkpoint(run.id))
        resume_file = scratch / "resume.pt"
        resume_file.write_bytes(data)
        await runs.log(
            rt.db, run.id, "info", f"resuming from its checkpoint ({run.epoch} of {run.config.epochs} epochs recorded)"
        )
    pretrained_file = None
    if run.pretrained is not None and resume_file is None:  # a checkpoint holds weights trained further
        pretrained_file = scratch / "pretrained.pt"
        await download_pretrained(rt, run.project_id, run.pretrained, pretrained_file)
        named = f"version {run.pretrained.version} of model {run.pretrained.model!r}"
        await runs.log(rt.db, run.id, "info", f"starting from the weights of {named}")
    return trainer.TrainerJob(
        release_file=release_file,
        images_dir=images,
        family=run.family,
        labelset=run.labelset,
        tag_group=run.tag_group,
        config=run.config,
        resume_file=resume_file,
        pretrained_file=pretrained_file,
    )


async def download_pretrained(rt: Runtime, project_id: str, pretrained: PretrainedVersion, path: Path) -> None:
    triton_model = registry.triton_name(uuid.UUID(project_id), pretrained.model)
    try:
        await rt.storage.get_file("models", object_keys.model_weights(triton_model, pretrained.version), path)
    except ObjectMissing:
        raise LoupeError(
            "invalid",
            f"the weights of version {pretrained.version} of model {pretrained.model!r}, which the run starts "
            "from, were deleted since it was created",
        ) from None


def release_images(release_file: Path, labelset: str) -> set[str]:
    """The originals of the samples the run may learn from; refuses a release whose training or validation
    split would be empty before any image is downloaded or any trainer started."""
    # Imported here: release_data brings numpy, Pillow and pycocotools, which an idle training service
    # need not hold (~15 MB resident).
    from services.training.release_data import holds_out_one, read_release, usable_samples

    header, samples = read_release(release_file)
    usable = [u for u in usable_samples(header, samples, labelset) if u is not None]
    validation = sum(u.validation for u in usable)
    if holds_out_one(header, len(usable) - validation, validation):
        validation = 1
    if validation == 0 or validation == len(usable):
        raise LoupeError(
            "invalid",
            f"the release has {len(usable) - validation} training and {validation} validation samples with a "
            f"finished label in {labelset!r} and a stored image; both splits need at least one (validation: a "
            "dataset named val, valid or validation, else one sample in five and at least one)",
        )
    return {u.content_hash for u in usable}


class Supervision:
    """One trainer process, from start to its last message, watched for cancellation and shutdown."""

    def __init__(self, rt: Runtime, run: TrainingRun, work: trainer.TrainerJob) -> None:
        self.rt = rt
        self.run = run
        self.work = work
        self.stopped_for: str | None = None  # "cancelled" or "stopping"
        self.loaded: trainer.Loaded | None = None
        self.started = time.monotonic()
        self.epochs_here = 0
        self.epoch = run.epoch  # the last one recorded

    async def supervise(self) -> None:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        # Started from the loop's thread: the trainer dies with the thread that started it (PR_SET_PDEATHSIG).
        process = context.Process(
            target=trainer.main, args=(sender, self.work, os.getpid()), name=f"trainer-{self.run.id}"
        )
        process.start()
        sender.close()
        watcher = asyncio.create_task(self.watch(process))
        outcome: object = None
        try:
            outcome = await self.follow(receiver)
        finally:
            watcher.cancel()
            await stop(process)
            receiver.close()
        await self.conclude(outcome, process.exitcode)

    async def follow(self, receiver: Connection) -> object:
        """Handle the trainer's messages until its last one (or until it dies: None)."""
        while True:
            try:
                message = await asyncio.to_thread(receiver.recv)
            except (EOFError, OSError):
                return None
            if isinstance(message, trainer.Loaded):
                self.loaded = message
            elif isinstance(message, trainer.Epoch):
                await self.record_epoch(message)
            elif isinstance(message, trainer.Line):
                await runs.log(self.rt.db, self.run.id, message.level, message.message)
            else:
                return message

    async def record_epoch(self, report: trainer.Epoch) -> None:
        await self.rt.storage.put_bytes(
            "models", object_keys.training_checkpoint(self.run.id), report.checkpoint, "application/octet-stream"
        )
        self.epochs_here += 1
        self.epoch = report.epoch
        per_epoch = (time.monotonic() - self.started) / self.epochs_here
        eta = per_epoch * (report.epochs - report.epoch)
        run = self.run
        async with self.rt.db.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE runs SET epoch = $2, loss = $3, metrics = $4, eta_s = $5 WHERE id = $1",
                uuid.UUID(run.id),
                report.epoch,
                report.loss,
                report.metrics,
                eta,
            )
            progressed = from_row(
                TrainingRunProgressed,
                vars(report),
                run_id=run.id,
                project_id=run.project_id,
                model=run.model,
                family=run.family,
                eta_s=eta,
            )
            await outbox.emit(conn, subjects.TRAINING_RUN_PROGRESSED, progressed, run.project_id)
            # In the same transaction: whoever sees the epoch finds its line in the log.
            line = trainer.epoch_line(report)
            await runs.log(conn, run.id, line.level, line.message)

    async def watch(self, process: multiprocessing.process.BaseProcess) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            if not self.rt.ready:
                self.stopped_for = "stopping"
            elif await self.cancel_requested():
                self.stopped_for = "cancelled"
            if self.stopped_for:
                await stop(process)
                return

    async def cancel_requested(self) -> bool:
        try:
            return bool(
                await self.rt.db.fetchval("SELECT cancel_requested FROM runs WHERE id = $1", uuid.UUID(self.run.id))
            )
        except Exception:  # Postgres away for a moment: look again next time
            log.warning("could not read whether run %s was cancelled", self.run.id, exc_info=True)
            return False

    async def conclude(self, outcome: object, exitcode: int | None) -> None:
        run_id = self.run.id
        if self.stopped_for == "cancelled":
            await finish(self.rt, run_id, "CANCELLED")
        elif self.stopped_for == "stopping":
            await runs.log(
                self.rt.db,
                run_id,
                "info",
                f"the training service is stopping: handed back after epoch {self.epoch}, to resume from its checkpoint",
            )
            raise HandedBack(f"the training service is stopping; run {run_id} resumes from its checkpoint")
        elif isinstance(outcome, trainer.Failed):
            await finish(self.rt, run_id, "FAILED", outcome.message)
        elif isinstance(outcome, trainer.Finished):
            await self.register(outcome)
        else:
            await finish(
                self.rt, run_id, "FAILED", f"the trainer process died (exit code {exitcode}), perhaps out of memory"
            )

    async def register(self, outcome: trainer.Finished) -> None:
        """Store the version's weights and publish it into the model repository, then record it: a version on
        record always has its files. The number is chosen once per run, so a redelivery publishes over the same folder."""
        run = self.run
        loaded = self.loaded
        assert loaded is not None, "the trainer reports what it loaded before it finishes"
        async with self.rt.db.acquire() as conn, conn.transaction():
            number = await conn.fetchval("SELECT version FROM runs WHERE id = $1 FOR UPDATE", uuid.UUID(run.id))
            if number is None:
                number = await registry.allocate_version(conn, run.project_id, run.model, run.family)
                await conn.execute("UPDATE runs SET version = $2 WHERE id = $1", uuid.UUID(run.id), number)
        triton_model = registry.triton_name(uuid.UUID(run.project_id), run.model)
        await runs.log(
            self.rt.db, run.id, "info", f"publishing version {number} into the model repository as {triton_model!r}"
        )
        await self.rt.storage.put_bytes(
            "models", object_keys.model_weights(triton_model, number), outcome.weights, "application/octet-stream"
        )
        await model_repository.publish_version(
            self.rt.storage, triton_model, number, outcome.onnx, backend=registry.TRITON_BACKEND, gpu=False
        )
        async with self.rt.db.acquire() as conn, conn.transaction():
            version = await registry.record_version(
                conn,
                run.project_id,
                run.model,
                {
                    "version": number,
                    "run_id": uuid.UUID(run.id),
                    "release_id": uuid.UUID(run.release_id),
                    "labelset": run.labelset,
                    "classes": loaded.classes,
                    "tag_groups": msgspec.to_builtins(loaded.tag_groups),
                    "metrics": outcome.metrics,
                    "per_class": outcome.per_class,
                    "validation_samples": loaded.validation_samples,
                    "training_samples": loaded.training_samples,
                    "config": msgspec.to_builtins(run.config),
                    "pretrained": msgspec.to_builtins(run.pretrained),
                    "code_version": code_version(),
                    "onnx_max_abs_diff": outcome.onnx_max_abs_diff,
                },
            )
            await runs.update(
                conn,
                run.id,
                "state = 'SUCCEEDED', version_id = $2, metrics = $3, eta_s = NULL, finished_at = now()",
                uuid.UUID(version.id),
                outcome.metrics,
            )
            await runs.log(conn, run.id, "info", f"succeeded: version {number} of model {run.model!r}")
        # Publishing pointed the model's config at the new version; a model whose active version is an
        # older one keeps serving that.
        model = await registry.fetch_model(self.rt.db, run.project_id, run.model)
        if model["active_version"] not in (None, number):
            await registry.serve(self.rt, triton_model, model["active_version"])
        with contextlib.suppress(Exception):
            await self.rt.storage.delete_many("models", [object_keys.training_checkpoint(run.id)])


async def stop(process: multiprocessing.process.BaseProcess) -> None:
    """SIGTERM, then SIGKILL if it has not exited within STOP_GRACE_S."""
    if process.exitcode is not None:
        return
    process.terminate()
    await asyncio.to_thread(process.join, STOP_GRACE_S)
    if process.exitcode is None:
        process.kill()
        await asyncio.to_thread(process.join, STOP_GRACE_S)
