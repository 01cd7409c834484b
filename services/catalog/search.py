"""Sample search: a filter document compiled into one parameterised WHERE clause over `samples`, then
a keyset or offset page in the asked order, and, when asked, a (capped) total.

Values only ever travel as query parameters; the SQL text depends on which filters are present, never
on what they contain. What each filter uses: sort orders are btree indexes per project; metadata
equality is `@>` on a jsonb_path_ops GIN index; name_contains is ILIKE on a trigram GIN index; tags are
array operators on a GIN index; label conditions are semi-joins on the label summary read model
(labels_summary.py) by primary key, or driven from its per-class index when that is more selective;
`similar` reads the vectors of an embedding space (embeddings.py), the nearest through its dimension's
HNSW index.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import math
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
import msgspec

from proto import subjects
from proto.samples import Sample
from proto.search import (
    MAX_METADATA_KEYS,
    METADATA_KEY_PATTERN,
    TOTAL_CAP,
    CountSamples,
    LabelFilter,
    MetadataCondition,
    MetadataValue,
    SampleCount,
    SampleFilter,
    SamplePage,
    SearchQuery,
    SearchSamples,
    SimilarTo,
    Sort,
    TotalMode,
    VectorQuery,
)
from services.catalog import samples
from shared import db
from shared.bus import RequestContext
from shared.errors import LoupeError, invalid, not_found, require_all
from shared.ids import parse_uuid
from shared.rows import from_rows
from shared.service import Answers, Runtime, StateKey

ANSWERS = Answers()

COLUMNS = ", ".join(f"s.{column}" for column in samples.COLUMNS.split(", "))

# sort field → (column, Postgres type of its cursor value)
SORT_COLUMNS: dict[str, tuple[str, str]] = {
    "priority": ("s.priority", "float8"),
    "created_at": ("s.created_at", "timestamptz"),
    "updated_at": ("s.updated_at", "timestamptz"),
    "name": ("s.name", "text"),
}
_METADATA_KEY = re.compile(METADATA_KEY_PATTERN)
_RANGES = (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="))


class SampleSet(NamedTuple):
    """A condition the samples with a row in `table` meet, at most one row each, the row's columns under the
    alias `{t}` in `conditions`. `scoped`: the table names the project, so it can stand for the samples."""

    table: str
    conditions: str
    scoped: bool

    def over(self, alias: str) -> str:
        return self.conditions.replace("{t}", alias)


class Where:
    """A WHERE clause over `samples s` under construction: conditions ANDed, values as parameters."""

    def __init__(self, project_id: uuid.UUID) -> None:
        self.project_id = project_id
        self.params: list[Any] = [project_id]
        self.conditions = ["s.project_id = $1"]
        # The conditions that are sample sets (apart from `conditions`: a page may test them on candidates
        # rather than on the samples, `page_sql`), and whether any other condition reads the sample's own row:
        # when none does, a count joins the sets alone (`sets_count_sql`).
        self.sets: list[SampleSet] = []
        self.reads_samples = False
        # A similar condition (and where it was given) waits here for `resolve`, which looks up what it
        # needs: the dimension of its space, and the vector of its sample.
        self.similar: tuple[SimilarTo, str] | None = None
        self.ef_search = 0  # how many candidates an HNSW scan keeps; 0 when none is made

    def param(self, value: Any, cast: str) -> str:
        self.params.append(value)
        return f"${len(self.params)}::{cast}"

    def add(self, condition: str) -> None:
        self.conditions.append(condition)
        self.reads_samples = True

    def add_set(self, sample_set: SampleSet) -> None:
        self.sets.append(sample_set)

    def sets_sql(self, alias: str) -> list[str]:
        """The set conditions, on the samples (or page candidates) under `alias`."""
        return [
            f"EXISTS (SELECT 1 FROM {sample_set.table} x WHERE x.sample_id = {alias}.id AND {sample_set.over('x')})"
            for sample_set in self.sets
        ]

    @property
    def all_conditions(self) -> list[str]:
        return self.conditions + self.sets_sql("s")

    def one_of(self, column: str, values: list[Any], cast: str) -> str:
        """`column = ANY(values)`, or plain `=` for one value: only an equality lets a btree index on
        (column, sort key) return rows already in order."""
        if len(values) == 1:
            return f"{column} = {self.param(values[0], cast)}"
        return f"{column} = ANY({self.param(values, cast + '[]')})"

    @property
    def sql(self) -> str:
        return " AND ".join(self.all_conditions)


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards in `text` taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def compile_filter(project_id: uuid.UUID, flt: SampleFilter, path: str = "$") -> Where:
    """The WHERE clause of `flt`; a filter that cannot mean anything is `invalid` at its `path`."""
    where = Where(project_id)
    if flt.dataset_ids is not None:
        ids = [parse_uuid(d, "dataset", path=f"{path}.dataset_ids[{i}]") for i, d in enumerate(flt.dataset_ids)]
        where.add(where.one_of("s.dataset_id", ids, "uuid"))
    if flt.statuses is not None:
        where.add(where.one_of("s.status", flt.statuses, "text"))
    if flt.name_contains is not None:
        where.add(f"s.name ILIKE {where.param(like_pattern(flt.name_contains), 'text')}")
    if flt.external_ids is not None:
        where.add(where.one_of("s.external_id", flt.external_ids, "text"))
    for field, column, operator in (
        ("created_since", "created_at", ">="),
        ("created_before", "created_at", "<"),
        ("updated_since", "updated_at", ">="),
        ("updated_before", "updated_at", "<"),
    ):
        value = getattr(flt, field)
        if value is not None:
            where.add(f"s.{column} {operator} {where.param(value, 'timestamptz')}")
    for field in ("labeler", "reviewer"):
        value = getattr(flt, field)
        if value == "unassigned":
            where.add(f"s.{field}_id IS NULL")
        elif value is not None:
            user = parse_uuid(value, "user", path=f"{path}.{field}")
            where.add(f"s.{field}_id = {where.param(user, 'uuid')}")
    for field, operator in (("tags_any", "&&"), ("tags_all", "@>")):
        value = getattr(flt, field)
        if value is not None:
            where.add(f"s.tags {operator} {where.param(value, 'text[]')}")
    if flt.tags_none is not None:
        where.add(f"NOT (s.tags && {where.param(flt.tags_none, 'text[]')})")
    if flt.metadata is not None:
        for key, alternatives in parse_metadata(flt.metadata, f"{path}.metadata").items():
            value = one_term(key, alternatives)
            if value is not None:
                where.add_set(metadata_term(where, key, value[0]))
            else:
                where.add(metadata_condition(where, key, alternatives))
    if flt.labels is not None:
        label_conditions(where, flt.labels, f"{path}.labels")
    if flt.sample_ids is not None:
        where.add(where.one_of("s.id", [uuid.UUID(ident) for ident in flt.sample_ids], "uuid"))
    if flt.similar is not None:
        check_query(flt.similar, f"{path}.similar")
        if flt.similar.max_distance is None and flt.similar.top_k is None:
            raise invalid(
                "say how similar: max_distance (at most this cosine distance), top_k (the k nearest) or both",
                path=f"{path}.similar",
            )
        where.similar = (flt.similar, f"{path}.similar")
    return where


# -- metadata ------------------------------------------------------------------------------------------


def parse_metadata(raw: dict[str, Any], path: str) -> dict[str, list[MetadataCondition]]:
    """Each key's alternatives (ORed) as conditions; mistakes are reported at `<path>.<key>...`."""
    if len(raw) > MAX_METADATA_KEYS:
        raise invalid(f"a filter may name up to {MAX_METADATA_KEYS} metadata keys, not {len(raw)}", path=path)
    parsed: dict[str, list[MetadataCondition]] = {}
    for key, value in raw.items():
        where = f"{path}.{key}"
        if not _METADATA_KEY.match(key):
            raise invalid(
                f"metadata key {key!r} is not a key path: use letters, digits, '_' and '-', "
                "with '.' between the levels of nested objects (e.g. camera.model)",
                path=where,
            )
        try:
            typed = msgspec.convert(value, MetadataValue)
        except msgspec.ValidationError as exc:
            message, _, at = str(exc).partition(" - at `$")
            raise invalid(
                f"metadata filter {key!r}: {message}; give a value, a list of values, or a condition "
                'like {"gte": 1, "lt": 5}',
                path=where + at.rstrip("`"),
            ) from None
        alternatives = typed if isinstance(typed, list) else [typed]
        if not alternatives:
            raise invalid(
                f"metadata filter {key!r} is an empty list, which nothing matches; list at least one value", path=where
            )
        conditions = []
        for index, alternative in enumerate(alternatives):
            at = f"{where}[{index}]" if isinstance(typed, list) else where
            condition = alternative if isinstance(alternative, MetadataCondition) else MetadataCondition(eq=alternative)
            check_condition(key, condition, at)
            conditions.append(condition)
        parsed[key] = conditions
    return parsed


