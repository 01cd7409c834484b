"""Embeddings in the catalog: storing vectors through the bus, nearest samples, near-duplicate groups, and the
`similar` and `sample_ids` conditions of search, count and saved views — through REST against the real stack."""

from __future__ import annotations

import math
import random
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest

from proto import subjects
from proto.embeddings import MAX_DUPLICATE_SAMPLES, MAX_PUT_ITEMS, EmbeddingItem, PutEmbeddings, StoredEmbeddings
from services.catalog import search
from shared.bus import Bus
from shared.errors import LoupeError
from tests import helpers
from tests.helpers import call, create, dataset

DIMS = 8
SPACE = "detector:3"


def unit(rng: random.Random) -> list[float]:
    """A random direction; two of them are about 1 apart in cosine distance, never near 0."""
    return [rng.gauss(0, 1) for _ in range(DIMS)]


class Arc:
    """Vectors on one great circle: the one at angle a and the one at angle b are 1 - cos(a - b) apart."""

    def __init__(self, rng: random.Random) -> None:
        self.u = normal(unit(rng))
        other = unit(rng)
        along = sum(x * y for x, y in zip(other, self.u, strict=True))
        self.w = normal([x - along * y for x, y in zip(other, self.u, strict=True)])

    def at(self, angle: float) -> list[float]:
        return [math.cos(angle) * x + math.sin(angle) * y for x, y in zip(self.u, self.w, strict=True)]


def normal(vector: list[float]) -> list[float]:
    length = math.sqrt(sum(x * x for x in vector))
    return [x / length for x in vector]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return 1 - dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


class Space:
    """A project with two datasets of samples, each with a vector in SPACE (unless told otherwise)."""

    def __init__(self, project_id: str, datasets: list[str]) -> None:
        self.project_id = project_id
        self.path = f"/v1/projects/{project_id}"
        self.datasets = datasets
        self.ids: list[str] = []  # in the order made
        self.vectors: dict[str, list[float]] = {}


async def add_samples(api: aiohttp.ClientSession, project_id: str, dataset_id: str, count: int, prefix: str
                      ) -> list[str]:
    items = [{"media_url": f"https://images.example.com/{uuid.uuid4().hex}.jpg", "width": 64, "height": 48,
              "name": f"{prefix}_{i:03}.jpg"} for i in range(count)]
    made = await call(api, "POST", f"/v1/projects/{project_id}/datasets/{dataset_id}/samples", json={"items": items})
    return [item["id"] for item in made["items"]]


async def put(bus: Bus, project_id: str, vectors: dict[str, list[float]], space: str = SPACE) -> StoredEmbeddings:
    items = [EmbeddingItem(sample_id=ident, vector=vector) for ident, vector in vectors.items()]
    return await bus.request(subjects.PUT_EMBEDDINGS, PutEmbeddings(project_id=project_id, space=space, items=items))


async def refused(bus: Bus, request: PutEmbeddings) -> LoupeError:
    with pytest.raises(LoupeError) as caught:
        await bus.request(subjects.PUT_EMBEDDINGS, request)
    return caught.value


async def make_space(api: aiohttp.ClientSession, bus: Bus, vectors: list[list[float]], per_dataset: int) -> Space:
    """Samples `a_000…` in the first dataset and `b_000…` in the second, the i-th made having vectors[i]."""
    project_id = (await create(api, f"embeddings {uuid.uuid4().hex[:8]}"))["id"]
    made = Space(project_id, [(await dataset(api, project_id, name))["id"] for name in ("a", "b")])
    for prefix, dataset_id in zip("ab", made.datasets, strict=True):
        made.ids += await add_samples(api, project_id, dataset_id, per_dataset, prefix)
    made.vectors = dict(zip(made.ids, vectors, strict=False))
    stored = await put(bus, project_id, made.vectors)
    assert (stored.stored, stored.missing) == (len(made.vectors), [])
    return made


async def similar(api: aiohttp.ClientSession, space: Space, body: dict[str, Any], status: int = 200) -> Any:
    return await call(api, "POST", f"{space.path}/samples/similar", status, json={"space": SPACE, **body})


def names(items: list[dict]) -> list[str]:
    return [item["sample"]["name"] if "sample" in item else item["name"] for item in items]


