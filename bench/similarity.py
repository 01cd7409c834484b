"""Similarity search at scale: the nearest samples to a sample, through the REST gateway, over N vectors.

    python -m bench.similarity [--quick] [--vectors N] [--requests R]

Starts Postgres, NATS, the catalog and the gateway on free ports in a temporary folder, bulk-loads N
synthetic samples with COPY (as bench.search does) and one 192-dimension vector each (clustered random:
500 centres, each vector a centre plus noise) into an embedding space, builds its HNSW index once (as a
restore would) and ANALYZEs. `embedding_put_per_s` times the catalog's bus command that inference uses,
`loupe.catalog.embedding.put`, storing anew the vectors of PUT_SAMPLES samples, 1,000 per call from two
callers, into the indexed space. Then it sends R requests of each kind from one client and prints p50/p99
per kind:

- `by-sample`: the 20 nearest to a random sample (POST .../samples/similar with sample_id);
- `filtered`: the 20 nearest to a vector among one dataset's DONE samples (a filter of about 1/20);
- `condition`: a search whose filter is the `similar` condition (top_k 50) beside a status.

`similarity_p99_ms` is the worst p99 of the three (target on 2 cores at 100,000 vectors: <= 20 ms).
`similarity_recall` is the share of the true 20 nearest (by an exact scan) that `by-sample` found.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import msgspec
import uvloop

from bench import search
from bench.report import Kinds, arguments, figure, local_stack, table, time_requests
from loupe.stack import Stack
from proto import subjects
from proto.embeddings import EmbeddingItem, PutEmbeddings
from services.catalog.embeddings import index_sql
from shared.bus import Bus

DIMS = 192
CENTRES = 500
SPACE = "bench:1"
PER_CALL = 1000
CALLERS = 2
PUT_SAMPLES = 4000
CHUNK = 10_000
LIMIT = 20


def clustered(n: int, seed: int) -> list[list[float]]:
    """n vectors around CENTRES random centres, as images of a few hundred kinds of scene would be."""
    rng = random.Random(seed)
    centres = [[rng.gauss(0, 1) for _ in range(DIMS)] for _ in range(CENTRES)]
    return [[x + rng.gauss(0, 0.35) for x in rng.choice(centres)] for _ in range(n)]


async def load_vectors(pool: asyncpg.Pool, project_id: uuid.UUID, ids: list[uuid.UUID], vectors: list[list[float]]
                       ) -> float:
    """Insert the vectors straight into the catalog's tables, then build the space's HNSW index; seconds taken."""
    started = time.perf_counter()
    await pool.execute("INSERT INTO embedding_spaces (project_id, space, dims) VALUES ($1, $2, $3)",
                       project_id, SPACE, DIMS)
    for i in range(0, len(ids), CHUNK):
        await pool.execute(
            "INSERT INTO sample_embeddings (sample_id, space, project_id, dims, embedding) "
            "SELECT v.id, $2, $3, $4, v.embedding::vector FROM unnest($1::uuid[], $5::text[]) AS v (id, embedding)",
            ids[i:i + CHUNK], SPACE, project_id, DIMS, [msgspec.json.encode(v).decode() for v in vectors[i:i + CHUNK]])
    async with pool.acquire() as conn:
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(index_sql(DIMS))
    await pool.execute("VACUUM ANALYZE sample_embeddings")
    return time.perf_counter() - started


async def store_vectors(stack: Stack, project_id: uuid.UUID, ids: list[uuid.UUID], vectors: list[list[float]]) -> float:
    """Store each sample's vector through the bus command, PER_CALL per call, CALLERS calls in flight;
    the vectors stored per second."""
    bus = await Bus.connect(stack.settings, "bench")
    calls = [PutEmbeddings(project_id=str(project_id), space=SPACE,
                           items=[EmbeddingItem(sample_id=str(ident), vector=vector)
                                  for ident, vector in zip(ids[i:i + PER_CALL], vectors[i:i + PER_CALL], strict=True)])
             for i in range(0, len(ids), PER_CALL)]

    async def caller() -> None:
        while calls:
            stored = await bus.request(subjects.PUT_EMBEDDINGS, calls.pop(), timeout=120)
            assert not stored.missing, stored.missing[:3]

    started = time.perf_counter()
    try:
        await asyncio.gather(*(caller() for _ in range(CALLERS)))
    finally:
        await bus.close()
    return len(ids) / (time.perf_counter() - started)


def kinds(project_id: uuid.UUID, ids: list[uuid.UUID], vectors: list[list[float]], datasets: list[uuid.UUID]
          ) -> Kinds:
    """Each kind of request: its path and its body, built afresh per request so the query varies."""
    base = f"/v1/projects/{project_id}/samples"

    def by_sample(rng: random.Random) -> dict[str, Any]:
        return {"space": SPACE, "sample_id": str(rng.choice(ids)), "limit": LIMIT}

    def filtered(rng: random.Random) -> dict[str, Any]:
        return {"space": SPACE, "vector": rng.choice(vectors), "limit": LIMIT,
                "filter": {"dataset_ids": [str(rng.choice(datasets))], "statuses": ["DONE"]}}

    def condition(rng: random.Random) -> dict[str, Any]:
        return {"similar": {"space": SPACE, "sample_id": str(rng.choice(ids)), "top_k": 50},
                "statuses": ["NEW"], "limit": LIMIT}

    return {"by-sample": (f"{base}/similar", by_sample), "filtered": (f"{base}/similar", filtered),
            "condition": (f"{base}/search", condition)}


async def recall(stack: Stack, pool: asyncpg.Pool, project_id: uuid.UUID, ids: list[uuid.UUID], queries: int
                 ) -> float:
    """The share of the exact LIMIT nearest (a scan of every vector) that the API's answer holds."""
    rng = random.Random(5)
    found = wanted = 0
    async with aiohttp.ClientSession(stack.gateway_url, headers={"Authorization": f"Bearer {stack.admin_key}"}
                                     ) as http:
        for _ in range(queries):
            ident = rng.choice(ids)
            exact = await pool.fetch(
                "SELECT e.sample_id FROM sample_embeddings e, sample_embeddings q WHERE q.sample_id = $1 "
                "AND q.space = $2 AND e.space = $2 AND e.project_id = $3 AND e.sample_id <> $1 "
                "ORDER BY e.embedding <=> q.embedding LIMIT $4", ident, SPACE, project_id, LIMIT)
            body = {"space": SPACE, "sample_id": str(ident), "limit": LIMIT}
            async with http.post(f"/v1/projects/{project_id}/samples/similar", json=body) as response:
                answer = {item["sample"]["id"] for item in (await response.json())["items"]}
            found += sum(str(row["sample_id"]) in answer for row in exact)
            wanted += len(exact)
    return found / wanted


