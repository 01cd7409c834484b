"""Every REST operation the gateway serves, gathered from the module of each area."""

from __future__ import annotations

from services.gateway import (
    api_access,
    api_embeddings,
    api_imports,
    api_inference,
    api_ingest,
    api_labels,
    api_pipelines,
    api_projects,
    api_qa,
    api_releases,
    api_review,
    api_samples,
    api_schema,
    api_search,
    api_training,
)
from services.gateway.operations import Operation

OPERATIONS: tuple[Operation, ...] = (
    *api_projects.OPERATIONS,
    *api_access.OPERATIONS,
    *api_schema.OPERATIONS,
    *api_search.OPERATIONS,
    *api_embeddings.OPERATIONS,
    *api_samples.OPERATIONS,
    *api_ingest.OPERATIONS,
    *api_labels.OPERATIONS,
    *api_releases.OPERATIONS,
    *api_imports.OPERATIONS,
    *api_qa.OPERATIONS,
    *api_review.OPERATIONS,
    *api_training.OPERATIONS,
    *api_inference.OPERATIONS,
    *api_pipelines.OPERATIONS,
)