def check_condition(key: str, condition: MetadataCondition, path: str) -> None:
    if condition == MetadataCondition():
        raise invalid(f"the condition on metadata {key!r} is empty; use eq, in, gt, gte, lt, lte or exists", path=path)
    if condition.in_ == []:
        raise invalid(f"metadata {key!r}: `in` is empty, which nothing matches", path=f"{path}.in")
    bounds = [getattr(condition, op) for op, _ in _RANGES if getattr(condition, op) is not None]
    if len({isinstance(bound, str) for bound in bounds}) > 1:
        raise invalid(f"metadata {key!r}: the bounds of one range must all be numbers or all be strings", path=path)


def containment(key: str, value: Any) -> dict[str, Any]:
    """`{"camera": {"model": value}}` for key `camera.model`: what `metadata @> ...` looks for."""
    document: Any = value
    for part in reversed(key.split(".")):
        document = {part: document}
    return document


def equal_to_any(key: str, values: list[Any]) -> list[dict[str, Any]]:
    """The documents `metadata @> ANY(...)` matches when the key's value is one of `values`, or is an
    array holding one of them (jsonb containment takes an array for a scalar only at the top level)."""
    return [containment(key, wrapped) for value in values for wrapped in (value, [value])]


def plain_values(condition: MetadataCondition) -> list[Any] | None:
    """The values of a condition that is only equality (`eq` or `in`); None for any other."""
    if condition == MetadataCondition(eq=condition.eq):
        return [condition.eq]
    if condition == MetadataCondition(in_=condition.in_):
        return condition.in_
    return None


