"""Sample search, the label summary read model and saved views, through REST against the real stack."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from nats.js.api import DeliverPolicy

from proto import subjects
from proto.annotation import LabelChanged, LabelSummary
from proto.common import EventEnvelope
from proto.search import SearchQuery
from services.catalog.search import PLANNER_SETTINGS, ProjectShares, compile_filter, equal_to_any, page_sql
from shared.bus import Bus, encoder
from shared.db import connect_pool
from tests import helpers
from tests.helpers import call, create, dataset, eventually, names

# name, dataset (index), status, metadata, tags, priority, external id, assigned to the labeler.
# Samples are created one call at a time and then changed one at a time in this order, so their
# created_at and updated_at both follow it.
CORPUS: list[tuple[str, int, str, dict[str, Any], list[str], float, str | None, bool]] = [
    ("street_001.jpg", 0, "NEW", {"weather": "rain", "speed": 12.5, "camera": {"model": "X1"}, "night": False,
                                  "taken": "2024-03-01T10:00:00Z"}, ["urban"], 5, "ext-0", True),
    ("street_002.jpg", 0, "DONE", {"weather": "snow", "speed": 40, "camera": {"model": "X2"}, "night": True},
     ["urban", "winter"], 9, "ext-1", False),
    ("Highway_003.png", 1, "NEW", {"weather": "sun", "speed": 120, "camera": {"model": "X1"}}, ["highway"], 1,
     None, False),
    ("highway_004.png", 1, "TO_REVIEW", {"weather": "rain", "speed": 95}, ["misc"], 7, "ext-3", True),
    ("park_005.jpg", 0, "SKIPPED", {"weather": "fog", "glare": "2"}, ["park"], 3, None, False),
    ("park_006.jpg", 1, "DONE", {"glare": 2, "taken": "2023-12-31T23:00:00Z"}, ["park", "winter"], 0, None, False),
    ("odd_100%_007.jpg", 0, "NEW", {"weather": ["rain", "fog"], "speed": "fast"}, ["misc"], 2, None, False),
]
NAMES = [row[0] for row in CORPUS]


class Corpus:
    def __init__(self, project_id: str, dataset_ids: list[str], ids: dict[str, str], labeler: str = "") -> None:
        self.project_id = project_id
        self.dataset_ids = dataset_ids
        self.ids = ids  # sample name → id
        self.labeler = labeler
        self.created: list[str] = []  # created_at of NAMES[i]
        self.updated: list[str] = []

    def resolve(self, body: Any) -> Any:
        """Fill in what exists only once the corpus does: ("created", i) is NAMES[i]'s created_at,
        "<labeler>" the labeler's user id."""
        if isinstance(body, dict):
            return {key: self.resolve(value) for key, value in body.items()}
        if isinstance(body, tuple):
            field, index = body
            return getattr(self, field)[index]
        return self.labeler if body == "<labeler>" else body


async def create_project(api: aiohttp.ClientSession, name: str) -> str:
    return (await create(api, name))["id"]


async def create_dataset(api: aiohttp.ClientSession, project_id: str, name: str) -> str:
    return (await dataset(api, project_id, name))["id"]


async def add_samples(api: aiohttp.ClientSession, project_id: str, dataset_id: str,
                      rows: list[dict[str, Any]]) -> list[str]:
    """Samples through the bulk create endpoint; their ids in the order of `rows`."""
    items = [{"media_url": f"https://images.example.com/{uuid.uuid4().hex}.jpg", "width": 640, "height": 480, **row}
             for row in rows]
    async with api.post(f"/v1/projects/{project_id}/datasets/{dataset_id}/samples", json={"items": items}) as response:
        assert response.status == 200, await response.text()
        return [item["id"] for item in (await response.json())["items"]]


async def change_sample(api: aiohttp.ClientSession, project_id: str, sample_id: str, changes: dict[str, Any]) -> None:
    async with api.patch(f"/v1/projects/{project_id}/samples/{sample_id}", json=changes) as response:
        assert response.status == 200, await response.text()


@pytest.fixture(scope="module")
async def corpus(api: aiohttp.ClientSession) -> Corpus:
    project_id = await create_project(api, f"search {uuid.uuid4().hex[:8]}")
    datasets = [await create_dataset(api, project_id, name) for name in ("train", "val")]
    async with api.post("/v1/users", json={"name": "Lab Eler", "email": f"{uuid.uuid4().hex[:8]}@example.com"}) as r:
        assert r.status == 201, await r.text()
        labeler = (await r.json())["id"]
    ids: dict[str, str] = {}
    for name, split, _, metadata, _, priority, external_id, _ in CORPUS:
        row = {"name": name, "metadata": metadata, "priority": priority,
               **({"external_id": external_id} if external_id else {})}
        (ids[name],) = await add_samples(api, project_id, datasets[split], [row])
    for name, _, status, _, tags, _, _, assigned in CORPUS:
        await change_sample(api, project_id, ids[name], {"tags": tags, **({"status": status} if status != "NEW" else {}),
                                                          **({"labeler_id": labeler} if assigned else {})})
    corpus = Corpus(project_id, datasets, ids, labeler)
    page = await search(api, project_id, {"sort": "created_at"})
    corpus.created = [item["created_at"] for item in page["items"]]
    corpus.updated = [item["updated_at"] for item in page["items"]]
    assert [item["name"] for item in page["items"]] == NAMES
    return corpus