@pytest.fixture(scope="module")
async def near_copies(api: aiohttp.ClientSession, bus: Bus) -> tuple[Space, list[float]]:
    """20 samples: a_000…a_004 are the query vector turned by 0.01, 0.02, … 0.05 radians, the rest random."""
    rng = random.Random(7)
    arc = Arc(rng)
    vectors = [arc.at(0.01 * (i + 1)) for i in range(5)] + [unit(rng) for _ in range(15)]
    return await make_space(api, bus, vectors, per_dataset=10), arc.at(0)


# -- nearest samples ------------------------------------------------------------------------------------

async def test_the_nearest_samples_come_first_with_their_distances(
        api: aiohttp.ClientSession, near_copies: tuple[Space, list[float]]) -> None:
    space, query = near_copies
    found = (await similar(api, space, {"vector": query, "limit": 5}))["items"]
    assert names(found) == ["a_000.jpg", "a_001.jpg", "a_002.jpg", "a_003.jpg", "a_004.jpg"]
    for item in found:  # the whole sample, as search returns it, and its cosine distance
        assert item["sample"]["project_id"] == space.project_id and item["sample"]["dataset_id"] == space.datasets[0]
        assert item["distance"] == pytest.approx(cosine(space.vectors[item["sample"]["id"]], query), abs=1e-5)
    everything = (await similar(api, space, {"vector": query, "limit": 1000}))["items"]
    assert len(everything) == 20
    assert [item["distance"] for item in everything] == sorted(item["distance"] for item in everything)


async def test_the_sample_asked_about_is_left_out(api: aiohttp.ClientSession,
                                                  near_copies: tuple[Space, list[float]]) -> None:
    space, _ = near_copies
    found = (await similar(api, space, {"sample_id": space.ids[0], "limit": 4}))["items"]
    assert names(found) == ["a_001.jpg", "a_002.jpg", "a_003.jpg", "a_004.jpg"]


async def test_a_filter_and_a_max_distance_narrow_the_nearest(
        api: aiohttp.ClientSession, near_copies: tuple[Space, list[float]]) -> None:
    space, query = near_copies
    within = cosine(space.vectors[space.ids[2]], query) + 1e-6
    found = await similar(api, space, {"vector": query, "max_distance": within})
    assert names(found["items"]) == ["a_000.jpg", "a_001.jpg", "a_002.jpg"]
    found = await similar(api, space, {"vector": query, "limit": 2, "filter": {"name_contains": "a_00",
                                                                                "sample_ids": space.ids[1:4]}})
    assert names(found["items"]) == ["a_001.jpg", "a_002.jpg"]
    # The nearest of the other dataset are the random ones: the filter applies before the limit.
    found = await similar(api, space, {"vector": query, "limit": 3, "filter": {"dataset_ids": [space.datasets[1]]}})
    assert len(found["items"]) == 3 and all(name.startswith("b_") for name in names(found["items"]))


# -- conditions of search, count and views ------------------------------------------------------------

async def test_similar_and_sample_ids_are_conditions_of_search_count_and_saved_views(
        api: aiohttp.ClientSession, near_copies: tuple[Space, list[float]]) -> None:
    space, query = near_copies
    base = f"{space.path}/samples"

    async def found(body: dict[str, Any]) -> set[str]:
        page = await call(api, "POST", f"{base}/search", json={"limit": 500, **body})
        counted = await call(api, "POST", f"{base}/count", json=body)
        assert counted["count"] == len(page["items"])
        return set(names(page["items"]))

    nearest_three = {"similar": {"space": SPACE, "sample_id": space.ids[0], "top_k": 3}}
    assert await found(nearest_three) == {"a_001.jpg", "a_002.jpg", "a_003.jpg"}
    # top_k counts among what the rest of the filter matches.
    among = space.ids[2:5] + space.ids[15:16]
    assert await found({**nearest_three, "sample_ids": among}) == {"a_002.jpg", "a_003.jpg", "a_004.jpg"}
    within = cosine(space.vectors[space.ids[1]], query) + 1e-6
    assert await found({"similar": {"space": SPACE, "vector": query, "max_distance": within}}) == {"a_000.jpg",
                                                                                                   "a_001.jpg"}
    assert await found({"sample_ids": [space.ids[0], space.ids[15]]}) == {"a_000.jpg", "b_005.jpg"}

    view = await call(api, "POST", f"{space.path}/views", 201, json={
        "name": "like a_000", "filter": {**nearest_three, "statuses": ["NEW"]}, "sort": "name"})
    page = await call(api, "GET", f"{space.path}/views/{view['id']}/samples")
    assert names(page["items"]) == ["a_001.jpg", "a_002.jpg", "a_003.jpg"]
    ranking = await call(api, "POST", f"{space.path}/views", 201, json={
        "name": "a ranking", "filter": {"sample_ids": space.ids[17:]}, "sort": "name"})
    page = await call(api, "GET", f"{space.path}/views/{ranking['id']}/samples")
    assert names(page["items"]) == ["b_007.jpg", "b_008.jpg", "b_009.jpg"]