TERM_DEPTH = 2  # the key paths catalog migration 0007 writes terms of


def one_term(key: str, alternatives: list[MetadataCondition]) -> tuple[Any] | None:
    """The value, when the key must equal one scalar at a path the metadata terms cover (a 1-tuple, since
    the value may be None); None for any other condition."""
    values = plain_values(alternatives[0]) if len(alternatives) == 1 else None
    if values is None or len(values) != 1 or key.count(".") >= TERM_DEPTH:
        return None
    value = values[0]
    if isinstance(value, (dict, list)) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return (value,)


def metadata_term(where: Where, key: str, value: Any) -> SampleSet:
    """The samples whose metadata has `value` at `key` (or in an array there): a primary-key range of the
    inverted index, exactly what `metadata @> ANY(...)` finds (`equal_to_any`)."""
    path, wanted = where.param(key.split("."), "text[]"), where.param(value, "jsonb")
    return SampleSet("metadata_terms", f"{{t}}.project_id = $1 AND {{t}}.term = metadata_term({path}, {wanted})", True)


def metadata_condition(where: Where, key: str, alternatives: list[MetadataCondition]) -> str:
    """One key's alternatives, ORed. Plain values are gathered into one `@> ANY(...)`, which the GIN
    index answers; ranges and `exists` read the value itself."""
    values: list[Any] = []
    others: list[MetadataCondition] = []
    for condition in alternatives:
        plain = plain_values(condition)
        if plain is None:
            others.append(condition)
        else:
            values += plain
    ors = []
    if values:
        ors.append(f"s.metadata @> ANY({where.param(equal_to_any(key, values), 'jsonb[]')})")
    if others:
        path = where.param(key.split("."), "text[]")
        ors += [condition_sql(where, key, path, condition) for condition in others]
    return ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")"


def condition_sql(where: Where, key: str, path: str, condition: MetadataCondition) -> str:
    value = f"s.metadata #> {path}"
    ands = []
    for values in ([condition.eq] if condition.eq is not None else None, condition.in_):
        if values is not None:
            ands.append(f"s.metadata @> ANY({where.param(equal_to_any(key, values), 'jsonb[]')})")
    bounds = [(symbol, getattr(condition, op)) for op, symbol in _RANGES if getattr(condition, op) is not None]
    if bounds:
        # Only values of the bounds' type compare; CASE keeps a cast from ever seeing another type.
        if isinstance(bounds[0][1], str):
            typed, cast = (
                f"(CASE WHEN jsonb_typeof({value}) = 'string' THEN s.metadata #>> {path} END) COLLATE \"C\"",
                "text",
            )
        else:
            typed, cast = f"(CASE WHEN jsonb_typeof({value}) = 'number' THEN ({value})::float8 END)", "float8"
        ands += [f"{typed} {symbol} {where.param(bound, cast)}" for symbol, bound in bounds]
    if condition.exists is not None:
        ands.append(f"{value} IS {'NOT ' if condition.exists else ''}NULL")
    return ands[0] if len(ands) == 1 else "(" + " AND ".join(ands) + ")"


