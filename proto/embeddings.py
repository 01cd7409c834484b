"""Embeddings: vectors that inference computes for samples, one per sample per embedding space, which
the catalog stores beside the samples and searches by cosine distance (nearest samples, near-duplicates,
and the `similar` condition of every sample filter, in proto/search.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from proto.common import Uuid
from proto.samples import Sample
from proto.search import Distance, Neighbours, SampleFilter, Space, Vector, VectorQuery

MAX_PUT_ITEMS = 1000
# The samples whose duplicates one call looks for, at most: a filter splits a larger space into parts.
MAX_DUPLICATE_SAMPLES = 10_000


class EmbeddingItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sample_id: Uuid
    vector: Vector  # finite numbers, not all zero; every vector of a space has the same length


class PutEmbeddings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Store (or replace) the vectors of samples in a space, which is made by its first vectors."""

    project_id: str
    space: Space
    items: Annotated[list[EmbeddingItem], msgspec.Meta(min_length=1, max_length=MAX_PUT_ITEMS)]


class StoredEmbeddings(msgspec.Struct, frozen=True, kw_only=True):
    stored: int
    # Samples that are not (or no longer) the project's: a job that embeds samples races their deletion,
    # so these are reported, not refused.
    missing: list[str]


class EmbeddingsStored(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    space: str
    dims: int
    sample_ids: list[str]  # the samples whose vectors were stored or replaced


class ListEmbeddingSpaces(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str


class EmbeddingSpace(msgspec.Struct, frozen=True, kw_only=True):
    space: str
    dims: int
    count: int  # the samples with a vector in the space
    updated_at: datetime | None  # when a vector was last stored; null when none is left


class EmbeddingSpaces(msgspec.Struct, frozen=True, kw_only=True):
    items: list[EmbeddingSpace]


class EmbeddingSpaceRef(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    space: str


class EmbeddingSpaceDeleted(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    space: str
    dims: int


class FindSimilar(VectorQuery, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The samples nearest to a sample's vector or to `vector`, among those `filter` matches, nearest
    first; with `max_distance`, only those within it."""

    limit: Neighbours = 20
    filter: SampleFilter | None = None
    max_distance: Distance | None = None


class FindSimilarRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    query: FindSimilar


class SimilarSample(msgspec.Struct, frozen=True, kw_only=True):
    sample: Sample
    distance: float  # cosine distance to the query


class SimilarSamples(msgspec.Struct, frozen=True, kw_only=True):
    items: list[SimilarSample]


class FindDuplicates(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Groups of near-duplicate samples. The samples `filter` matches (all, without one; at most
    MAX_DUPLICATE_SAMPLES) are each linked to those of its nearest samples in the space (10) within
    `max_distance`, whichever they are (so one dataset can be checked against all the others); a group is
    what links connect."""

    space: Space
    max_distance: Distance = 0.05
    filter: SampleFilter | None = None
    limit: Neighbours = 100  # groups, the largest first


class FindDuplicatesRequest(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    query: FindDuplicates


class DuplicateGroup(msgspec.Struct, frozen=True, kw_only=True):
    sample_ids: list[str]
    # The largest distance of a link in the group; two samples linked only through others may be further apart.
    max_distance: float


class DuplicateGroups(msgspec.Struct, frozen=True, kw_only=True):
    groups: list[DuplicateGroup]
    total: int  # groups found, of which `groups` are the first `limit`
    examined: int  # samples whose near-duplicates were looked for (those the filter matches)
