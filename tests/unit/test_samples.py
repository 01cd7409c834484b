"""The pure parts of datasets and samples: the status workflow table, merge patches, bulk-create rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import get_args

import pytest

from proto.catalog import ROLES
from proto.samples import SAMPLE_NAMESPACE, NewSample, Sample, SampleChanges, SampleStatus, sample_id_for
from services.catalog.sample_status import TRANSITIONS, check_transition
from services.catalog.samples import merge_patch, new_rows, next_values
from shared.errors import LoupeError

STATUSES = set(get_args(SampleStatus))
DATASET = "0b0e7b4e-8a3c-4b47-9d1c-5d7f2f9f6c10"
HASH = "ab" * 32


def test_the_table_covers_every_status_and_names_only_real_statuses_and_roles() -> None:
    assert set(TRANSITIONS) == STATUSES
    for current, allowed in TRANSITIONS.items():
        assert set(allowed) <= STATUSES and current not in allowed
        assert set(allowed.values()) <= set(ROLES)


def test_every_status_is_reachable_from_new_and_can_lead_back_to_work() -> None:
    reached, frontier = {"NEW"}, ["NEW"]
    while frontier:
        for following in TRANSITIONS[frontier.pop()]:
            if following not in reached:
                reached.add(following)
                frontier.append(following)
    assert reached == STATUSES
    # Nothing is a dead end: a finished sample can always be reopened.
    assert all(TRANSITIONS[status] for status in STATUSES)


@pytest.mark.parametrize(("current", "requested", "role"), [
    ("NEW", "IN_PROGRESS", "labeler"), ("IN_PROGRESS", "TO_REVIEW", "labeler"), ("NEW", "SKIPPED", "labeler"),
    ("SKIPPED", "IN_PROGRESS", "labeler"), ("TO_REVIEW", "DONE", "reviewer"), ("TO_REVIEW", "IN_PROGRESS", "reviewer"),
    ("DONE", "COMPLETED", "manager"), ("NEW", "AUTO_LABELLED", "admin"), ("DONE", "DONE", "viewer"),
    ("TO_REVIEW", "DONE", None),
])
def test_allowed_steps(current: SampleStatus, requested: SampleStatus, role: str | None) -> None:
    check_transition(current, requested, role, "$.status")


@pytest.mark.parametrize(("current", "requested", "role"), [
    ("TO_REVIEW", "DONE", "labeler"), ("TO_REVIEW", "IN_PROGRESS", "labeler"), ("DONE", "COMPLETED", "reviewer"),
    ("NEW", "IN_PROGRESS", "viewer"),
])
def test_a_role_too_weak_for_an_allowed_step_is_403(current: SampleStatus, requested: SampleStatus, role: str) -> None:
    with pytest.raises(LoupeError) as error:
        check_transition(current, requested, role, "$.items[2].status")
    assert error.value.code == "forbidden" and error.value.details["path"] == "$.items[2].status"
    assert error.value.details["role"] == role


def test_a_step_the_table_does_not_allow_is_409_listing_the_allowed_ones() -> None:
    with pytest.raises(LoupeError) as error:
        check_transition("NEW", "COMPLETED", "admin", "$.status")
    assert error.value.code == "conflict"
    assert error.value.details["allowed"] == list(TRANSITIONS["NEW"])
    assert "NEW" in error.value.message and "COMPLETED" in error.value.message


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert merge_patch({"a": [1]}, {"a": [2, 3]}) == {"a": [2, 3]}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}
    assert merge_patch({"a": "b"}, {"a": None, "n": 1}) == {"n": 1}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}  # not changed in place


def test_sample_ids_are_derived_from_dataset_and_hash() -> None:
    assert sample_id_for(DATASET, HASH) == sample_id_for(DATASET.upper(), HASH.upper())
    assert sample_id_for(DATASET, HASH) == str(uuid.uuid5(SAMPLE_NAMESPACE, f"{DATASET.lower()}:{HASH.lower()}"))
    assert sample_id_for(DATASET, HASH) != sample_id_for(str(uuid.uuid4()), HASH)
    assert uuid.UUID(sample_id_for(DATASET, HASH)).version == 5


def test_new_rows_derive_or_keep_ids_and_refuse_items_that_clash() -> None:
    chosen = uuid.uuid4()
    rows = new_rows(DATASET, [NewSample(content_hash=HASH, name=" a.jpg ", width=2, height=3),
                              NewSample(id=chosen, content_hash="cd" * 32, name="b", width=2, height=3),
                              NewSample(media_url="https://example.com/c.jpg", name="c", width=2, height=3)])
    assert rows[0].id == sample_id_for(DATASET, HASH) and rows[0].name == "a.jpg"
    assert rows[1].id == str(chosen) and uuid.UUID(rows[2].id)

    for items, path in (
            ([NewSample(name="x", width=1, height=1)], "$.items[0]"),
            ([NewSample(content_hash=HASH, media_url="https://x.org/a", name="x", width=1, height=1)], "$.items[0]"),
            ([NewSample(content_hash=HASH, name="x", width=1, height=1)] * 2, "$.items[1].content_hash"),
            ([NewSample(id=chosen, content_hash=HASH, name="x", width=1, height=1),
              NewSample(id=chosen, content_hash="cd" * 32, name="y", width=1, height=1)], "$.items[1].id")):
        with pytest.raises(LoupeError) as error:
            new_rows(DATASET, items)
        assert error.value.code == "invalid" and error.value.details["path"] == path


def sample(**fields: object) -> Sample:
    now = datetime.now(UTC)
    values = dict(id=str(uuid.uuid4()), project_id="p", dataset_id=DATASET, name="a", external_id=None,
                  content_hash=HASH, media_url=None, format="jpeg", width=1, height=1, size_bytes=None,
                  metadata={"camera": "left", "gps": {"lat": 1}}, tags=[], priority=0.0, status="NEW",
                  labeler_id=None, reviewer_id=None, version=3, created_at=now, updated_at=now)
    return Sample(**{**values, **fields})


def test_next_values_keeps_only_real_changes() -> None:
    current = sample()
    assert next_values(current, SampleChanges(name="a", tags=[], version=3), None, "$") == {}
    labeler = uuid.uuid4()
    assert next_values(current, SampleChanges(metadata_patch={"gps": None, "iso": 100}, labeler_id=labeler,
                                              status="IN_PROGRESS"), "labeler", "$") == {
        "metadata": {"camera": "left", "iso": 100}, "labeler_id": str(labeler), "status": "IN_PROGRESS"}


def test_next_values_refuses_a_stale_version_and_metadata_twice() -> None:
    with pytest.raises(LoupeError) as error:
        next_values(sample(), SampleChanges(name="b", version=2), None, "$.items[4]")
    assert error.value.code == "conflict" and error.value.details["path"] == "$.items[4].version"
    assert error.value.details["current_version"] == 3
    with pytest.raises(LoupeError) as error:
        next_values(sample(), SampleChanges(metadata={}, metadata_patch={}), None, "$")
    assert error.value.details["path"] == "$.metadata_patch"