# -- labels --------------------------------------------------------------------------------------------


def label_conditions(where: Where, labels: LabelFilter, path: str) -> None:
    # Parameters are registered on first use: Postgres cannot type one that no condition mentions.
    labelset = functools.cache(lambda: where.param(labels.labelset, "text"))

    def summary() -> str:
        return f"SELECT 1 FROM label_summaries l WHERE l.sample_id = s.id AND l.labelset = {labelset()}"

    if labels.status is not None:
        condition = f"EXISTS ({summary()} AND {where.one_of('l.status', labels.status, 'text')})"
        if "UNLABELED" in labels.status:  # a sample nobody labelled has no summary at all
            condition = f"({condition} OR NOT EXISTS ({summary()}))"
        where.add(condition)
    for field, operator, negate in (("tags_any", "&&", ""), ("tags_all", "@>", ""), ("tags_none", "&&", "NOT ")):
        value = getattr(labels, field)
        if value is not None:
            where.add(f"{negate}EXISTS ({summary()} AND l.tag_class_ids {operator} {where.param(value, 'text[]')})")
    for index, count in enumerate(labels.classes or ()):
        at = f"{path}.classes[{index}]"
        low = count.min or 0
        if count.min is None and count.max is None:
            raise invalid(
                'say how many objects of the class: min, max or both ({"min": 1} present, {"max": 0} absent)', path=at
            )
        if count.max is not None and low > count.max:
            raise invalid(f"min ({low}) is greater than max ({count.max}); nothing can match", path=at)
        if low < 1 and count.max is None:
            continue  # "zero or more" holds for every sample
        if low >= 1:
            upper = f" AND {{t}}.count <= {where.param(count.max, 'int4')}" if count.max is not None else ""
            where.add_set(
                SampleSet(
                    "label_class_counts",
                    f"{{t}}.labelset = {labelset()} AND {{t}}.class_id = {where.param(count.class_id, 'text')} "
                    f"AND {{t}}.count >= {where.param(low, 'int4')}{upper}",
                    False,
                )
            )
        else:  # no row is zero objects, so "at most N" is "no row above N"
            where.add(
                f"NOT EXISTS (SELECT 1 FROM label_class_counts c WHERE c.sample_id = s.id AND c.labelset = "
                f"{labelset()} AND c.class_id = {where.param(count.class_id, 'text')} "
                f"AND c.count > {where.param(count.max, 'int4')})"
            )


# -- similarity ----------------------------------------------------------------------------------------

# The length (L2 norm) a vector must have: cosine distance has no meaning for a zero vector, and within
# these bounds pgvector's single-precision sums of squares neither underflow to zero nor overflow.
MIN_NORM, MAX_NORM = 1e-15, 1e15
# Candidates an HNSW scan keeps at least (pgvector's default is 40): better recall for a little time.
EF_SEARCH = 100


class Near(NamedTuple):
    """A query vector, found: its space, that space's dimension, the vector in pgvector's text form, and
    the sample it is the vector of (which is left out of the answers)."""

    space: str
    dims: int
    vector: str
    sample_id: uuid.UUID | None


def check_vector(vector: list[float], path: str) -> None:
    if not MIN_NORM <= math.hypot(*vector) <= MAX_NORM:
        raise invalid(
            f"a vector needs a length (L2 norm) between {MIN_NORM:g} and {MAX_NORM:g}, and finite numbers: "
            "cosine distance has no meaning for a zero vector",
            path=path,
        )


def check_query(query: VectorQuery, path: str) -> None:
    if (query.sample_id is None) == (query.vector is None):
        raise invalid("give sample_id (near that sample's vector) or vector, one of the two", path=path)
    if query.vector is not None:
        check_vector(query.vector, f"{path}.vector")


def vector_text(vector: list[float]) -> str:
    """pgvector's text form of a vector, which is a JSON array."""
    return msgspec.json.encode(vector).decode()


