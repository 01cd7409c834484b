"""The model registry: models per project, their versions (metrics, configuration, lineage), the active
version per task family, and deleting a version's files or all of it.

A model is named per project and learns one task family; in Triton's repository it is `triton_model`,
its versions the numbered folders below it. The first version of a family a project gets becomes its
active version, so there is something to serve at once; later ones are activated on purpose.
"""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from proto import subjects
from proto.catalog import ProjectDeleted
from proto.common import Empty
from proto.training import (
    ActivateVersionRequest,
    ActiveVersionChanged,
    ClassMetrics,
    DeleteVersionRequest,
    Family,
    Model,
    ModelList,
    ModelRef,
    ModelVersion,
    PretrainedVersion,
    ProjectScope,
    TagGroupValues,
    TrainingConfig,
    VersionList,
    VersionRef,
)
from services.training import model_repository
from shared import object_keys, outbox
from shared.bus import RequestContext
from shared.consumers import Delivery
from shared.errors import conflict, not_found
from shared.ids import parse_uuid
from shared.rows import from_row
from shared.service import Answers, Runtime

ANSWERS = Answers()

VERSION_SELECT = """
SELECT v.*, m.project_id, m.name AS model, m.family, m.triton_model,
       EXISTS (SELECT 1 FROM active_versions a WHERE a.version_id = v.id) AS active
FROM model_versions v JOIN models m ON m.id = v.model_id
"""
MODEL_SELECT = """
SELECT m.*, (SELECT count(*) FROM model_versions v WHERE v.model_id = m.id) AS versions,
       (SELECT max(version) FROM model_versions v WHERE v.model_id = m.id) AS latest_version,
       (SELECT v.version FROM active_versions a JOIN model_versions v ON v.id = a.version_id
        WHERE a.project_id = m.project_id AND a.family = m.family AND v.model_id = m.id) AS active_version
FROM models m
"""


# The Triton every deployment has: the python backend running onnxruntime (the local stack's Triton has
# nothing else; NVIDIA's image has it too). A GPU deployment can point a model at TensorRT with
# model_repository.serve_version(backend="onnxruntime", gpu=True).
TRITON_BACKEND: model_repository.Backend = "python"


def triton_name(project_id: uuid.UUID, model: str) -> str:
    """Unique in the repository, which all projects share."""
    return f"{model}-{project_id.hex}"


def to_version(row: asyncpg.Record) -> ModelVersion:
    return from_row(
        ModelVersion,
        row,
        per_class=[ClassMetrics(name=name, metrics=values) for name, values in row["per_class"].items()],
        config=msgspec.convert(row["config"], TrainingConfig),
        pretrained=msgspec.convert(row["pretrained"], PretrainedVersion | None),
        tag_groups=msgspec.convert(row["tag_groups"], list[TagGroupValues]),
    )


def to_model(row: asyncpg.Record) -> Model:
    return from_row(Model, row)


async def fetch_model(conn: asyncpg.Connection | asyncpg.Pool, project_id: str, name: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        MODEL_SELECT + "WHERE m.project_id = $1 AND m.name = $2", parse_uuid(project_id, "project"), name
    )
    if row is None:
        raise not_found("model", name)
    return row


async def fetch_version(conn: asyncpg.Connection | asyncpg.Pool, ref: VersionRef) -> asyncpg.Record:
    model = await fetch_model(conn, ref.project_id, ref.model)
    number = int(ref.version) if ref.version.isdigit() and len(ref.version) < 10 else -1
    row = await conn.fetchrow(VERSION_SELECT + "WHERE v.model_id = $1 AND v.version = $2", model["id"], number)
    if row is None:
        raise not_found("model version", f"{ref.model}/{ref.version}")
    return row


# -- what a finished run records --------------------------------------------------------------------


