"""Training configuration per project, and a run's: the project's with the run's changes."""

from __future__ import annotations

import asyncpg
import msgspec

from proto import subjects
from proto.training import ConfigChanges, ProjectConfig, ProjectScope, ReplaceConfigRequest, TrainingConfig
from shared.bus import RequestContext
from shared.ids import parse_uuid
from shared.service import Answers, Runtime

ANSWERS = Answers()


async def project_config(conn: asyncpg.Connection | asyncpg.Pool, project_id: str) -> ProjectConfig:
    row = await conn.fetchrow(
        "SELECT config, updated_at FROM training_configs WHERE project_id = $1", parse_uuid(project_id, "project")
    )
    if row is None:
        return ProjectConfig(project_id=project_id, config=TrainingConfig())
    return ProjectConfig(
        project_id=project_id, config=msgspec.convert(row["config"], TrainingConfig), updated_at=row["updated_at"]
    )


def with_changes(config: TrainingConfig, changes: ConfigChanges) -> TrainingConfig:
    changed = {
        name: value for name in changes.__struct_fields__ if (value := getattr(changes, name)) is not msgspec.UNSET
    }
    return msgspec.structs.replace(config, **changed)


@ANSWERS(subjects.GET_TRAINING_CONFIG)
async def get(rt: Runtime, request: ProjectScope, ctx: RequestContext) -> ProjectConfig:
    return await project_config(rt.db, request.project_id)


@ANSWERS(subjects.REPLACE_TRAINING_CONFIG)
async def replace(rt: Runtime, request: ReplaceConfigRequest, ctx: RequestContext) -> ProjectConfig:
    row = await rt.db.fetchrow(
        "INSERT INTO training_configs (project_id, config) VALUES ($1, $2) "
        "ON CONFLICT (project_id) DO UPDATE SET config = excluded.config, updated_at = now() RETURNING updated_at",
        parse_uuid(request.project_id, "project"),
        msgspec.to_builtins(request.config),
    )
    return ProjectConfig(project_id=request.project_id, config=request.config, updated_at=row["updated_at"])