@pytest.mark.parametrize(("condition", "path"), [
    ({"space": SPACE, "top_k": 3}, "$.similar"),  # neither sample_id nor vector
    ({"space": SPACE, "sample_id": str(uuid.uuid4()), "vector": [1.0] * DIMS, "top_k": 3}, "$.similar"),
    ({"space": SPACE, "vector": [1.0] * DIMS}, "$.similar"),  # how similar?
    ({"space": SPACE, "vector": [0.0] * DIMS, "top_k": 3}, "$.similar.vector"),
    ({"space": SPACE, "vector": [1.0] * (DIMS + 1), "top_k": 3}, "$.similar.vector"),  # not the space's dimension
    ({"space": "no space", "vector": [1.0] * DIMS, "top_k": 3}, "$.similar.space"),  # not a space's name
    ({"space": SPACE, "vector": [1.0] * DIMS, "top_k": 0}, "$.similar.top_k"),
])
async def test_a_similar_condition_that_cannot_run_is_refused_where_it_is_wrong(
        api: aiohttp.ClientSession, near_copies: tuple[Space, list[float]], condition: dict, path: str) -> None:
    space, _ = near_copies
    refused = await call(api, "POST", f"{space.path}/samples/search", 422, json={"similar": condition})
    assert refused["path"] == path


# -- duplicates ---------------------------------------------------------------------------------------------

async def test_near_duplicates_are_grouped_by_what_links_them(api: aiohttp.ClientSession, bus: Bus) -> None:
    rng = random.Random(11)
    first, second = Arc(rng), Arc(rng)
    # a_000–a_002 are near-copies (a_002 only near a_001), a_003 and b_000 too; the rest differ.
    vectors = [first.at(0), first.at(0.1), first.at(0.2), second.at(0)] + [unit(rng) for _ in range(6)]
    vectors += [second.at(0.05)] + [unit(rng) for _ in range(9)]
    space = await make_space(api, bus, vectors, per_dataset=10)
    body = {"space": SPACE, "max_distance": 0.012}
    found = await call(api, "POST", f"{space.path}/samples/duplicates", json=body)
    assert found["examined"] == 20 and found["total"] == 2
    assert [sorted(group["sample_ids"]) for group in found["groups"]] == [sorted(space.ids[:3]),
                                                                         sorted([space.ids[3], space.ids[10]])]
    assert found["groups"][0]["max_distance"] == pytest.approx(1 - math.cos(0.1), abs=1e-5)  # not 1 - cos(0.2)
    # Only the second dataset's samples are looked at, and their duplicates found in either dataset.
    found = await call(api, "POST", f"{space.path}/samples/duplicates",
                       json={**body, "filter": {"dataset_ids": [space.datasets[1]]}, "limit": 1})
    assert (found["examined"], found["total"]) == (10, 1)
    assert sorted(found["groups"][0]["sample_ids"]) == sorted([space.ids[3], space.ids[10]])


# -- what is stored -----------------------------------------------------------------------------------------