async def run(stack: Stack, n: int, requests: int) -> tuple[dict[str, dict[str, float]], float, float]:
    async with aiohttp.ClientSession(stack.gateway_url, headers={"Authorization": f"Bearer {stack.admin_key}"}
                                     ) as http, http.post("/v1/projects", json={"name": "similarity bench"}) as response:
        project_id = uuid.UUID((await response.json())["id"])
    pool = await asyncpg.create_pool(stack.settings.database_url, min_size=2, max_size=2,
                                     server_settings={"search_path": "catalog, public"})
    try:
        datasets, _ = await search.load(pool, project_id, n)
        ids = [row["id"] for row in await pool.fetch("SELECT id FROM samples WHERE project_id = $1", project_id)]
        vectors = clustered(len(ids), seed=3)
        load_s = await load_vectors(pool, project_id, ids, vectors)
        print(f"loaded {len(ids):,} vectors of {DIMS} dimensions and built their index in {load_s:.1f} s")
        put_per_s = await store_vectors(stack, project_id, ids[:PUT_SAMPLES], vectors[:PUT_SAMPLES])
        await pool.execute("VACUUM ANALYZE sample_embeddings")
        print(f"stored {min(len(ids), PUT_SAMPLES):,} vectors anew through the bus, {put_per_s:,.0f} per second")
        rows = await time_requests(stack.gateway_url, stack.admin_key, requests, kinds(project_id, ids, vectors, datasets))
        found = await recall(stack, pool, project_id, ids, 50)
    finally:
        await pool.close()
    return rows, put_per_s, found


def main() -> None:
    parser = arguments(__doc__, "10,000 vectors, 100 requests each", vectors=100_000, requests=300)
    args = parser.parse_args()
    n, requests = (10_000, 100) if args.quick else (args.vectors, args.requests)

    with local_stack("catalog", "gateway") as stack:
        rows, put_per_s, found = uvloop.run(run(stack, n, requests))

    print(table(f"similar samples over {n:,} vectors of {DIMS} dimensions, {requests} requests per kind, one client",
                rows))
    worst = max(row["p99_ms"] for row in rows.values())
    print(f"worst p99: {worst:.1f} ms  (target <= 20 ms at 100,000 vectors on 2 cores); recall@{LIMIT}: {found:.3f}")
    print(figure("embedding_put_per_s", put_per_s, "vectors/s", n))
    print(figure("similarity_recall", found, "share", n))
    print(figure("similarity_p99_ms", worst, "ms", n))


if __name__ == "__main__":
    main()