def no_space(space: str, path: str) -> LoupeError:
    return LoupeError(
        "not_found",
        f"this project has no embedding space {space!r}; GET /v1/projects/{{project_id}}/embeddings lists the "
        "spaces it has (inference makes one when it stores a model's first vectors)",
        path=path,
        resource="embedding space",
        id=space,
    )


async def find_near(db: asyncpg.Pool, project_id: uuid.UUID, query: VectorQuery, path: str) -> Near:
    """The query vector of `query` (checked by check_query): 404 for a space the project lacks or a sample
    without a vector in it, 422 for a vector of another dimension than the space's."""
    sample_id = None if query.sample_id is None else uuid.UUID(query.sample_id)
    row = await db.fetchrow(
        "SELECT sp.dims, (SELECT e.embedding::text FROM sample_embeddings e WHERE e.sample_id = $3 "
        "AND e.space = sp.space AND e.project_id = sp.project_id) AS vector "
        "FROM embedding_spaces sp WHERE sp.project_id = $1 AND sp.space = $2",
        project_id,
        query.space,
        sample_id,
    )
    if row is None:
        raise no_space(query.space, f"{path}.space")
    dims = row["dims"]
    if query.vector is not None:
        if len(query.vector) != dims:
            raise invalid(
                f"space {query.space!r} holds vectors of {dims} dimensions; this one has {len(query.vector)}",
                path=f"{path}.vector",
            )
        return Near(query.space, dims, vector_text(query.vector), None)
    if row["vector"] is None:
        raise LoupeError(
            "not_found",
            f"sample {query.sample_id} has no vector in space {query.space!r}: it is not a sample of this project, "
            "or inference has not embedded it yet; query with a vector instead, or another sample",
            path=f"{path}.sample_id",
            resource="embedding",
            id=query.sample_id,
        )
    return Near(query.space, dims, row["vector"], sample_id)


def distance_sql(where: Where, near: Near) -> str:
    """The cosine distance of a vector of the space to the query, written with the space's dimension so
    that the HNSW index of that dimension (embeddings.py) answers ORDER BY it."""
    return f"e.embedding::vector({near.dims}) <=> {where.param(near.vector, f'vector({near.dims})')}"


def vectors_sql(
    where: Where, space: str, dims: int, leave_out: uuid.UUID | None = None, filtered: bool = True
) -> tuple[str, str]:
    """FROM and WHERE of the vectors of a space (`dims` its dimension), but `leave_out`'s; `filtered`: only
    of the samples `where` matches."""
    conditions = ["e.project_id = $1", f"e.space = {where.param(space, 'text')}", f"e.dims = {dims}"]
    if leave_out is not None:
        conditions.append(f"e.sample_id <> {where.param(leave_out, 'uuid')}")
    source = "sample_embeddings e"
    on_samples = where.all_conditions
    if filtered and len(on_samples) > 1:  # conditions on the samples themselves
        source += " JOIN samples s ON s.id = e.sample_id"
        conditions += on_samples
    return source, " AND ".join(conditions)


def nearest_sql(where: Where, near: Near, limit: int) -> str:
    """(sample_id, distance) of the `limit` samples nearest to the query that `where` matches, in no
    particular order: the HNSW scan runs in relaxed order, iterating until enough rows pass the filter."""
    source, conditions = vectors_sql(where, near.space, near.dims, near.sample_id)
    distance = distance_sql(where, near)
    where.ef_search = max(where.ef_search, min(1000, max(EF_SEARCH, limit)))
    return (
        f"SELECT e.sample_id, {distance} AS distance FROM {source} WHERE {conditions} "
        f"ORDER BY {distance} LIMIT {where.param(limit, 'int4')}"
    )


def within_sql(where: Where, max_distance: float | None) -> str:
    """What keeps, of rows `n` of nearest_sql, those within `max_distance`."""
    return "" if max_distance is None else f" WHERE n.distance <= {where.param(max_distance, 'float8')}"


async def resolve(rt: Runtime, where: Where) -> None:
    """The filter's similar condition in SQL. Within `max_distance` alone reads every vector of the space
    (exact); `top_k` is the k nearest of the samples the rest of the filter matches, so the other conditions
    move inside it."""
    if where.similar is None:
        return
    condition, path = where.similar
    where.similar = None
    near = await find_near(rt.db, where.project_id, condition, path)
    if condition.top_k is None:
        source, conditions = vectors_sql(where, near.space, near.dims, near.sample_id, filtered=False)
        distance = distance_sql(where, near)
        within = where.param(condition.max_distance, "float8")
        where.add(f"s.id IN (SELECT e.sample_id FROM {source} WHERE {conditions} AND {distance} <= {within})")
        return
    nearest = nearest_sql(where, near, condition.top_k)
    within = within_sql(where, condition.max_distance)
    where.conditions = [where.conditions[0], f"s.id IN (SELECT n.sample_id FROM ({nearest}) n{within})"]
    where.sets = []  # they are inside `nearest` now
    where.reads_samples = True


