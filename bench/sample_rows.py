"""Turning a page of search rows into samples: the catalog's fixed cost per page of a search (issue 18).

    python -m bench.sample_rows [--quick] [--rounds N]

Starts the local stack's servers (no services) in a temporary folder, reads one page of 100 rows with the
columns and Postgres types of `samples` (uuids, timestamptz, jsonb `{"weather": ...}` metadata, empty tags,
no labeler: a page of bench.peers' query) through a pool set up as the catalog's (jsonb by `json.loads`),
then converts that page to `Sample`s over and over, both ways in turn so that both see the same load:
`from_row` on each row (`samples.to_sample`, how a search page was built before) and `from_rows` on the
page (how it is built now). Prints the best of N rounds of each as rows/s and ms per page: the machine is
shared, and the best round is the one least disturbed by others.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.report import arguments, figure, local_stack, table
from proto.samples import Sample
from services.catalog import samples
from shared import db
from shared.rows import from_rows

PAGE = 100
PAGES_PER_ROUND = 50

# A page as the catalog's search reads it: the columns of `samples.COLUMNS`, of the types of `samples`.
PAGE_SQL = f"""
SELECT gen_random_uuid() AS id, $1::uuid AS project_id, $2::uuid AS dataset_id,
       'img_' || lpad(i::text, 6, '0') || '.jpg' AS name, NULL::text AS external_id,
       encode(sha256(i::text::bytea), 'hex') AS content_hash, NULL::text AS media_url, 'jpeg'::text AS format,
       64 AS width, 64 AS height, (2000 + i)::bigint AS size_bytes,
       jsonb_build_object('weather', (ARRAY['rainy', 'sunny', 'cloudy'])[1 + i % 3]) AS metadata,
       '{{}}'::text[] AS tags, 0::float8 AS priority, 'NEW'::text AS status, NULL::uuid AS labeler_id,
       NULL::uuid AS reviewer_id, 1 AS version, now() AS created_at, now() AS updated_at
FROM generate_series(1, {PAGE}) i
"""


async def read_page(database_url: str) -> list[Any]:
    pool = await db.open_pool(database_url, "bench_sample_rows", None, 1)
    try:
        return list(await pool.fetch(PAGE_SQL, uuid.uuid4(), uuid.uuid4()))
    finally:
        await pool.close()


def best_seconds_per_page(ways: dict[str, Callable[[], list[Sample]]], rounds: int) -> dict[str, float]:
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(rounds):
        for name, convert in ways.items():
            started = time.perf_counter()
            for _ in range(PAGES_PER_ROUND):
                convert()
            best[name] = min(best[name], (time.perf_counter() - started) / PAGES_PER_ROUND)
    return best


def main() -> None:
    parser = arguments(__doc__, "5 rounds", rounds=40)
    args = parser.parse_args()
    rounds = 5 if args.quick else args.rounds
    with local_stack() as stack:
        page = asyncio.run(read_page(stack.settings.database_url))
    ways = {
        "from_row each (before)": lambda: [samples.to_sample(row) for row in page],
        "from_rows (after)": lambda: from_rows(Sample, page),
    }
    before, after = (way() for way in ways.values())
    if before != after:
        raise SystemExit("from_rows made other samples than from_row")
    best = best_seconds_per_page(ways, rounds)
    print(
        table(
            f"a page of {PAGE} rows into samples, best of {rounds} rounds of {PAGES_PER_ROUND} pages",
            {name: {"rows/s": PAGE / seconds, "ms/page": seconds * 1000} for name, seconds in best.items()},
        )
    )
    n = rounds * PAGES_PER_ROUND
    print(figure("sample_rows_before_rows_per_s", PAGE / best["from_row each (before)"], "rows/s", n))
    print(figure("sample_rows_after_rows_per_s", PAGE / best["from_rows (after)"], "rows/s", n))


if __name__ == "__main__":
    main()