async def allocate_version(conn: asyncpg.Connection, project_id: str, model: str, family: Family) -> int:
    """A version number no other run of the model gets (the model is made on first use)."""
    project = uuid.UUID(project_id)
    await conn.execute(
        "INSERT INTO models (project_id, name, family, triton_model) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        project,
        model,
        family,
        triton_name(project, model),
    )
    return await conn.fetchval(
        "UPDATE models SET next_version = next_version + 1 WHERE project_id = $1 AND name = $2 "
        "RETURNING next_version - 1",
        project,
        model,
    )


async def record_version(conn: asyncpg.Connection, project_id: str, model: str, values: dict) -> ModelVersion:
    """Insert the version (its files are already published), activate it if its family has no active
    version in the project, and announce it."""
    model_row = await fetch_model(conn, project_id, model)
    version_id = await conn.fetchval(
        "INSERT INTO model_versions (model_id, version, run_id, release_id, labelset, classes, tag_groups, metrics, "
        "per_class, validation_samples, training_samples, config, pretrained, code_version, onnx_max_abs_diff) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        model_row["id"],
        values["version"],
        values["run_id"],
        values["release_id"],
        values["labelset"],
        values["classes"],
        values["tag_groups"],
        values["metrics"],
        values["per_class"],
        values["validation_samples"],
        values["training_samples"],
        values["config"],
        values["pretrained"],
        values["code_version"],
        values["onnx_max_abs_diff"],
    )
    activated = await conn.fetchval(
        "INSERT INTO active_versions (project_id, family, version_id) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING true",
        model_row["project_id"],
        model_row["family"],
        version_id,
    )
    version = to_version(await conn.fetchrow(VERSION_SELECT + "WHERE v.id = $1", version_id))
    await outbox.emit(conn, subjects.MODEL_VERSION_CREATED, version, project_id)
    if activated:
        await announce_active(conn, project_id, version.family, version)
    return version


async def announce_active(
    conn: asyncpg.Connection, project_id: str, family: Family, version: ModelVersion | None
) -> None:
    changed = ActiveVersionChanged(project_id=project_id, family=family, version=version)
    await outbox.emit(conn, subjects.ACTIVE_VERSION_CHANGED, changed, project_id)


# -- commands ---------------------------------------------------------------------------------------


@ANSWERS(subjects.LIST_MODELS)
async def list_models(rt: Runtime, request: ProjectScope, ctx: RequestContext) -> ModelList:
    rows = await rt.db.fetch(
        MODEL_SELECT + "WHERE m.project_id = $1 ORDER BY m.name", parse_uuid(request.project_id, "project")
    )
    return ModelList(items=[to_model(row) for row in rows])


@ANSWERS(subjects.GET_MODEL)
async def get_model(rt: Runtime, request: ModelRef, ctx: RequestContext) -> Model:
    return to_model(await fetch_model(rt.db, request.project_id, request.model))


@ANSWERS(subjects.LIST_MODEL_VERSIONS)
async def list_versions(rt: Runtime, request: ModelRef, ctx: RequestContext) -> VersionList:
    model = await fetch_model(rt.db, request.project_id, request.model)
    rows = await rt.db.fetch(VERSION_SELECT + "WHERE v.model_id = $1 ORDER BY v.version DESC", model["id"])
    return VersionList(items=[to_version(row) for row in rows])


@ANSWERS(subjects.GET_MODEL_VERSION)
async def get_version(rt: Runtime, request: VersionRef, ctx: RequestContext) -> ModelVersion:
    return to_version(await fetch_version(rt.db, request))