# -- pages ---------------------------------------------------------------------------------------------


def encode_cursor(sort: Sort, sample: Sample) -> str:
    field = sort.lstrip("-")
    value = getattr(sample, field)
    token = [sort, value.isoformat() if isinstance(value, datetime) else value, sample.id]
    return base64.urlsafe_b64encode(msgspec.json.encode(token)).decode()


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, uuid.UUID]:
    """The (sort value, sample id) after which the next page starts."""
    try:
        cursor_sort, value, ident = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()))
        if cursor_sort != sort:
            raise invalid(
                f"this cursor continues a search sorted by {cursor_sort}, not {sort}; keep the sort while paging",
                path="$.cursor",
            )
        cast = SORT_COLUMNS[sort.lstrip("-")][1]
        if cast == "timestamptz":
            value = datetime.fromisoformat(value)
        elif not isinstance(value, str if cast == "text" else (int, float)):
            raise ValueError(value)
        return value, uuid.UUID(ident)
    except (ValueError, TypeError, KeyError, msgspec.DecodeError):
        raise invalid(
            "cursor is not one this API returned; pass next_cursor from the previous page unchanged", path="$.cursor"
        ) from None


# A page of a filter with sample sets in a project holding less than WALK_BELOW_SHARE of all samples looks
# among the first WALK_ROWS_PER_ROW × (limit + 1) samples in the page's order first (docs/decisions.md, "A page
# walks its first candidates"). Postgres prices a set's semi-join by the set's share of all samples, not of the
# project's: in a project with a share s of them it expects s^k of the matches of k sets, and so collects and
# sorts every match where walking the page's order would have stopped after a few hundred rows.
WALK_ROWS_PER_ROW = 20
WALK_BELOW_SHARE = 0.9


def page_sql(
    where: Where, sort: Sort, cursor: str | None, limit: int, offset: int, walk: bool = False
) -> tuple[str, list[Any]]:
    """One more row than `limit`, so the caller knows whether a next page exists; `walk`: looked for only among
    the first WALK_ROWS_PER_ROW × (limit + 1) samples the conditions on the sample's own row pass, in the
    page's order (with `offset` 0), so a short answer may not be the whole page.

    The page's ids are found first and its rows read after: the planner then costs the search by
    what the filters need (often index-only) instead of by every column of every row it passes.
    """
    column, cast = SORT_COLUMNS[sort.lstrip("-")]
    direction = "DESC" if sort.startswith("-") else "ASC"
    conditions = list(where.conditions)
    params = list(where.params)
    if cursor is not None:
        value, ident = decode_cursor(cursor, sort)
        params += [value, ident]
        comparison = "<" if direction == "DESC" else ">"
        conditions.append(f"({column}, s.id) {comparison} (${len(params) - 1}::{cast}, ${len(params)}::uuid)")
    order = f"ORDER BY {column} {direction}, s.id {direction}"
    if walk:
        params += [WALK_ROWS_PER_ROW * (limit + 1), limit + 1]
        candidates = (
            f"SELECT s.id, {column} AS sort_key FROM samples s WHERE {' AND '.join(conditions)} {order} "
            f"LIMIT ${len(params) - 1}"
        )
        ids = (
            f"SELECT c.id FROM ({candidates}) c WHERE {' AND '.join(where.sets_sql('c'))} "
            f"ORDER BY c.sort_key {direction}, c.id {direction} LIMIT ${len(params)}"
        )
    else:
        params += [limit + 1, offset]
        ids = (
            f"SELECT s.id FROM samples s WHERE {' AND '.join(conditions + where.sets_sql('s'))} {order} "
            f"LIMIT ${len(params) - 1} OFFSET ${len(params)}"
        )
    return f"SELECT {COLUMNS} FROM ({ids}) page JOIN samples s ON s.id = page.id {order}", params


