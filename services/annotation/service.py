"""The annotation service: labelsets, labels and their objects, review, label QA, releases, exports
and label imports. It keeps its own read models of the catalog's samples (sample_facts) and label
schemas (schema_facts)."""

from __future__ import annotations

from pathlib import Path

from proto import subjects
from proto.releases import LabelImportJob, ReleaseJob
from proto.review import QaJob
from services.annotation import (
    issues,
    label_bulk,
    labels,
    labelsets,
    qa,
    queue,
    releases,
    sample_facts,
    schema_facts,
)
from services.annotation.label_imports import commands as label_import_commands
from services.annotation.label_imports import images as label_import_images
from services.annotation.label_imports import stages as label_import_stages
from shared.consumers import Delivery
from shared.service import Runtime, Service

service = Service("annotation", migrations=Path(__file__).parent / "migrations", buckets=("releases",))

# -- labelsets, labels, objects
service.answer([*labelsets.ANSWERS, *labels.ANSWERS, *label_bulk.ANSWERS])

# -- work queues and issues
service.answer([*queue.ANSWERS, *issues.ANSWERS])

# -- label QA
service.answer(qa.ANSWERS)
service.consumer("qa", subjects.JOBS_STREAM, subjects.QA_JOB.subject, QaJob)(qa.run_job)

# -- releases and exports
service.answer(releases.ANSWERS)


@service.consumer("release", subjects.JOBS_STREAM, subjects.RELEASE_JOB.subject, ReleaseJob)
async def release_job(rt: Runtime, job: ReleaseJob, delivery: Delivery) -> None:
    await releases.run_job(rt, job, delivery)


# -- label imports: an images job, then a labels job, which the finish of ingest's run submits
service.answer(label_import_commands.ANSWERS)
service.consumer("label-import", subjects.JOBS_STREAM, subjects.LABEL_IMPORT_JOB.subject, LabelImportJob)(
    label_import_stages.run_job
)
service.on_event(subjects.RUN_PROGRESSED)(label_import_images.on_run_progressed)


# -- read models and labels kept in step with the catalog's events
service.on_event(subjects.SAMPLES_CREATED)(sample_facts.on_created)
service.on_event(subjects.SAMPLES_UPDATED)(sample_facts.on_updated)
service.on_event(subjects.SAMPLES_MOVED)(sample_facts.on_moved)
service.on_event(subjects.SAMPLES_DELETED)(sample_facts.on_deleted)
service.on_event(subjects.DATASET_DELETED)(sample_facts.on_dataset_deleted)
service.on_event(subjects.PROJECT_DELETED)(sample_facts.on_project_deleted)
service.context(schema_facts.open_schemas)
for event in subjects.SCHEMA_EVENTS:
    if event != subjects.LABEL_CLASS_MERGED:
        service.on_event(event)(schema_facts.on_changed)
service.on_event(subjects.LABEL_CLASS_MERGED)(labels.on_class_merged)