@ANSWERS(subjects.ACTIVATE_MODEL_VERSION)
async def activate(rt: Runtime, request: ActivateVersionRequest, ctx: RequestContext) -> ModelVersion:
    ref = VersionRef(project_id=request.project_id, model=request.model, version=str(request.body.version))
    async with rt.db.acquire() as conn, conn.transaction():
        row = await fetch_version(conn, ref)
        if row["weights_deleted"]:
            raise conflict(
                f"version {row['version']} of {row['model']!r} has no weights any more; activate another one",
                path="$.version",
            )
        if row["active"]:
            return to_version(row)
        await conn.execute(
            "INSERT INTO active_versions (project_id, family, version_id) VALUES ($1, $2, $3) "
            "ON CONFLICT (project_id, family) DO UPDATE SET version_id = excluded.version_id",
            row["project_id"],
            row["family"],
            row["id"],
        )
        version = to_version(await conn.fetchrow(VERSION_SELECT + "WHERE v.id = $1", row["id"]))
        await announce_active(conn, request.project_id, version.family, version)
    await serve(rt, version.triton_model, version.version)
    return version


async def serve(rt: Runtime, triton_model: str, version: int) -> None:
    """Point the model's Triton configuration at this version (a config serves exactly one)."""
    await model_repository.serve_version(rt.storage, triton_model, version, backend=TRITON_BACKEND, gpu=False)


@ANSWERS(subjects.DELETE_MODEL_VERSION)
async def delete_version(rt: Runtime, request: DeleteVersionRequest, ctx: RequestContext) -> Empty:
    """Weights only: the files go, the record stays (it can no longer be active). Otherwise both go."""
    ref = VersionRef(project_id=request.project_id, model=request.model, version=request.version)
    async with rt.db.acquire() as conn, conn.transaction():
        row = await fetch_version(conn, ref)
        if request.query.weights_only and row["active"]:
            raise conflict(
                f"version {row['version']} of {row['model']!r} is active for {row['family']}: activate another "
                "version first, or delete it all",
                path="query.weights_only",
            )
        if request.query.weights_only:
            await conn.execute("UPDATE model_versions SET weights_deleted = true WHERE id = $1", row["id"])
        else:
            await conn.execute("DELETE FROM model_versions WHERE id = $1", row["id"])
            if row["active"]:
                await announce_active(conn, request.project_id, row["family"], None)
    await model_repository.remove_version(rt.storage, row["triton_model"], row["version"])
    await rt.storage.delete_many("models", [object_keys.model_weights(row["triton_model"], row["version"])])
    return Empty()


@ANSWERS(subjects.DELETE_MODEL)
async def delete_model(rt: Runtime, request: ModelRef, ctx: RequestContext) -> Empty:
    async with rt.db.acquire() as conn, conn.transaction():
        model = await fetch_model(conn, request.project_id, request.model)
        if model["active_version"] is not None:
            await announce_active(conn, request.project_id, model["family"], None)
        await conn.execute("DELETE FROM models WHERE id = $1", model["id"])
    await remove_files(rt, model["triton_model"])
    return Empty()


async def on_project_deleted(rt: Runtime, project: str | None, deleted: ProjectDeleted, delivery: Delivery) -> None:
    """Forget the project's configuration, finished runs and models, with their files; a queued run is
    cancelled, a running one asked to stop (it records CANCELLED)."""
    project_id = uuid.UUID(deleted.id)
    async with rt.db.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM training_configs WHERE project_id = $1", project_id)
        await conn.execute(
            "DELETE FROM runs WHERE project_id = $1 AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')", project_id
        )
        await conn.execute(
            "UPDATE runs SET cancel_requested = true, "
            "state = CASE WHEN state = 'QUEUED' THEN 'CANCELLED' ELSE state END WHERE project_id = $1",
            project_id,
        )
        names = await conn.fetch("DELETE FROM models WHERE project_id = $1 RETURNING triton_model", project_id)
    for row in names:
        await remove_files(rt, row["triton_model"])


async def remove_files(rt: Runtime, triton_model: str) -> None:
    """A model's files: its folder in Triton's repository and every version's weights."""
    await model_repository.remove_model(rt.storage, triton_model)
    await rt.storage.delete_prefix("models", object_keys.model_weights_folder(triton_model))
