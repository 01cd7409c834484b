"""Embeddings of samples: stored by inference (one vector per sample per space), listed and deleted by
space, and searched: the nearest samples to a sample or a vector, and groups of near-duplicates.

Vectors of different models differ in dimension, so one `vector` column holds them all and each
dimension gets its own HNSW index, on `embedding::vector(D)` over the rows `WHERE dims = D`, made when
a dimension is first stored. Queries spell out the dimension (search.distance_sql), which is how the
planner matches them to that index.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import defaultdict

import asyncpg

from proto import subjects
from proto.common import Empty
from proto.embeddings import (
    MAX_DUPLICATE_SAMPLES,
    DuplicateGroup,
    DuplicateGroups,
    EmbeddingSpace,
    EmbeddingSpaceDeleted,
    EmbeddingSpaceRef,
    EmbeddingSpaces,
    EmbeddingsStored,
    FindDuplicatesRequest,
    FindSimilarRequest,
    ListEmbeddingSpaces,
    PutEmbeddings,
    SimilarSample,
    SimilarSamples,
    StoredEmbeddings,
)
from proto.search import SPACE_PATTERN, SampleFilter
from services.catalog import samples, search
from shared import outbox
from shared.bus import RequestContext
from shared.errors import LoupeError, conflict, invalid, not_found
from shared.rows import from_row
from shared.service import Answers, Runtime, StateKey

ANSWERS = Answers()

SPACE_NAME = re.compile(SPACE_PATTERN)

# The dimensions that have an HNSW index, read at start-up and added to as new ones are stored.
INDEXED = StateKey("dimensions with an HNSW index", set)
INDEX_PREFIX = "sample_embeddings_hnsw_"
# Neighbours each sample is compared with when looking for duplicates: a group larger than this still
# comes together, through its members' own neighbours.
DUPLICATE_NEIGHBOURS = 10
DUPLICATE_EF_SEARCH = 40
DUPLICATE_PARTS = 2  # queries at once: the k-NN of thousands of samples is CPU work for Postgres


async def find_indexes(rt: Runtime) -> None:
    rows = await rt.db.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'sample_embeddings' "
        "AND starts_with(indexname, $1)",
        INDEX_PREFIX,
    )
    rt.state[INDEXED] = {int(row["indexname"].removeprefix(INDEX_PREFIX)) for row in rows}


async def ensure_index(rt: Runtime, dims: int) -> None:
    """The HNSW index of vectors of `dims` dimensions, made now if it is missing. Made while no vector of
    that dimension exists yet, it is built at once; in its own transaction, so that the table is locked
    against writes only as long as that takes."""
    indexed = rt.state[INDEXED]
    if dims in indexed:
        return
    async with rt.db.acquire() as conn, conn.transaction():
        # Two catalogs storing a new dimension at once: one makes the index, the other then finds it.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('loupe.catalog.hnsw'), $1)", dims)
        await conn.execute(index_sql(dims))
    indexed.add(dims)


def index_sql(dims: int) -> str:
    """The HNSW index of the vectors of `dims` dimensions, by cosine distance."""
    return (
        f"CREATE INDEX IF NOT EXISTS {INDEX_PREFIX}{dims} ON sample_embeddings "
        f"USING hnsw ((embedding::vector({dims})) vector_cosine_ops) WHERE dims = {dims}"
    )


async def space_dims(db: asyncpg.Pool | asyncpg.Connection, project_id: uuid.UUID, space: str) -> int | None:
    return await db.fetchval(
        "SELECT dims FROM embedding_spaces WHERE project_id = $1 AND space = $2", project_id, space
    )


def wrong_dims(space: str, dims: int, given: int) -> LoupeError:
    return invalid(
        f"space {space!r} holds vectors of {dims} dimensions, and these have {given}: a space is one model "
        "version's, so store another model's vectors in a space of its own",
        path="$.items[0].vector",
    )


async def claim_space(conn: asyncpg.Connection, project_id: uuid.UUID, space: str, dims: int) -> int:
    """The space's dimension, the space made with `dims` if it is new; kept from deletion until commit."""
    try:
        await conn.execute(
            "INSERT INTO embedding_spaces (project_id, space, dims) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            project_id,
            space,
            dims,
        )
    except asyncpg.ForeignKeyViolationError:
        raise not_found("project", str(project_id)) from None
    found = await conn.fetchval(
        "SELECT dims FROM embedding_spaces WHERE project_id = $1 AND space = $2 FOR KEY SHARE", project_id, space
    )
    if found is None:
        raise conflict(f"space {space!r} was deleted while these vectors were being stored; store them again")
    return found


