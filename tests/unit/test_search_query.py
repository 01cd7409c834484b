"""The pure part of sample search: filter documents compiled into parameterised SQL, and cursors."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from proto.samples import Sample
from proto.search import SearchQuery
from services.catalog import search
from shared.errors import LoupeError

PROJECT = uuid.uuid4()


def compile_body(body: dict) -> search.Where:
    return search.compile_filter(PROJECT, msgspec.convert(body, SearchQuery))


def failure(body: dict) -> LoupeError:
    with pytest.raises(LoupeError) as caught:
        compile_body(body)
    return caught.value


def test_an_empty_filter_is_only_the_project() -> None:
    where = compile_body({})
    assert (where.sql, where.params) == ("s.project_id = $1", [PROJECT])


def test_values_only_travel_as_parameters() -> None:
    hostile = "x'); DROP TABLE samples; --"
    where = compile_body({"name_contains": hostile, "external_ids": [hostile], "tags_any": [hostile],
                          "metadata": {"weather": [hostile, {"gte": hostile}]},
                          "labels": {"labelset": hostile, "classes": [{"class_id": hostile, "min": 1}]}})
    assert "DROP" not in where.sql and "'x'" not in where.sql
    assert any(isinstance(p, str) and hostile in p for p in where.params)


def test_plain_metadata_values_become_one_indexable_containment() -> None:
    where = compile_body({"metadata": {"camera.model": ["X1", {"in": ["X2", 3]}], "night": True}})
    assert where.conditions[1] == "s.metadata @> ANY($2::jsonb[])"
    assert where.params[1] == [{"camera": {"model": v}} for value in ("X1", "X2", 3) for v in (value, [value])]


@pytest.mark.parametrize("value", ["rainy", 3, 2.5, True, False])
def test_one_scalar_value_is_a_term_of_the_inverted_index(value: object) -> None:
    where = compile_body({"metadata": {"camera.model": value}})
    assert where.sql == (
        "s.project_id = $1 AND EXISTS (SELECT 1 FROM metadata_terms x WHERE x.sample_id = s.id AND "
        "x.project_id = $1 AND x.term = metadata_term($2::text[], $3::jsonb))"
    )
    assert where.params[1:] == [["camera", "model"], value]


@pytest.mark.parametrize("metadata", [
    {"a.b.c": "deeper than the terms go"},
    {"w": ["one", "of two"]},
    {"w": {"in": ["one", "of two"]}},
    {"w": {"eq": 1, "lt": 5}},
])
def test_other_metadata_conditions_read_the_sample(metadata: dict) -> None:
    where = compile_body({"metadata": metadata})
    assert where.sets == [] and where.reads_samples


def test_a_count_of_terms_and_classes_alone_reads_no_sample_row() -> None:
    where = compile_body({"metadata": {"weather": "rainy"}, "labels": {"classes": [{"class_id": "car", "min": 1}]}})
    sql, params, cap = search.count_sql(where, "exact", 0)
    assert sql == (
        "SELECT count(*) FROM (SELECT t.sample_id FROM metadata_terms t WHERE t.project_id = $1 AND "
        "t.term = metadata_term($2::text[], $3::jsonb) INTERSECT SELECT t.sample_id FROM label_class_counts t WHERE "
        "t.labelset = $4::text AND t.class_id = $5::text AND t.count >= $6::int4) matches"
    )
    assert (params, cap) == ([PROJECT, ["weather"], "rainy", "ground-truth", "car", 1], None)


@pytest.mark.parametrize("body", [
    {"labels": {"classes": [{"class_id": "car", "min": 1}]}},  # class ids alone do not name the project
    {"metadata": {"weather": "rainy"}, "statuses": ["NEW"]},
    {"metadata": {"weather": "rainy"}, "labels": {"classes": [{"class_id": "car", "max": 0}]}},
])
def test_a_count_with_any_other_condition_counts_samples(body: dict) -> None:
    sql, _, _ = search.count_sql(compile_body(body), "exact", 0)
    assert sql.startswith("SELECT count(*) FROM samples s WHERE s.project_id = $1 AND ")


def test_ranges_compare_only_values_of_their_type_and_alternatives_are_ored() -> None:
    where = compile_body({"metadata": {"speed": [1, {"gt": 10, "lte": 20}], "day": {"gte": "2024-01-01"}}})
    speed, day = where.conditions[1:]
    assert speed.startswith("(s.metadata @> ANY($2::jsonb[]) OR (") and " OR " in speed
    assert "jsonb_typeof(s.metadata #> $3::text[]) = 'number'" in speed
    assert "> $4::float8" in speed and "<= $5::float8" in speed
    assert "= 'string'" in day and 'COLLATE "C" >= $7::text' in day
    assert where.params[2:5] == [["speed"], 10.0, 20.0]


def test_exists() -> None:
    where = compile_body({"metadata": {"a.b": {"exists": True}, "c": {"exists": False}}})
    assert where.conditions[1:] == ["s.metadata #> $2::text[] IS NOT NULL", "s.metadata #> $3::text[] IS NULL"]
    assert where.params[1:] == [["a", "b"], ["c"]]


@pytest.mark.parametrize(("metadata", "path"), [
    ({"w": {}}, "$.metadata.w"),
    ({"w": []}, "$.metadata.w"),
    ({"w": None}, "$.metadata.w"),
    ({"w": {"near": 1}}, "$.metadata.w"),
    ({"w": [1, {"gt": [1]}]}, "$.metadata.w[1].gt"),
    ({"w": [1, {}]}, "$.metadata.w[1]"),
    ({"w": {"gt": 1, "lt": "z"}}, "$.metadata.w"),
    ({"w": {"in": []}}, "$.metadata.w.in"),
    ({"w x": 1}, "$.metadata.w x"),
    ({".w": 1}, "$.metadata..w"),
    ({"a.b.c.d.e.f.g.h.i": 1}, "$.metadata.a.b.c.d.e.f.g.h.i"),
    ({f"k{i}": 1 for i in range(51)}, "$.metadata"),
])
def test_malformed_metadata_is_invalid_at_its_key(metadata: dict, path: str) -> None:
    error = failure({"metadata": metadata})
    assert (error.code, error.details["path"]) == ("invalid", path)


def test_like_wildcards_are_literal() -> None:
    assert search.like_pattern("100%_a\\b") == "%100\\%\\_a\\\\b%"


def test_assignment_filters() -> None:
    user = str(uuid.uuid4())
    where = compile_body({"labeler": user, "reviewer": "unassigned"})
    assert where.conditions[1:] == ["s.labeler_id = $2::uuid", "s.reviewer_id IS NULL"]
    assert where.params[1] == uuid.UUID(user)
    assert failure({"reviewer": "bob"}).details["path"] == "$.reviewer"


def test_label_counts_are_semi_joins_and_absence_an_anti_join() -> None:
    where = compile_body({"labels": {"classes": [{"class_id": "car", "min": 2}, {"class_id": "dog", "max": 0},
                                                 {"class_id": "cat", "min": 1, "max": 3}, {"class_id": "x", "min": 0}]}})
    (absent,) = where.conditions[1:]
    at_least, between = where.sets_sql("s")
    assert at_least.startswith("EXISTS (SELECT 1 FROM label_class_counts x") and "x.count >= $4::int4" in at_least
    assert absent.startswith("NOT EXISTS (") and "c.count > $6::int4" in absent
    assert "x.count >= $9::int4" in between and "x.count <= $7::int4" in between
    assert where.params[1] == "ground-truth"


@pytest.mark.parametrize("labels", [{}, {"classes": [{"class_id": "car", "min": 0}]}])
def test_a_label_filter_that_holds_for_every_sample_adds_no_unused_parameter(labels: dict) -> None:
    # Postgres cannot type a parameter no condition mentions: such a search answered 500.
    where = compile_body({"labels": labels})
    assert (where.sql, where.params) == ("s.project_id = $1", [PROJECT])


def test_unlabeled_status_includes_samples_without_a_summary() -> None:
    (condition,) = compile_body({"labels": {"status": ["UNLABELED", "LABELED"]}}).conditions[1:]
    assert " OR NOT EXISTS (SELECT 1 FROM label_summaries l" in condition
    (condition,) = compile_body({"labels": {"status": ["LABELED"]}}).conditions[1:]
    assert "NOT EXISTS" not in condition


@pytest.mark.parametrize(("classes", "index"), [
    ([{"class_id": "car"}], 0),
    ([{"class_id": "car", "min": 1}, {"class_id": "car", "min": 4, "max": 3}], 1),
])
def test_class_counts_that_cannot_match_are_invalid(classes: list, index: int) -> None:
    assert failure({"labels": {"classes": classes}}).details["path"] == f"$.labels.classes[{index}]"


def sample(**changes: object) -> Sample:
    now = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    base = dict(id=str(uuid.uuid4()), project_id=str(PROJECT), dataset_id=str(uuid.uuid4()), name="a.jpg",
                external_id=None, content_hash=None, media_url="https://x/a.jpg", format=None, width=1, height=1,
                size_bytes=None, metadata={}, tags=[], priority=0.1 + 0.2, status="NEW", labeler_id=None,
                reviewer_id=None, version=1, created_at=now, updated_at=now)
    return Sample(**{**base, **changes})


@pytest.mark.parametrize("sort", ["-priority", "created_at", "-updated_at", "name"])
def test_cursors_round_trip_exactly(sort: str) -> None:
    last = sample()
    value, ident = search.decode_cursor(search.encode_cursor(sort, last), sort)
    assert (value, str(ident)) == (getattr(last, sort.lstrip("-")), last.id)


def test_a_cursor_continues_only_its_own_sort() -> None:
    cursor = search.encode_cursor("name", sample())
    with pytest.raises(LoupeError, match="sorted by name"):
        search.decode_cursor(cursor, "-name")
    with pytest.raises(LoupeError, match="pass next_cursor"):
        search.decode_cursor("bm9wZQ==", "name")
    forged = base64.urlsafe_b64encode(msgspec.json.encode(["-priority", "high", str(uuid.uuid4())])).decode()
    with pytest.raises(LoupeError, match="pass next_cursor"):
        search.decode_cursor(forged, "-priority")


def test_keyset_pages_compare_the_sort_key_and_id_in_the_sort_direction() -> None:
    where = compile_body({"statuses": ["NEW"]})
    sql, params = search.page_sql(where, "-priority", search.encode_cursor("-priority", sample()), 50, 0)
    assert "AND (s.priority, s.id) < ($3::float8, $4::uuid) ORDER BY s.priority DESC, s.id DESC LIMIT $5 OFFSET $6" in sql
    assert params[2] == 0.1 + 0.2 and params[4:] == [51, 0]
    sql, _ = search.page_sql(where, "name", None, 10, 20)
    # The page's ids first, then its rows, in the same order.
    assert sql.endswith("ORDER BY s.name ASC, s.id ASC LIMIT $3 OFFSET $4) page JOIN samples s ON s.id = page.id "
                        "ORDER BY s.name ASC, s.id ASC")


def test_capped_totals_stop_past_the_offset() -> None:
    where = compile_body({})
    sql, params, cap = search.count_sql(where, "capped", 500)
    assert "LIMIT $2" in sql and params[-1] == cap == 500 + search.TOTAL_CAP
    sql, params, cap = search.count_sql(where, "exact", 500)
    assert cap is None and "LIMIT" not in sql
