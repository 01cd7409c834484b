"""The training service: training configurations, runs (the `training-run` job, trained in a child
process), and the model registry; it owns the model repository bucket Triton loads from."""

from __future__ import annotations

from pathlib import Path

from proto import subjects
from proto.training import TrainingRunJob
from services.training import configs, registry, runner, runs
from shared.service import Service

service = Service("training", migrations=Path(__file__).parent / "migrations", buckets=("models",))

service.answer([*configs.ANSWERS, *runs.ANSWERS, *registry.ANSWERS])
service.consumer("run", subjects.JOBS_STREAM, subjects.TRAINING_RUN_JOB.subject, TrainingRunJob)(runner.run_job)
# Runs cut from "everything labelled now" wait for their release to be built.
service.on_event(subjects.RELEASE_FINISHED)(runs.on_release_finished)
service.on_event(subjects.PROJECT_DELETED)(registry.on_project_deleted)