async def test_spaces_are_listed_and_deleted_by_managers(
        api: aiohttp.ClientSession, bus: Bus, user_client: Any) -> None:
    rng = random.Random(3)
    space = await make_space(api, bus, [unit(rng) for _ in range(4)], per_dataset=2)
    other = await put(bus, space.project_id, {ident: [1.0, 2.0] for ident in space.ids[:3]}, space="tagger:1")
    assert other.stored == 3
    listed = (await call(api, "GET", f"{space.path}/embeddings"))["items"]
    assert [(s["space"], s["dims"], s["count"]) for s in listed] == [(SPACE, DIMS, 4), ("tagger:1", 2, 3)]
    assert all(s["updated_at"] for s in listed)

    _, viewer = await user_client(space.project_id, "viewer")
    assert len((await call(viewer, "GET", f"{space.path}/embeddings"))["items"]) == 2
    await call(viewer, "DELETE", f"{space.path}/embeddings/tagger:1", 403)
    _, manager = await user_client(space.project_id, "manager")
    await call(manager, "DELETE", f"{space.path}/embeddings/tagger:1", 204)
    await call(manager, "DELETE", f"{space.path}/embeddings/tagger:1", 404)
    await call(manager, "DELETE", f"{space.path}/embeddings/not%20a%20space", 404)  # no space has that name
    assert [s["space"] for s in (await call(api, "GET", f"{space.path}/embeddings"))["items"]] == [SPACE]
    refused = await call(api, "POST", f"{space.path}/samples/similar", 404,
                         json={"space": "tagger:1", "vector": [1.0, 2.0]})
    assert refused["path"] == "$.space"


async def test_storing_again_replaces_and_a_deleted_sample_takes_its_vector_along(
        api: aiohttp.ClientSession, bus: Bus) -> None:
    rng = random.Random(5)
    space = await make_space(api, bus, [unit(rng) for _ in range(6)], per_dataset=3)
    query = unit(rng)
    again = await put(bus, space.project_id, {space.ids[4]: query})
    assert (again.stored, again.missing) == (1, [])
    nearest = (await similar(api, space, {"vector": query, "limit": 1}))["items"][0]
    assert (nearest["sample"]["id"], nearest["distance"]) == (space.ids[4], pytest.approx(0, abs=1e-6))

    await call(api, "DELETE", f"{space.path}/samples/{space.ids[4]}", 204)
    found = (await similar(api, space, {"vector": query, "limit": 10}))["items"]
    assert space.ids[4] not in [item["sample"]["id"] for item in found] and len(found) == 5
    assert (await call(api, "GET", f"{space.path}/embeddings"))["items"][0]["count"] == 5
    refused = await similar(api, space, {"sample_id": space.ids[4]}, 404)
    assert refused["path"] == "$.sample_id"
    # An embedding job that meets a sample deleted meanwhile is told, not failed.
    late = await put(bus, space.project_id, {space.ids[4]: query, space.ids[5]: query})
    assert (late.stored, late.missing) == (1, [space.ids[4]])


async def test_another_projects_samples_are_never_found_or_stored(api: aiohttp.ClientSession, bus: Bus) -> None:
    rng = random.Random(9)
    query = unit(rng)
    mine = await make_space(api, bus, [unit(rng) for _ in range(4)], per_dataset=2)
    theirs = await make_space(api, bus, [query] * 4, per_dataset=2)  # nearer to the query than any of mine
    found = (await similar(api, mine, {"vector": query, "limit": 100}))["items"]
    assert sorted(item["sample"]["id"] for item in found) == sorted(mine.ids)
    assert (await call(api, "POST", f"{mine.path}/samples/duplicates", json={"space": SPACE}))["examined"] == 4
    refused = await similar(api, mine, {"sample_id": theirs.ids[0]}, 404)
    assert refused["path"] == "$.sample_id"
    crossed = await put(bus, mine.project_id, {theirs.ids[0]: query, mine.ids[0]: query})
    assert (crossed.stored, crossed.missing) == (1, [theirs.ids[0]])
    assert (await similar(api, theirs, {"vector": query, "limit": 1}))["items"][0]["distance"] == pytest.approx(0)


# -- refusals ---------------------------------------------------------------------------------------------

def request(project_id: str, *vectors: list[float], ids: list[str] | None = None) -> PutEmbeddings:
    ids = ids or [str(uuid.uuid4()) for _ in vectors]
    return PutEmbeddings(project_id=project_id, space=SPACE,
                         items=[EmbeddingItem(sample_id=i, vector=v) for i, v in zip(ids, vectors, strict=True)])