async def search(api: aiohttp.ClientSession, project_id: str, body: dict[str, Any], status: int = 200) -> dict:
    return await call(api, "POST", f"/v1/projects/{project_id}/samples/search", status, json=body)


async def by_priority(api: aiohttp.ClientSession, project_id: str, body: dict[str, Any]) -> set[str]:
    return set(await names(api, project_id, body))


# -- field filters --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "expected"), [
    ({}, set(NAMES)),
    ({"statuses": ["DONE", "SKIPPED"]}, {"street_002.jpg", "park_005.jpg", "park_006.jpg"}),
    ({"name_contains": "HIGHWAY"}, {"Highway_003.png", "highway_004.png"}),
    ({"name_contains": "100%"}, {"odd_100%_007.jpg"}),  # % is a literal, not a wildcard
    ({"name_contains": "%_0"}, {"odd_100%_007.jpg"}),  # as a LIKE pattern it would match every name
    ({"external_ids": ["ext-1", "ext-3", "nope"]}, {"street_002.jpg", "highway_004.png"}),
    ({"created_since": ("created", 2), "created_before": ("created", 4)}, {"Highway_003.png", "highway_004.png"}),
    ({"updated_since": ("updated", 5)}, {"park_006.jpg", "odd_100%_007.jpg"}),
    ({"updated_before": ("updated", 1)}, {"street_001.jpg"}),
    ({"labeler": "<labeler>"}, {"street_001.jpg", "highway_004.png"}),
    ({"labeler": "unassigned", "statuses": ["NEW"]}, {"Highway_003.png", "odd_100%_007.jpg"}),
    ({"reviewer": "unassigned", "tags_all": ["park"]}, {"park_005.jpg", "park_006.jpg"}),
    ({"tags_any": ["winter", "highway"]}, {"street_002.jpg", "Highway_003.png", "park_006.jpg"}),
    ({"tags_all": ["urban", "winter"]}, {"street_002.jpg"}),
    ({"tags_none": ["urban", "park"]}, {"Highway_003.png", "highway_004.png", "odd_100%_007.jpg"}),
])
async def test_each_field_filter(api: aiohttp.ClientSession, corpus: Corpus, body: dict, expected: set[str]) -> None:
    assert await by_priority(api, corpus.project_id, corpus.resolve(body)) == expected


async def test_dataset_filter_and_datasets_of_other_projects(api: aiohttp.ClientSession, corpus: Corpus) -> None:
    got = await by_priority(api, corpus.project_id, {"dataset_ids": [corpus.dataset_ids[1]]})
    assert got == {"Highway_003.png", "highway_004.png", "park_006.jpg"}
    other_project = await create_project(api, f"other {uuid.uuid4().hex[:8]}")
    foreign = await create_dataset(api, other_project, "train")
    body = await search(api, corpus.project_id, {"dataset_ids": [corpus.dataset_ids[0], foreign]}, 404)
    assert body["path"] == "$.dataset_ids[1]"
    assert (await search(api, other_project, {}))["items"] == []


@pytest.mark.parametrize(("metadata", "expected"), [
    ({"weather": "rain"}, {"street_001.jpg", "highway_004.png", "odd_100%_007.jpg"}),  # an array holding it too
    ({"weather": ["snow", "sun"]}, {"street_002.jpg", "Highway_003.png"}),  # OR within a key
    ({"weather": ["rain", "snow"], "speed": {"gte": 40}}, {"street_002.jpg", "highway_004.png"}),  # AND across
    ({"speed": {"gt": 12.5, "lte": 95}}, {"street_002.jpg", "highway_004.png"}),
    ({"speed": [{"lt": 20}, {"gt": 100}]}, {"street_001.jpg", "Highway_003.png"}),
    ({"speed": {"gte": 0}}, {"street_001.jpg", "street_002.jpg", "Highway_003.png", "highway_004.png"}),  # not "fast"
    ({"speed": {"eq": "fast"}}, {"odd_100%_007.jpg"}),
    ({"camera.model": "X1"}, {"street_001.jpg", "Highway_003.png"}),
    ({"camera.model": {"in": ["X2"]}, "night": True}, {"street_002.jpg"}),
    ({"night": False}, {"street_001.jpg"}),
    ({"camera": {"exists": False}, "weather": {"exists": True}}, {"highway_004.png", "park_005.jpg",
                                                                  "odd_100%_007.jpg"}),
    ({"taken": {"gte": "2024-01-01T00:00:00Z"}}, {"street_001.jpg"}),  # ISO strings compare as strings
    ({"taken": {"lt": "2024"}}, {"park_006.jpg"}),
    # Sieve's query-by-metadata, `{"glare": [2]}`, where values were stored as strings by some clients.
    ({"glare": {"in": [2, "2"]}}, {"park_005.jpg", "park_006.jpg"}),
    ({"glare": [2]}, {"park_006.jpg"}),
])
async def test_metadata_filters(api: aiohttp.ClientSession, corpus: Corpus, metadata: dict,
                                expected: set[str]) -> None:
    assert await by_priority(api, corpus.project_id, {"metadata": metadata}) == expected