# The samples are locked (in id order) before their vectors are written, so a sample deleted meanwhile
# is either kept until this commits or already gone, and then reported missing.
PUT_SQL = """
WITH present AS (
    SELECT id FROM samples WHERE project_id = $1 AND id = ANY($3::uuid[]) ORDER BY id FOR KEY SHARE
)
INSERT INTO sample_embeddings AS e (sample_id, space, project_id, dims, embedding)
SELECT v.sample_id, $2, $1, $4, v.embedding::vector
FROM unnest($3::uuid[], $5::text[]) AS v (sample_id, embedding) JOIN present p ON p.id = v.sample_id
ON CONFLICT (sample_id, space) DO UPDATE SET embedding = EXCLUDED.embedding, updated_at = now()
RETURNING e.sample_id
"""


@ANSWERS(subjects.PUT_EMBEDDINGS)
async def put(rt: Runtime, request: PutEmbeddings, ctx: RequestContext) -> StoredEmbeddings:
    project_id = search.project_uuid(request.project_id)
    dims = len(request.items[0].vector)
    first_of: dict[uuid.UUID, int] = {}
    for index, item in enumerate(request.items):
        path = f"$.items[{index}]"
        if len(item.vector) != dims:
            raise invalid(
                f"the vectors of a space have one length: items[0] has {dims} numbers, this one {len(item.vector)}",
                path=f"{path}.vector",
            )
        search.check_vector(item.vector, f"{path}.vector")
        ident = uuid.UUID(item.sample_id)
        if ident in first_of:
            raise invalid(
                f"sample {item.sample_id} is also items[{first_of[ident]}]; send one vector per sample",
                path=f"{path}.sample_id",
            )
        first_of[ident] = index
    existing = await space_dims(rt.db, project_id, request.space)
    if existing is not None and existing != dims:
        raise wrong_dims(request.space, existing, dims)
    await ensure_index(rt, dims)
    ids = list(first_of)
    vectors = [search.vector_text(item.vector) for item in request.items]
    async with rt.db.acquire() as conn, conn.transaction():
        claimed = await claim_space(conn, project_id, request.space, dims)
        if claimed != dims:  # made a moment ago by another call
            raise wrong_dims(request.space, claimed, dims)
        rows = await conn.fetch(PUT_SQL, project_id, request.space, ids, dims, vectors)
        stored = {row["sample_id"] for row in rows}
        if stored:
            stored_ids = [str(ident) for ident in ids if ident in stored]
            event = EmbeddingsStored(project_id=str(project_id), space=request.space, dims=dims, sample_ids=stored_ids)
            await outbox.emit(conn, subjects.EMBEDDINGS_STORED, event, str(project_id))
    missing = [item.sample_id for item, ident in zip(request.items, ids, strict=True) if ident not in stored]
    return StoredEmbeddings(stored=len(stored), missing=missing)


@ANSWERS(subjects.LIST_EMBEDDING_SPACES)
async def list_spaces(rt: Runtime, request: ListEmbeddingSpaces, ctx: RequestContext) -> EmbeddingSpaces:
    rows = await rt.db.fetch(
        "SELECT sp.space, sp.dims, count(e.sample_id) AS count, max(e.updated_at) AS updated_at "
        "FROM embedding_spaces sp LEFT JOIN sample_embeddings e "
        "ON e.project_id = sp.project_id AND e.space = sp.space AND e.dims = sp.dims "
        "WHERE sp.project_id = $1 GROUP BY sp.space, sp.dims ORDER BY sp.space",
        search.project_uuid(request.project_id),
    )
    return EmbeddingSpaces(items=[from_row(EmbeddingSpace, row) for row in rows])


@ANSWERS(subjects.DELETE_EMBEDDING_SPACE)
async def delete_space(rt: Runtime, request: EmbeddingSpaceRef, ctx: RequestContext) -> Empty:
    project_id = search.project_uuid(request.project_id)
    if not SPACE_NAME.match(request.space):  # from a URL path: a name no space can have names nothing
        raise not_found("embedding space", request.space)
    async with rt.db.acquire() as conn, conn.transaction():
        dims = await conn.fetchval(
            "DELETE FROM embedding_spaces WHERE project_id = $1 AND space = $2 RETURNING dims",
            project_id,
            request.space,
        )
        if dims is None:
            raise not_found("embedding space", request.space)
        event = EmbeddingSpaceDeleted(project_id=str(project_id), space=request.space, dims=dims)
        await outbox.emit(conn, subjects.EMBEDDING_SPACE_DELETED, event, str(project_id))
    return Empty()