class ProjectShares:
    """Each project's share of all samples as Postgres's statistics have it (the most common values of
    samples.project_id; a project not among them has a small one), read again at most once a minute."""

    TTL_S = 60.0
    SQL = (
        "SELECT most_common_vals::text::uuid[], most_common_freqs FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = 'samples' AND attname = 'project_id'"
    )

    def __init__(self) -> None:
        self.shares: dict[uuid.UUID, float] = {}
        self.read_at = -math.inf

    async def of(self, pool: asyncpg.Pool, project_id: uuid.UUID) -> float:
        if time.monotonic() - self.read_at > self.TTL_S:
            self.read_at = time.monotonic()  # searches meanwhile use the shares read before
            row = await pool.fetchrow(self.SQL)
            self.shares = dict(zip(row[0], row[1], strict=True)) if row and row[0] is not None else {}
        return self.shares.get(project_id, 0.0)


PROJECT_SHARES = StateKey("each project's share of the samples", ProjectShares)


async def page_rows(
    rt: Runtime, where: Where, sort: Sort, cursor: str | None, limit: int, offset: int
) -> list[asyncpg.Record]:
    """Up to `limit` + 1 rows of the page: with sample sets in a project planned wrong, walked first
    (`page_sql`), searched whole only when the walk's candidates held fewer (a sparse filter, the last page)."""
    pool = rt.state[SEARCH_DB]
    if where.sets and not offset and await rt.state[PROJECT_SHARES].of(pool, where.project_id) < WALK_BELOW_SHARE:
        rows = await read(rt, *page_sql(where, sort, cursor, limit, offset, walk=True), where.ef_search)
        if len(rows) > limit:
            return rows
    return await read(rt, *page_sql(where, sort, cursor, limit, offset), where.ef_search)


def sets_count_sql(where: Where) -> str | None:
    """A count of the intersection of the filter's sample sets, reading no sample row, when every condition
    is such a set and one of them names the project. An intersection rather than a join: it is hashed or
    sorted whatever the planner thinks of the sets' sizes, whereas a join planned on the estimates of tables
    not yet analyzed (a project just imported) could be a nested loop scanning one set per row of the other."""
    if where.reads_samples or not any(sample_set.scoped for sample_set in where.sets):
        return None
    intersection = " INTERSECT ".join(
        f"SELECT t.sample_id FROM {sample_set.table} t WHERE {sample_set.over('t')}" for sample_set in where.sets
    )
    return f"SELECT count(*) FROM ({intersection}) matches"


def count_sql(where: Where, mode: TotalMode, offset: int) -> tuple[str, list[Any], int | None]:
    """The count query and the cap it stops at (None: exact). The cap starts past `offset`, so a page
    deep into the results still gets a total beyond itself."""
    if mode == "exact":
        return sets_count_sql(where) or f"SELECT count(*) FROM samples s WHERE {where.sql}", where.params, None
    cap = offset + TOTAL_CAP
    params = [*where.params, cap]
    return (
        f"SELECT count(*) FROM (SELECT 1 FROM samples s WHERE {where.sql} LIMIT ${len(params)}) capped",
        params,
        cap,
    )


# How a search query is planned (docs/decisions.md, "Search"): for these very values (a generic plan
# cannot tell a rare name pattern from a common one); without parallel workers or JIT, whose start-up
# costs more than a page takes; random reads priced as the memory reads they mostly are, but every row
# an ordered index walk passes priced as a read of its own (a small effective_cache_size), so the
# planner walks the sort order only when matches are dense and otherwise collects and sorts them. A
# count of a frequent class over a million samples hashes ~200,000 sample ids: with work_mem at its
# default 4 MB it spills to disk. They are the settings of search's own connections, so a query is one
# round trip to Postgres.
PLANNER_SETTINGS = {
    "plan_cache_mode": "force_custom_plan",
    "jit": "off",
    "max_parallel_workers_per_gather": "0",
    "random_page_cost": "1.1",
    "effective_cache_size": "128MB",
    "work_mem": "16MB",
    "default_transaction_read_only": "on",
}
SEARCH_DB = StateKey("search connections", asyncpg.Pool)


async def nothing_to_reset(conn: asyncpg.Connection) -> None:
    """Searches change no session state (HNSW settings are SET LOCAL), so a connection goes back to the
    pool without asyncpg's reset query, a round trip per search."""