@pytest.mark.parametrize(("sort", "expected"), [
    ("-priority", ["street_002.jpg", "highway_004.png", "street_001.jpg", "park_005.jpg", "odd_100%_007.jpg",
                   "Highway_003.png", "park_006.jpg"]),
    ("priority", ["park_006.jpg", "Highway_003.png", "odd_100%_007.jpg", "park_005.jpg", "street_001.jpg",
                  "highway_004.png", "street_002.jpg"]),
    ("created_at", NAMES),
    ("-updated_at", NAMES[::-1]),
    ("name", sorted(NAMES)),
    ("-name", sorted(NAMES, reverse=True)),
])
async def test_sort_orders(api: aiohttp.ClientSession, corpus: Corpus, sort: str, expected: list[str]) -> None:
    assert await names(api, corpus.project_id, {"sort": sort}) == expected


async def test_list_samples_takes_the_simple_filters_as_query_parameters(api: aiohttp.ClientSession,
                                                                         corpus: Corpus) -> None:
    url = f"/v1/projects/{corpus.project_id}/samples"
    params = {"dataset_id": corpus.dataset_ids[0], "tag": "urban", "sort": "name", "total": "exact"}
    async with api.get(url, params=params) as response:
        page = await response.json()
    assert [item["name"] for item in page["items"]] == ["street_001.jpg", "street_002.jpg"]
    assert (page["total"], page["total_is_exact"]) == (2, True)
    first = page["items"][0]
    assert first["metadata"]["camera"] == {"model": "X1"} and first["labeler_id"] == corpus.labeler
    async with api.get(url, params={"status": "DONE", "name_contains": "park", "external_id": "nope"}) as response:
        assert (await response.json())["items"] == []
    async with api.get(url, params={"status": "FINISHED"}) as response:
        assert response.status == 422 and (await response.json())["path"] == "query.status"


