"""A label import's row (table `imports`) and its items (`import_items`), and their public forms."""

from __future__ import annotations

import uuid

import asyncpg

from proto import subjects
from proto.common import Caller
from proto.releases import ImageSource, Import, ImportItem, ImportRef, LabelImportJob, LabelImportStep
from shared import object_keys, outbox
from shared.callers import service_caller
from shared.rows import from_row, one_of_project
from shared.service import Runtime

COLUMNS = (
    "id, project_id, org_id, dataset_id, labelset, format, images_source, create_classes, state, stage, "
    "ingest_run_id, images, imported, failed, objects, classes_created, error, created_by, created_at, "
    "finished_at"
)
ITEM_COLUMNS = "idx, name, outcome, sample_id, objects, error_code, error"
COUNTS = (
    "SELECT count(*) AS images, count(*) FILTER (WHERE outcome = 'IMPORTED') AS imported, "
    "count(*) FILTER (WHERE outcome = 'FAILED') AS failed, coalesce(sum(objects), 0) AS objects "
    "FROM import_items WHERE import_id = $1"
)


class KeptImageSource(ImageSource, frozen=True, kw_only=True):
    """An `images` source as the imports row keeps it: its keys only as ingest sealed them, in `credentials`."""

    credentials: str = ""  # "" on imports made before the keys were kept


def upload_key(row: asyncpg.Record) -> str:
    return object_keys.label_import_upload(row["project_id"], row["id"])


def to_import(rt: Runtime, row: asyncpg.Record) -> Import:
    waiting = row["state"] == "WAITING"
    return from_row(
        Import,
        row,
        upload_url=rt.storage.presigned_put("releases", upload_key(row), rt.settings.upload_url_expiry_s)
        if waiting
        else None,
    )


def to_item(row: asyncpg.Record) -> ImportItem:
    return from_row(ImportItem, row, index=row["idx"])


async def fetch(conn: asyncpg.Connection | asyncpg.Pool, request: ImportRef) -> asyncpg.Record:
    """The row a caller names; not_found unless it is of the project."""
    query = f"SELECT {COLUMNS} FROM imports WHERE id = $1 AND project_id = $2"
    return await one_of_project(conn, query, "import", request.import_id, request.project_id)


async def load(db: asyncpg.Pool, import_id: uuid.UUID) -> asyncpg.Record | None:
    """The row a job names; None when it was deleted since."""
    return await db.fetchrow(f"SELECT {COLUMNS} FROM imports WHERE id = $1", import_id)


def caller_of(row: asyncpg.Record) -> Caller:
    """Who the job asks other services as: annotation, inside the import's organisation."""
    return service_caller("annotation", str(row["org_id"]))


async def submit_job(conn: asyncpg.Connection, import_id: uuid.UUID, step: LabelImportStep) -> None:
    """Queue the import's job for `step`, in the transaction that makes the step due; each step's job is
    submitted once."""
    await outbox.submit_job(
        conn, subjects.LABEL_IMPORT_JOB, LabelImportJob(import_id=str(import_id), step=step), f"{import_id}:{step}"
    )