async def test_vectors_that_cannot_be_stored_are_refused_at_their_path(
        api: aiohttp.ClientSession, bus: Bus, near_copies: tuple[Space, list[float]]) -> None:
    space, _ = near_copies
    project = space.project_id
    good = [1.0] * DIMS
    cases = [
        (request(project, good, [1.0] * (DIMS - 1)), "$.items[1].vector"),  # lengths differ within the call
        (request(project, [1.0, 2.0]), "$.items[0].vector"),  # not the space's dimension
        (request(project, good, [1.0, math.nan, *good[2:]]), "$.items[1].vector[1]"),  # NaN travels as null
        (request(project, good, [1e300] * DIMS), "$.items[1].vector"),  # beyond single precision
        (request(project, [0.0] * DIMS), "$.items[0].vector"),
        (request(project, *[good] * 1001), "$.items"),
        (request(project, good, good, ids=[space.ids[0], space.ids[0].upper()]), "$.items[1].sample_id"),
        (request(project, good, ids=["not-a-uuid"]), "$.items[0].sample_id"),
        (request(project, [1.0] * 2001), "$.items[0].vector"),
        (PutEmbeddings(project_id=project, space="-leading-dash", items=request(project, good).items), "$.space"),
    ]
    for sent, path in cases:
        error = await refused(bus, sent)
        assert (error.code, error.details.get("path")) == ("invalid", path), (path, error)
    assert (await refused(bus, request(str(uuid.uuid4()), good))).code == "not_found"  # no such project
    assert (await call(api, "GET", f"{space.path}/embeddings"))["items"][0]["count"] == 20  # nothing was stored


@pytest.mark.parametrize(("body", "status", "path"), [
    ({"vector": [1.0] * (DIMS + 1)}, 422, "$.vector"),
    ({"vector": [0.0] * DIMS}, 422, "$.vector"),
    ({}, 422, "$"),
    ({"space": "unknown:1", "vector": [1.0] * DIMS}, 404, "$.space"),
    ({"sample_id": str(uuid.uuid4())}, 404, "$.sample_id"),
    ({"vector": [1.0] * DIMS, "filter": {"dataset_ids": [str(uuid.uuid4())]}}, 404, "$.filter.dataset_ids[0]"),
    ({"vector": [1.0] * DIMS, "limit": 1001}, 422, "$.limit"),
])
async def test_a_similar_query_that_cannot_run_says_why(
        api: aiohttp.ClientSession, near_copies: tuple[Space, list[float]], body: dict, status: int, path: str
) -> None:
    space, _ = near_copies
    assert (await similar(api, space, body, status))["path"] == path


async def test_duplicates_of_an_unknown_space_or_of_too_many_samples_at_once_are_refused(
        api: aiohttp.ClientSession, bus: Bus) -> None:
    rng = random.Random(13)
    project_id = (await create(api, f"many vectors {uuid.uuid4().hex[:8]}"))["id"]
    path = f"/v1/projects/{project_id}/samples/duplicates"
    refused = await call(api, "POST", path, 404, json={"space": "unknown:1"})
    assert refused["path"] == "$.space"
    dataset_id = (await dataset(api, project_id))["id"]
    ids = await add_samples(api, project_id, dataset_id, 10_000, "x")
    ids += await add_samples(api, project_id, dataset_id, MAX_DUPLICATE_SAMPLES + 1 - len(ids), "y")
    for start in range(0, len(ids), MAX_PUT_ITEMS):
        await put(bus, project_id, {ident: unit(rng) for ident in ids[start:start + MAX_PUT_ITEMS]})
    refused = await call(api, "POST", path, 422, json={"space": SPACE})
    assert refused["path"] == "$.filter" and "10,000" in refused["detail"]
    narrowed = await call(api, "POST", path, json={"space": SPACE, "filter": {"sample_ids": ids[:3]}})
    assert narrowed["examined"] == 3


# -- the index ------------------------------------------------------------------------------------------------

async def test_nearest_queries_are_written_so_that_the_dimensions_hnsw_index_answers_them(
        near_copies: tuple[Space, list[float]]) -> None:
    """The plan at scale is in the decisions (EXPLAIN at 100,000 vectors); here, that the query's distance
    matches the index's expression and predicate, which the planner must use when it may not sort."""
    space, query = near_copies
    where = search.Where(uuid.UUID(space.project_id))
    sql = search.nearest_sql(where, search.Near(SPACE, DIMS, search.vector_text(query), None), 5)
    db = await asyncpg.connect(helpers.database_url, server_settings={"search_path": "catalog, public"})
    try:
        async with db.transaction():
            await db.execute("SET LOCAL enable_sort = off; SET LOCAL enable_seqscan = off")
            plan = "\n".join(row[0] for row in await db.fetch(f"EXPLAIN {sql}", *where.params))
    finally:
        await db.close()
    assert f"Index Scan using sample_embeddings_hnsw_{DIMS}" in plan, plan