# -- pages ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sort", ["-priority", "name", "created_at", "-updated_at"])
async def test_cursor_pages_visit_every_sample_once_while_samples_are_added(
        api: aiohttp.ClientSession, sort: str) -> None:
    project_id = await create_project(api, f"pages {uuid.uuid4().hex[:8]}")
    dataset = await create_dataset(api, project_id, "all")
    # Equal priorities in pairs, so ties are broken by id across page boundaries.
    original = set(await add_samples(api, project_id, dataset, [
        {"name": f"s{i:02d}", "priority": i // 2} for i in range(23)]))
    seen: list[str] = []
    cursor = None
    added = 0
    while True:
        page = await search(api, project_id, {"sort": sort, "limit": 4, **({"cursor": cursor} if cursor else {})})
        assert len(page["items"]) <= 4
        seen += [item["id"] for item in page["items"]]
        await add_samples(api, project_id, dataset, [{"name": f"new{added}", "priority": added % 12}])
        added += 1
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert original <= set(seen) and len(seen) == len(set(seen))


async def test_offset_pages_with_totals(api: aiohttp.ClientSession, corpus: Corpus) -> None:
    pid = corpus.project_id
    first = await search(api, pid, {"sort": "name", "limit": 3, "total": "exact"})
    second = await search(api, pid, {"sort": "name", "limit": 3, "offset": 3, "total": "capped"})
    third = await search(api, pid, {"sort": "name", "limit": 3, "offset": 6, "total": "exact"})
    assert [i["name"] for p in (first, second, third) for i in p["items"]] == sorted(NAMES)
    for page in (first, second, third):
        assert (page["total"], page["total_is_exact"]) == (7, True)
    assert (await search(api, pid, {"limit": 1}))["total"] is None
    filtered = await search(api, pid, {"metadata": {"weather": "rain"}, "limit": 1, "total": "capped"})
    assert (filtered["total"], filtered["total_is_exact"], len(filtered["items"])) == (3, True, 1)
    body = await search(api, pid, {"offset": 3, "cursor": first["next_cursor"]}, 422)
    assert body["path"] == "$.offset"
    body = await search(api, pid, {"sort": "priority", "cursor": first["next_cursor"]}, 422)
    assert body["path"] == "$.cursor" and "sorted by name" in body["detail"]


async def test_capped_total_is_a_lower_bound_past_the_cap(api: aiohttp.ClientSession) -> None:
    project_id = await create_project(api, f"cap {uuid.uuid4().hex[:8]}")
    dataset = await create_dataset(api, project_id, "many")
    for first in (0, 5_025):  # a bulk create takes up to 10,000
        await add_samples(api, project_id, dataset, [{"name": f"m{i}"} for i in range(first, first + 5_025)])
    capped = await search(api, project_id, {"limit": 1, "total": "capped"})
    assert (capped["total"], capped["total_is_exact"]) == (10_000, False)
    exact = await search(api, project_id, {"limit": 1, "total": "exact"})
    assert (exact["total"], exact["total_is_exact"]) == (10_050, True)
    deep = await search(api, project_id, {"limit": 1, "offset": 5_000, "total": "capped"})
    assert (deep["total"], deep["total_is_exact"]) == (10_050, True)


async def test_a_page_holds_each_sample_as_reading_the_sample_gives_it(api: aiohttp.ClientSession) -> None:
    """A page's samples are each sample as reading it gives it: times with and without a fraction, whole and
    fractional priorities, nested metadata, tags and nulls (the same whichever way a page is written)."""
    project_id = await create_project(api, "page items")
    dataset_id = await create_dataset(api, project_id, "d")
    rows = [{"name": "a.jpg", "priority": 1.0, "metadata": {"camera": {"model": "X1", "iso": 100.0}, "tags": ["é"]},
             "external_id": "e-1"},
            {"name": "b.jpg", "priority": 0.1 + 0.2, "metadata": {}},
            {"name": "c.jpg", "priority": 1e-5, "metadata": {"quote": 'say "hi"\n', "n": -3}}]
    ids = await add_samples(api, project_id, dataset_id, rows)
    db = await asyncpg.connect(helpers.database_url, server_settings={"search_path": "catalog"})
    try:
        await db.execute("UPDATE samples SET created_at = date_trunc('second', created_at), "
                         "updated_at = '2024-01-01 00:00:00.0001+00', tags = '{night,rain}' WHERE id = $1",
                         uuid.UUID(ids[0]))
    finally:
        await db.close()
    page = await search(api, project_id, {"sort": "name", "limit": 10})
    expected = [await call(api, "GET", f"/v1/projects/{project_id}/samples/{sample_id}") for sample_id in ids]
    assert page["items"] == expected
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", expected[0]["created_at"])  # whole seconds: no fraction
    assert expected[0]["updated_at"] == "2024-01-01T00:00:00.000100Z"
    assert re.fullmatch(r".*\.\d{6}Z", expected[1]["created_at"])


async def test_pages_of_set_filters_are_walked_first_and_searched_whole_when_the_walk_falls_short(
        api: aiohttp.ClientSession, bus: Bus) -> None:
    """A filter of sample sets (metadata term, class present) is looked for among the first candidates in the
    page's order (services/catalog/search.py, WALK_ROWS_PER_ROW) and searched whole when they hold too few
    matches: every page, walked or not, is the same as the whole search's, with other projects beside."""
    project_id = await create_project(api, f"walk {uuid.uuid4().hex[:8]}")
    dataset = await create_dataset(api, project_id, "all")
    # 150 samples in descending priority order s000…s149; every other one rainy with a car ("dense"), and only
    # the last three also foggy at night ("sparse"), far past the first walk's 20 × (limit + 1) = 60 candidates.
    rows = [{"name": f"s{i:03d}", "priority": 1000 - i,
             "metadata": {"weather": "rain" if i % 2 == 0 else "sun", "night": i >= 144}} for i in range(150)]
    ids = await add_samples(api, project_id, dataset, rows)
    for i in range(0, 150, 2):
        await publish_label(bus, project_id, ids[i], 1, counts={"car": 1 + i % 3})
    car = {"classes": [{"class_id": "car", "min": 1}]}
    dense = {"metadata": {"weather": "rain"}, "labels": car}
    sparse = {"metadata": {"weather": "rain", "night": True}, "labels": car}
    expected = {"dense": [f"s{i:03d}" for i in range(0, 150, 2)], "sparse": ["s144", "s146", "s148"]}
    await caught_up(api, project_id, dense, set(expected["dense"]))

    where = compile_filter(uuid.UUID(project_id), msgspec.convert(dense, SearchQuery))
    db = await connect_pool(helpers.database_url, "catalog", 1, PLANNER_SETTINGS)  # as search's own
    try:
        sql, params = page_sql(where, "-priority", None, 2, 0, walk=True)
        assert [row["name"] for row in await db.fetch(sql, *params)] == expected["dense"][:3]  # the walk answered
        where = compile_filter(uuid.UUID(project_id), msgspec.convert(sparse, SearchQuery))
        sql, params = page_sql(where, "-priority", None, 2, 0, walk=True)
        assert await db.fetch(sql, *params) == []  # the walk falls short
    finally:
        await db.close()

    for name, body in (("dense", dense), ("sparse", sparse)):
        seen: list[str] = []
        cursor = None
        while True:
            page = await search(api, project_id, {**body, "limit": 2, **({"cursor": cursor} if cursor else {})})
            seen += [item["name"] for item in page["items"]]
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        assert seen == expected[name]
        assert await count(api, project_id, body) == {"count": len(expected[name])}


async def test_project_shares_come_from_the_statistics_of_samples_read_once_a_minute() -> None:
    schema = f"shares_{uuid.uuid4().hex[:8]}"
    big, small = uuid.uuid4(), uuid.uuid4()
    admin = await asyncpg.connect(helpers.database_url)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.samples (project_id uuid NOT NULL) "
                            "WITH (autovacuum_enabled = false)")
        await admin.execute(f"INSERT INTO {schema}.samples SELECT CASE WHEN i % 10 = 0 THEN $1::uuid ELSE $2::uuid "
                            "END FROM generate_series(1, 1000) i", small, big)
        pool = await connect_pool(helpers.database_url, schema, 1)
        try:
            shares = ProjectShares()
            assert await shares.of(pool, big) == 0.0  # no statistics yet
            await admin.execute(f"ANALYZE {schema}.samples")
            assert await shares.of(pool, big) == 0.0  # not read again within the minute
            shares.read_at -= ProjectShares.TTL_S
            assert await shares.of(pool, big) == pytest.approx(0.9)
            assert await shares.of(pool, small) == pytest.approx(0.1)
            assert await shares.of(pool, uuid.uuid4()) == 0.0
        finally:
            await pool.close()
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


# -- label summary --------------------------------------------------------------------------------------

async def publish_label(bus: Bus, project_id: str, sample_id: str, revision: int, status: str = "LABELED",
                        counts: dict[str, int] | None = None, tags: list[str] | None = None,
                        labelset: str = "ground-truth", msg_id: str | None = None) -> str:
    event = LabelChanged(project_id=project_id, labelset=labelset, labels=[LabelSummary(
        sample_id=sample_id, revision=revision, status=status, class_counts=counts or {}, tag_class_ids=tags or [])])
    envelope = EventEnvelope(id=msg_id or str(uuid.uuid4()),
                             type=subjects.LABEL_CHANGED.subject.removeprefix(subjects.EVENT_PREFIX),
                             time=datetime.now(UTC), project=project_id, data=event)
    await bus.js.publish(subjects.LABEL_CHANGED.subject, encoder.encode(envelope),
                         headers={subjects.HEADER_MSG_ID: envelope.id})
    return envelope.id


async def caught_up(api: aiohttp.ClientSession, project_id: str, body: dict, expected: set[str]) -> None:
    """Until the read model has caught up with the events published so far: the search finds `expected`."""
    async def found() -> bool:
        assert await by_priority(api, project_id, body) == expected
        return True
    await eventually(found, interval=0.1)


@pytest.fixture(scope="module")
async def labelled(api: aiohttp.ClientSession, bus: Bus) -> Corpus:
    """Its own project: street_001 2 cars 1 person, street_002 1 car (reviewed, tag night),
    Highway_003 3 cars (another labelset too), highway_004 labelled empty; the rest never labelled."""
    project_id = await create_project(api, f"labels {uuid.uuid4().hex[:8]}")
    dataset = await create_dataset(api, project_id, "train")
    rows = [{"name": name, "priority": priority} for name, _, _, _, _, priority, _, _ in CORPUS]
    ids = dict(zip(NAMES, await add_samples(api, project_id, dataset, rows), strict=True))
    await publish_label(bus, project_id, ids["street_001.jpg"], 1, counts={"car": 2, "person": 1}, tags=["day"])
    await publish_label(bus, project_id, ids["street_002.jpg"], 4, "REVIEWED", {"car": 1}, ["night", "rain"])
    await publish_label(bus, project_id, ids["Highway_003.png"], 2, counts={"car": 3, "truck": 0})
    await publish_label(bus, project_id, ids["Highway_003.png"], 1, "PRELABELED", {"person": 5}, labelset="model")
    await publish_label(bus, project_id, ids["highway_004.png"], 1, "LABELED")
    await caught_up(api, project_id, {"labels": {"status": ["LABELED", "REVIEWED"]}},
                    {"street_001.jpg", "street_002.jpg", "Highway_003.png", "highway_004.png"})
    await caught_up(api, project_id, {"labels": {"labelset": "model", "status": ["PRELABELED"]}},
                    {"Highway_003.png"})
    return Corpus(project_id, [dataset], ids)


@pytest.mark.parametrize(("labels", "expected"), [
    ({"classes": [{"class_id": "car", "min": 2}]}, {"street_001.jpg", "Highway_003.png"}),
    ({"classes": [{"class_id": "car", "min": 1, "max": 2}]}, {"street_001.jpg", "street_002.jpg"}),
    ({"classes": [{"class_id": "car", "min": 1}, {"class_id": "person", "max": 0}]},
     {"street_002.jpg", "Highway_003.png"}),
    ({"classes": [{"class_id": "truck", "min": 1}]}, set()),  # a count of 0 is no object
    ({"classes": [{"class_id": "car", "max": 0}]}, {"highway_004.png", "park_005.jpg", "park_006.jpg",
                                                     "odd_100%_007.jpg"}),
    ({"classes": [{"class_id": "car", "max": 1}], "status": ["LABELED"]}, {"highway_004.png"}),
    ({"status": ["UNLABELED"]}, {"park_005.jpg", "park_006.jpg", "odd_100%_007.jpg"}),
    ({"status": ["REVIEWED", "UNLABELED"]}, {"street_002.jpg", "park_005.jpg", "park_006.jpg", "odd_100%_007.jpg"}),
    ({"tags_any": ["night", "day"]}, {"street_001.jpg", "street_002.jpg"}),
    ({"tags_all": ["night", "rain"]}, {"street_002.jpg"}),
    ({"tags_none": ["night"], "status": ["LABELED"]}, {"street_001.jpg", "Highway_003.png", "highway_004.png"}),
    ({"labelset": "model", "classes": [{"class_id": "person", "min": 5}]}, {"Highway_003.png"}),
    ({"labelset": "model", "status": ["UNLABELED"]}, set(NAMES) - {"Highway_003.png"}),
])
async def test_label_filters(api: aiohttp.ClientSession, labelled: Corpus, labels: dict, expected: set[str]) -> None:
    assert await by_priority(api, labelled.project_id, {"labels": labels}) == expected


async def test_label_filters_combine_with_sample_filters(api: aiohttp.ClientSession, labelled: Corpus) -> None:
    body = {"name_contains": "street", "labels": {"classes": [{"class_id": "car", "min": 1}]}, "sort": "-priority"}
    assert await names(api, labelled.project_id, body) == ["street_002.jpg", "street_001.jpg"]


async def count(api: aiohttp.ClientSession, project_id: str, body: dict[str, Any], status: int = 200) -> dict:
    return await call(api, "POST", f"/v1/projects/{project_id}/samples/count", status, json=body)


@pytest.mark.parametrize("body", [
    {},
    {"name_contains": "street", "labels": {"classes": [{"class_id": "car", "min": 1}]}},
    {"labels": {"labelset": "model", "status": ["UNLABELED"]}},
    {"tags_none": ["urban", "park"], "labels": {"classes": [{"class_id": "person", "max": 0}]}},
])
async def test_count_is_the_search_total_without_the_rows(api: aiohttp.ClientSession, labelled: Corpus,
                                                          body: dict) -> None:
    page = await search(api, labelled.project_id, {**body, "total": "exact", "limit": 1})
    assert await count(api, labelled.project_id, body) == {"count": page["total"]}


async def test_count_refuses_what_search_refuses(api: aiohttp.ClientSession, labelled: Corpus, corpus: Corpus) -> None:
    assert (await count(api, labelled.project_id, {"statuses": ["NOPE"]}, 422))["path"] == "$.statuses[0]"
    assert (await count(api, labelled.project_id, {"sort": "name"}, 422))["detail"]  # a count has no order
    foreign = await count(api, labelled.project_id, {"dataset_ids": [corpus.dataset_ids[0]]}, 404)
    assert foreign["path"] == "$.dataset_ids[0]"


async def test_older_or_repeated_label_events_change_nothing(api: aiohttp.ClientSession, bus: Bus) -> None:
    project_id = await create_project(api, f"revisions {uuid.uuid4().hex[:8]}")
    dataset = await create_dataset(api, project_id, "train")
    (sample,) = await add_samples(api, project_id, dataset, [{"name": "only.jpg"}])
    cars = {"labels": {"classes": [{"class_id": "car", "min": 3}]}}
    await publish_label(bus, project_id, sample, 5, counts={"car": 3})
    await caught_up(api, project_id, cars, {"only.jpg"})
    # An older revision arrives late, and the newest is delivered again under a new message id.
    await publish_label(bus, project_id, sample, 4, "REJECTED", counts={"dog": 1})
    await publish_label(bus, project_id, sample, 5, "REJECTED", counts={})
    # A marker: once revision 6 of another labelset is applied, the events before it were handled too.
    await publish_label(bus, project_id, sample, 6, "LABELED", labelset="marker")
    await caught_up(api, project_id, {"labels": {"labelset": "marker", "status": ["LABELED"]}}, {"only.jpg"})
    assert await by_priority(api, project_id, cars) == {"only.jpg"}
    assert await by_priority(api, project_id, {"labels": {"status": ["REJECTED"]}}) == set()
    # A newer revision replaces the counts; a deleted label is UNLABELED with none.
    await publish_label(bus, project_id, sample, 7, "UNLABELED")
    await caught_up(api, project_id, {"labels": {"status": ["UNLABELED"], "classes": [{"class_id": "car", "max": 0}]}},
                    {"only.jpg"})
    # An event about a sample of another project is ignored rather than retried forever.
    await publish_label(bus, str(uuid.uuid4()), sample, 9, "REVIEWED", counts={"car": 9})
    await publish_label(bus, project_id, "not-a-uuid", 1)
    await publish_label(bus, project_id, sample, 8, "LABELED", labelset="marker")
    await caught_up(api, project_id, {"labels": {"labelset": "marker", "status": ["LABELED"]}}, {"only.jpg"})
    assert await by_priority(api, project_id, {"labels": {"status": ["REVIEWED"]}}) == set()
    async with api.get("/v1/admin/services/catalog/dead-letters") as response:
        assert not [letter for letter in (await response.json())["items"]
                    if letter["subject"] == subjects.LABEL_CHANGED.subject]


# -- malformed filters ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "path"), [
    ({"metadata": {"weather": {"near": "rain"}}}, "$.metadata.weather"),
    ({"metadata": {"weather": {}}}, "$.metadata.weather"),
    ({"metadata": {"weather": []}}, "$.metadata.weather"),
    ({"metadata": {"weather": None}}, "$.metadata.weather"),
    ({"metadata": {"speed": [1, {"gt": True}]}}, "$.metadata.speed[1].gt"),
    ({"metadata": {"speed": {"gt": 1, "lt": "9"}}}, "$.metadata.speed"),
    ({"metadata": {"speed": {"in": []}}}, "$.metadata.speed.in"),
    ({"metadata": {"bad key": 1}}, "$.metadata.bad key"),
    ({"metadata": {"a..b": 1}}, "$.metadata.a..b"),
    ({"statuses": ["FINISHED"]}, "$.statuses[0]"),
    ({"labeler": "somebody"}, "$.labeler"),
    ({"created_since": "2024-01-01T00:00:00"}, "$.created_since"),
    ({"labels": {"classes": [{"class_id": "car"}]}}, "$.labels.classes[0]"),
    ({"labels": {"classes": [{"class_id": "car", "min": 1}, {"class_id": "car", "min": 3, "max": 2}]}},
     "$.labels.classes[1]"),
    ({"labels": {"status": ["DONE"]}}, "$.labels.status[0]"),
    ({"dataset_ids": ["not-an-id"]}, "$.dataset_ids[0]"),
    ({"sort": "size"}, "$.sort"),
    ({"limit": 0}, "$.limit"),
    ({"cursor": "garbage"}, "$.cursor"),
    ({"colour": "red"}, "$"),
])
async def test_malformed_filters_are_422_naming_the_field(api: aiohttp.ClientSession, corpus: Corpus, body: dict,
                                                          path: str) -> None:
    problem = await search(api, corpus.project_id, body, 422)
    assert problem["code"] == "invalid" and problem["path"] == path, problem


# -- saved views ----------------------------------------------------------------------------------------

async def test_filter_views_crud_and_run(api: aiohttp.ClientSession, corpus: Corpus, bus: Bus) -> None:
    views = f"/v1/projects/{corpus.project_id}/views"
    subscription = await bus.js.subscribe("loupe.evt.catalog.view.>", ordered_consumer=True,
                                          deliver_policy=DeliverPolicy.NEW)
    try:
        body = {"name": "Rainy", "filter": {"metadata": {"weather": "rain"}}, "sort": "name"}
        async with api.post(views, json=body) as response:
            assert response.status == 201, await response.text()
            view = await response.json()
        assert (view["kind"], view["filter"], view["item_count"], view["version"]) == (
            "filter", {"metadata": {"weather": "rain"}}, None, 1)
        async with api.post(views, json={**body, "name": "RAINY"}) as response:
            assert response.status == 409 and (await response.json())["path"] == "$.name"
        async with api.get(f"{views}/{view['id']}/samples", params={"total": "exact"}) as response:
            page = await response.json()
        assert [i["name"] for i in page["items"]] == ["highway_004.png", "odd_100%_007.jpg", "street_001.jpg"]
        assert page["total"] == 3
        async with api.get(f"{views}/{view['id']}/samples", params={"sort": "-priority", "limit": "1"}) as response:
            page = await response.json()
        assert [i["name"] for i in page["items"]] == ["highway_004.png"] and page["next_cursor"]

        async with api.patch(f"{views}/{view['id']}", json={"filter": {"metadata": {"weather": "snow"}},
                                                            "version": 1}) as response:
            updated = await response.json()
        assert updated["version"] == 2
        async with api.patch(f"{views}/{view['id']}", json={"name": "stale", "version": 1}) as response:
            assert response.status == 409 and (await response.json())["details"]["current_version"] == 2
        async with api.get(f"{views}/{view['id']}/samples") as response:
            assert [i["name"] for i in (await response.json())["items"]] == ["street_002.jpg"]
        async with api.patch(f"{views}/{view['id']}", json={"filter": {"metadata": {"w": {}}}}) as response:
            assert response.status == 422 and (await response.json())["path"] == "$.filter.metadata.w"
        async with api.post(f"{views}/{view['id']}/items", json={"sample_ids": [corpus.ids["park_005.jpg"]]}) as r:
            assert r.status == 409
        async with api.get(views) as response:
            assert view["id"] in [v["id"] for v in (await response.json())["items"]]
        async with api.delete(f"{views}/{view['id']}") as response:
            assert response.status == 204
        async with api.get(f"{views}/{view['id']}") as response:
            assert response.status == 404
        async with api.get(f"{views}/{view['id']}/samples") as response:
            assert response.status == 404
        received = []
        while len(received) < 3:
            msg = await subscription.next_msg(timeout=10)
            if corpus.project_id in msg.data.decode():
                received.append(msg.subject)
    finally:
        await subscription.unsubscribe()
    assert received == [subjects.VIEW_CREATED.subject, subjects.VIEW_UPDATED.subject, subjects.VIEW_DELETED.subject]


async def test_item_views_add_remove_and_run(api: aiohttp.ClientSession, corpus: Corpus) -> None:
    views = f"/v1/projects/{corpus.project_id}/views"
    ids = corpus.ids
    async with api.post(views, json={"name": f"picked {uuid.uuid4().hex[:6]}",
                                     "sample_ids": [ids["park_005.jpg"], ids["street_001.jpg"]]}) as response:
        assert response.status == 201, await response.text()
        view = await response.json()
    assert (view["kind"], view["filter"], view["item_count"], view["sort"]) == ("items", None, 2, "-priority")
    items = f"{views}/{view['id']}/items"
    async with api.post(items, json={"sample_ids": [ids["street_002.jpg"], ids["park_005.jpg"]]}) as response:
        assert (await response.json())["item_count"] == 3
    async with api.get(f"{views}/{view['id']}/samples") as response:
        assert [i["name"] for i in (await response.json())["items"]] == ["street_002.jpg", "street_001.jpg",
                                                                       "park_005.jpg"]
    async with api.request("DELETE", items, json={"sample_ids": [ids["street_001.jpg"], str(uuid.uuid4())]}) as r:
        removed = await r.json()
    assert (removed["item_count"], removed["version"]) == (2, 3)
    # A sample of another project is not found, and nothing of the call is kept.
    other_project = await create_project(api, f"other {uuid.uuid4().hex[:8]}")
    (foreign,) = await add_samples(api, other_project, await create_dataset(api, other_project, "x"), [{"name": "f"}])
    async with api.post(items, json={"sample_ids": [ids["Highway_003.png"], foreign]}) as response:
        assert response.status == 404 and (await response.json())["path"] == "$.sample_ids[1]"
    async with api.get(f"{views}/{view['id']}") as response:
        assert (await response.json())["item_count"] == 2
    async with api.patch(f"{views}/{view['id']}", json={"filter": {}}) as response:
        assert response.status == 422 and (await response.json())["path"] == "$.filter"
    async with api.post(views, json={"name": "both", "filter": {}, "sample_ids": [ids["park_005.jpg"]]}) as response:
        assert response.status == 422 and (await response.json())["path"] == "$.sample_ids"


async def test_viewers_read_and_run_views_labelers_change_them(api: aiohttp.ClientSession, corpus: Corpus,
                                                               user_client) -> None:
    views = f"/v1/projects/{corpus.project_id}/views"
    _, viewer = await user_client(corpus.project_id, "viewer")
    _, labeler = await user_client(corpus.project_id, "labeler")
    _, stranger = await user_client()
    async with labeler.post(views, json={"name": f"mine {uuid.uuid4().hex[:6]}", "filter": {}}) as response:
        assert response.status == 201, await response.text()
        view = await response.json()
    async with viewer.get(f"{views}/{view['id']}/samples") as response:
        assert response.status == 200 and len((await response.json())["items"]) == len(NAMES)
    async with viewer.post(f"/v1/projects/{corpus.project_id}/samples/search", json={}) as response:
        assert response.status == 200
    async with viewer.patch(f"{views}/{view['id']}", json={"name": "nope"}) as response:
        assert response.status == 403
    async with stranger.post(f"/v1/projects/{corpus.project_id}/samples/search", json={}) as response:
        assert response.status == 404


# -- metadata terms -------------------------------------------------------------------------------------

# Values a term must tell apart, or not, as jsonb containment does: numbers by value (1 = 1.0, not "1",
# not true), arrays by their scalar elements only, objects by their keys, two levels deep at most.
TRICKY: list[dict[str, Any]] = [
    {"n": 1}, {"n": 1.0}, {"n": 1.50}, {"n": "1"}, {"n": True}, {"n": False}, {"n": 0}, {"n": -0.0},
    {"n": [1, 2, 1]}, {"n": [[1]]}, {"n": [{"m": 1}]}, {"n": {"m": 1}}, {"n": {"m": [1.0, "x"]}},
    {"n": {"m": {"k": 1}}}, {"q": 'a"b'}, {"q": "ü"}, {"q": None}, {}, {"n": 1, "q": "ü"},
]
TERM_FILTERS: list[dict[str, Any]] = [
    {"n": 1}, {"n": 1.5}, {"n": "1"}, {"n": True}, {"n": False}, {"n": 0}, {"n": 2}, {"n.m": 1}, {"n.m": "x"},
    {"n.m.k": 1}, {"q": 'a"b'}, {"q": "ü"}, {"n": 1, "q": "ü"}, {"n": 3},
]


async def contained(project_id: str, metadata: dict[str, Any]) -> set[str]:
    """Names of the samples whose metadata contains each key's value, or an array holding it: what the
    filter has always meant, straight from Postgres."""
    conditions = " AND ".join(f"metadata @> ANY(${i + 2}::jsonb[])" for i in range(len(metadata)))
    db = await asyncpg.connect(helpers.database_url, server_settings={"search_path": "catalog, public"})
    try:
        await db.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        rows = await db.fetch(f"SELECT name FROM samples WHERE project_id = $1 AND {conditions}", uuid.UUID(project_id),
                              *(equal_to_any(key, [value]) for key, value in metadata.items()))
    finally:
        await db.close()
    return {row["name"] for row in rows}


async def test_metadata_terms_find_what_containment_finds_as_samples_change(api: aiohttp.ClientSession) -> None:
    project_id = await create_project(api, f"terms {uuid.uuid4().hex[:8]}")
    dataset_id = await create_dataset(api, project_id, "all")
    ids = await add_samples(api, project_id, dataset_id, [{"name": f"s{i}", "metadata": metadata}
                                                          for i, metadata in enumerate(TRICKY)])

    async def agree() -> None:
        for metadata in TERM_FILTERS:
            expected = await contained(project_id, metadata)
            assert await by_priority(api, project_id, {"metadata": metadata}) == expected, metadata
            counted = await call(api, "POST", f"/v1/projects/{project_id}/samples/count", json={"metadata": metadata})
            assert counted == {"count": len(expected)}, metadata

    await agree()
    assert await contained(project_id, {"n": 1}) == {"s0", "s1", "s8", "s18"}  # the oracle knows the rules
    await change_sample(api, project_id, ids[0], {"metadata": {"n": 3, "q": 'a"b'}})
    await change_sample(api, project_id, ids[11], {"metadata": {"n": {"m": "x"}}})
    await change_sample(api, project_id, ids[12], {"tags": ["metadata unchanged"]})
    async with api.delete(f"/v1/projects/{project_id}/samples/{ids[18]}") as response:
        assert response.status == 204, await response.text()
    await agree()
    assert await contained(project_id, {"n": 3}) == {"s0"}