@ANSWERS(subjects.FIND_SIMILAR)
async def similar(rt: Runtime, request: FindSimilarRequest, ctx: RequestContext) -> SimilarSamples:
    query = request.query
    project_id = search.project_uuid(request.project_id)
    search.check_query(query, "$")
    where = await search.checked_filter(rt, project_id, query.filter or SampleFilter(), "$.filter")
    near = await search.find_near(rt.db, project_id, query, "$")
    nearest = search.nearest_sql(where, near, query.limit)
    # Materialized: the scan's rows come in relaxed order, and are put in order once found.
    rows = await search.read(
        rt,
        f"WITH n AS MATERIALIZED ({nearest}) SELECT {search.COLUMNS}, n.distance FROM n "
        f"JOIN samples s ON s.id = n.sample_id{search.within_sql(where, query.max_distance)} "
        "ORDER BY n.distance, s.id",
        where.params,
        where.ef_search,
    )
    return SimilarSamples(
        items=[SimilarSample(sample=samples.to_sample(row), distance=row["distance"]) for row in rows]
    )


@ANSWERS(subjects.FIND_DUPLICATES)
async def duplicates(rt: Runtime, request: FindDuplicatesRequest, ctx: RequestContext) -> DuplicateGroups:
    """The nearest neighbours of each sample the filter matches, found through the index (a LATERAL k-NN
    per sample, in DUPLICATE_PARTS parts at once), are its links when within max_distance."""
    query = request.query
    project_id = search.project_uuid(request.project_id)
    where = await search.checked_filter(rt, project_id, query.filter or SampleFilter(), "$.filter")
    dims = await space_dims(rt.db, project_id, query.space)
    if dims is None:
        raise search.no_space(query.space, "$.space")
    source, conditions = search.vectors_sql(where, query.space, dims)
    examined = [
        row["sample_id"]
        for row in await search.read(
            rt, f"SELECT e.sample_id FROM {source} WHERE {conditions} LIMIT {MAX_DUPLICATE_SAMPLES + 1}", where.params
        )
    ]
    if len(examined) > MAX_DUPLICATE_SAMPLES:
        raise too_many(f"more than {MAX_DUPLICATE_SAMPLES:,} samples have a vector in space {query.space!r}")
    distance = f"e.embedding::vector({dims}) <=> c.embedding::vector({dims})"
    links_sql = (
        "WITH c AS MATERIALIZED (SELECT sample_id, embedding FROM sample_embeddings "
        "WHERE sample_id = ANY($3::uuid[]) AND space = $2) "
        "SELECT c.sample_id AS a, n.sample_id AS b, n.distance FROM c CROSS JOIN LATERAL "
        f"(SELECT e.sample_id, {distance} AS distance FROM sample_embeddings e "
        f"WHERE e.project_id = $1 AND e.space = $2 AND e.dims = {dims} AND e.sample_id <> c.sample_id "
        f"ORDER BY {distance} LIMIT {DUPLICATE_NEIGHBOURS}) n WHERE n.distance <= $4"
    )
    parts = [
        search.read(
            rt,
            links_sql,
            [project_id, query.space, examined[i::DUPLICATE_PARTS], query.max_distance],
            DUPLICATE_EF_SEARCH,
        )
        for i in range(DUPLICATE_PARTS)
    ]
    try:
        found = await asyncio.wait_for(asyncio.gather(*parts), timeout=rt.settings.request_timeout_s * 0.8)
    except TimeoutError:  # the queries are cancelled with it
        raise too_many(f"comparing the {len(examined):,} samples took too long") from None
    groups = connected_groups([(row["a"], row["b"], row["distance"]) for rows in found for row in rows])
    return DuplicateGroups(groups=groups[: query.limit], total=len(groups), examined=len(examined))


def too_many(why: str) -> LoupeError:
    return invalid(
        f"{why}: look for duplicates of fewer samples at once, narrowing them with a filter (datasets, "
        "created_since, metadata, ...) and asking once per part; each part is still compared with every sample",
        path="$.filter",
    )


def connected_groups(links: list[tuple[uuid.UUID, uuid.UUID, float]]) -> list[DuplicateGroup]:
    """The connected components of `links`, the largest first (then the tightest)."""
    parent: dict[uuid.UUID, uuid.UUID] = {}

    def root(node: uuid.UUID) -> uuid.UUID:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b, _ in links:
        parent[root(a)] = root(b)
    members: dict[uuid.UUID, list[str]] = defaultdict(list)
    for node in parent:
        members[root(node)].append(str(node))
    widest: dict[uuid.UUID, float] = defaultdict(float)
    for a, _, distance in links:
        group = root(a)
        widest[group] = max(widest[group], distance)
    groups = [DuplicateGroup(sample_ids=sorted(ids), max_distance=widest[group]) for group, ids in members.items()]
    return sorted(groups, key=lambda g: (-len(g.sample_ids), g.max_distance, g.sample_ids[0]))
