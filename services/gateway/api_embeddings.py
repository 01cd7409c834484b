"""REST operations for embeddings and similarity search. Vectors are stored through the bus only
(`loupe.catalog.embedding.put`): inference computes them."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

EMBEDDINGS = "/v1/projects/{project_id}/embeddings"
SAMPLES = "/v1/projects/{project_id}/samples"

OPERATIONS: tuple[Operation, ...] = (
    route("GET", EMBEDDINGS, "listEmbeddingSpaces", subjects.LIST_EMBEDDING_SPACES, tag="search", role="viewer"),
    route(
        "DELETE",
        EMBEDDINGS + "/{space}",
        "deleteEmbeddingSpace",
        subjects.DELETE_EMBEDDING_SPACE,
        tag="search",
        role="manager",
    ),
    route(
        "POST",
        SAMPLES + "/similar",
        "searchSimilarSamples",
        subjects.FIND_SIMILAR,
        tag="search",
        role="viewer",
        body="query",
    ),
    route(
        "POST",
        SAMPLES + "/duplicates",
        "searchDuplicateSamples",
        subjects.FIND_DUPLICATES,
        tag="search",
        role="viewer",
        body="query",
    ),
)