async def search_connections(rt: Runtime) -> AsyncIterator[None]:
    """A pool of connections that carry the planner settings, beside the catalog's own."""
    pool = await db.connect_pool(
        rt.settings.database_url, rt.service.name, rt.settings.db_pool_max, PLANNER_SETTINGS, nothing_to_reset
    )
    rt.state[SEARCH_DB] = pool
    rt.state[PROJECT_SHARES] = ProjectShares()
    try:
        yield
    finally:
        await pool.close()


# HNSW scans go on past their first `ef_search` candidates while too few pass the filter, returning them in
# roughly nearest-first order (callers sort what they keep).
HNSW_SETTINGS = "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {ef_search}"


async def read(rt: Runtime, sql: str, params: list[Any], ef_search: int = 0) -> list[asyncpg.Record]:
    """Rows of `sql` under the planner settings of a search (and of an HNSW scan when `ef_search`)."""
    pool = rt.state[SEARCH_DB]
    if not ef_search:
        return await pool.fetch(sql, *params)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(HNSW_SETTINGS.format(ef_search=ef_search))
        return await conn.fetch(sql, *params)


async def find(
    rt: Runtime, where: Where, sort: Sort, limit: int, cursor: str | None, offset: int, total: TotalMode
) -> SamplePage:
    """A page of what `where` matches and, when asked, its total (counted alongside the page)."""
    if cursor is not None and offset:
        raise invalid("page with either cursor or offset, not both", path="$.offset")
    await resolve(rt, where)
    if cursor is not None:
        decode_cursor(cursor, sort)  # a cursor this API did not return is refused before any query runs
    if total == "none":
        rows, counted, cap = await page_rows(rt, where, sort, cursor, limit, offset), None, None
    else:
        count, count_params, cap = count_sql(where, total, offset)
        rows, counts = await asyncio.gather(
            page_rows(rt, where, sort, cursor, limit, offset), read(rt, count, count_params, where.ef_search)
        )
        counted = counts[0][0]
    items = from_rows(Sample, rows[:limit])
    next_cursor = encode_cursor(sort, items[-1]) if len(rows) > limit else None
    return SamplePage(
        items=items,
        next_cursor=next_cursor,
        total=counted,
        total_is_exact=counted is not None and (cap is None or counted < cap),
    )


async def checked_filter(rt: Runtime, project_id: uuid.UUID, flt: SampleFilter, path: str = "$") -> Where:
    """`flt` compiled, and what only the database knows checked: datasets it names exist (else 404), and
    its similar condition's space and query vector (resolved)."""
    where = compile_filter(project_id, flt, path)
    if flt.dataset_ids:
        await require_datasets(rt, project_id, flt.dataset_ids, f"{path}.dataset_ids")
    await resolve(rt, where)
    return where


async def require_datasets(rt: Runtime, project_id: uuid.UUID, dataset_ids: list[str], path: str) -> None:
    """A dataset id that is not one of the project's is a 404 rather than an empty result."""
    ids = [parse_uuid(d, "dataset", path=f"{path}[{i}]") for i, d in enumerate(dataset_ids)]
    known = {
        row["id"]
        for row in await rt.db.fetch(
            "SELECT id FROM datasets WHERE project_id = $1 AND id = ANY($2::uuid[])", project_id, ids
        )
    }
    require_all("dataset", ids, known, path)


def project_uuid(project_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(project_id)
    except ValueError:
        raise not_found("project", project_id) from None


@ANSWERS(subjects.SEARCH_SAMPLES)
async def search(rt: Runtime, request: SearchSamples, ctx: RequestContext) -> SamplePage:
    query: SearchQuery = request.query
    where = await checked_filter(rt, project_uuid(request.project_id), query)
    return await find(rt, where, query.sort, query.limit, query.cursor, query.offset, query.total)


@ANSWERS(subjects.COUNT_SAMPLES)
async def count(rt: Runtime, request: CountSamples, ctx: RequestContext) -> SampleCount:
    """The search's exact total alone: one count(*) over what the filter's indexes find, no rows read."""
    where = await checked_filter(rt, project_uuid(request.project_id), request.filter)
    sql, params, _ = count_sql(where, "exact", 0)
    return SampleCount(count=(await read(rt, sql, params, where.ef_search))[0][0])


def in_view(where: Where, view_id: uuid.UUID) -> None:
    """Restrict to the samples of an item view."""
    where.add(
        f"EXISTS (SELECT 1 FROM saved_view_items v WHERE v.view_id = {where.param(view_id, 'uuid')} "
        "AND v.sample_id = s.id)"
    )
