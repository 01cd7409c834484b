"""The Segments.ai dialect's pure rules: asset upload policies, label translation, status steps and the
error texts its SDK reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from proto.annotation import BoxShape, Label, LabelObject, PolygonShape
from proto.schema import LabelClass, LabelSchema
from services.gateway.dialects.segments import policy
from services.gateway.dialects.segments.common import error_body
from services.gateway.dialects.segments.labels import InLabel, Schema, label_attributes, status_steps, to_loupe
from shared.errors import LoupeError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SECRET = "a long random secret"


def form(**changes: str) -> dict[str, str]:
    return {**policy.post_fields(SECRET, "org/asset/a.png", "image/png", 100, NOW), **changes}


def test_a_policy_loupe_signed_passes_within_its_hour_and_size() -> None:
    fields = form()
    assert sorted(fields) == sorted(["acl", "Content-Type", "key", "x-amz-algorithm", "x-amz-credential",
                                     "x-amz-date", "policy", "x-amz-signature"])
    policy.check(SECRET, fields, 100, NOW + timedelta(minutes=59))


@pytest.mark.parametrize(("changes", "size", "later", "field"), [
    ({"key": "org/other/a.png"}, 10, 0, "key"),
    ({"Content-Type": "text/html"}, 10, 0, "Content-Type"),
    ({"x-amz-signature": "0" * 64}, 10, 0, "x-amz-signature"),
    ({}, 10, 61, "policy"),
    ({}, 101, 0, "file"),
    ({}, 0, 0, "file"),
])
def test_a_tampered_expired_or_oversized_upload_is_refused(changes: dict, size: int, later: int, field: str) -> None:
    with pytest.raises(LoupeError) as refused:
        policy.check(SECRET, form(**changes), size, NOW + timedelta(minutes=later))
    assert refused.value.code == "forbidden" and refused.value.details["path"] == field


def test_a_policy_signed_under_another_secret_is_refused_and_no_secret_signs_nothing() -> None:
    with pytest.raises(LoupeError, match="signature"):
        policy.check("another secret", form(), 10, NOW)
    with pytest.raises(LoupeError, match="LOUPE_SECRETS_KEY") as unset:
        policy.post_fields("", "k", "image/png", 1, NOW)
    assert unset.value.code == "unavailable"


def label_class(class_id: str, name: str, order: int) -> LabelClass:
    return LabelClass(id=class_id, name=name, kind="object", color="#102030", order=order, description="",
                      external_id=None, keypoint_schema_id=None, extra={}, archived=False, version=1)


CAR, PERSON, TRUCK = ("00000000-0000-4000-8000-00000000000" + str(i) for i in range(1, 4))
SCHEMA = Schema(LabelSchema(version=1, label_classes=[label_class(CAR, "car", 1), label_class(PERSON, "person", 2),
                                                      label_class(TRUCK, "truck", 2)],
                            attributes=[], tag_groups=[], keypoint_schemas=[]))


def body(*annotations: dict) -> InLabel:
    return msgspec.convert({"attributes": {"format_version": "0.1", "annotations": list(annotations)}}, InLabel)


def test_a_vector_label_becomes_loupe_objects_and_reads_back() -> None:
    written = to_loupe(body({"id": 7, "category_id": 1, "type": "bbox", "points": [[9, 8], [1, 2]]},
                            {"id": 9, "category_id": 1, "type": "polygon", "points": [[0, 0], [4, 0], [4, 4]]}),
                       SCHEMA, "LABELED")
    assert written.status == "LABELED"
    assert [(str(o.class_id), o.shape) for o in written.objects] == [
        (CAR, BoxShape(box=(1, 2, 9, 8))), (CAR, PolygonShape(points=[(0, 0), (4, 0), (4, 4)]))]
    label = Label(project_id="p", sample_id="s", labelset="ground-truth", status="LABELED",
                  objects=[LabelObject(id=f"o{i}", class_id=CAR, shape=o.shape) for i, o in enumerate(written.objects)])
    assert label_attributes(label, SCHEMA)["annotations"] == [
        {"id": 1, "category_id": 1, "type": "bbox", "points": [[1, 2], [9, 8]], "attributes": {}},
        {"id": 2, "category_id": 1, "type": "polygon", "points": [[0, 0], [4, 0], [4, 4]], "attributes": {}}]


@pytest.mark.parametrize(("annotation", "path", "words"), [
    ({"category_id": 5, "type": "bbox", "points": [[0, 0], [1, 1]]}, "attributes.annotations[0].category_id",
     "not a category"),
    ({"category_id": 2, "type": "bbox", "points": [[0, 0], [1, 1]]}, "attributes.annotations[0].category_id",
     "distinct orders"),
    ({"category_id": 1, "type": "polygon", "points": [[0, 0], [1, 1]]}, "attributes.annotations[0].points",
     "at least 3"),
    ({"category_id": 1, "points": [[0, 0]]}, "attributes.annotations[0].type", "bbox, polygon"),
    ({"category_id": 1, "type": "bbox", "points": [[0, 0], [1, 1]], "attributes": {"colour": "red"}},
     "attributes.annotations[0].attributes.colour", "no attribute"),
])
def test_a_bad_annotation_names_its_field(annotation: dict, path: str, words: str) -> None:
    with pytest.raises(LoupeError) as refused:
        to_loupe(body(annotation), SCHEMA, "LABELED")
    assert refused.value.details["path"] == path and words in refused.value.message
    status, answer = error_body(refused.value)
    assert status == 400 and answer["detail"].startswith(path + ": ") and answer["field"] == path


def test_a_status_past_labeled_is_reached_through_it() -> None:
    assert status_steps("UNLABELED", "REVIEWED") == ("LABELED", "REVIEWED")
    assert status_steps("LABELED", "VERIFIED") == ("LABELED", "REVIEWED", "VERIFIED")
    assert status_steps("REVIEWED", "VERIFIED") == ("REVIEWED", "VERIFIED")
    assert status_steps("LABELED", "PRELABELED") == ("PRELABELED",)


def test_errors_carry_the_words_the_sdk_reads() -> None:
    assert error_body(LoupeError("not_found", "sample 'x' is gone"))[1]["detail"] == "sample 'x' is gone (not found)"
    status, forbidden = error_body(LoupeError("forbidden", "this needs the labeler role"))
    assert status == 403 and "do not have permission" in forbidden["detail"]
    assert error_body(LoupeError("unauthenticated", "unknown API key"))[0] == 401
