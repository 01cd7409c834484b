"""Label schema rules without a database: building items, checking them, matching a PUT document."""

import msgspec
import pytest

from proto.schema import (AttributeSpec, AttributeValue, KeypointSchemaSpec, LabelClassSpec, SchemaDocument,
                          TagClassSpec, TagGroupSpec, UpdateAttribute)
from services.catalog import schema_replace, schema_rules as rules
from shared.errors import LoupeError


def empty() -> rules.Edit:
    return rules.Edit(0, {kind: {} for kind in rules.KINDS})


def committed(edit: rules.Edit) -> rules.Edit:
    """What the next request would load after `edit` was saved."""
    edit.finish()
    return rules.Edit(edit.version + 1, {kind: dict(items) for kind, items in edit.items.items()})


def error(call, *args, **kwargs) -> LoupeError:
    with pytest.raises(LoupeError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_values_keep_their_ids_and_removed_ones_are_archived() -> None:
    current = [AttributeValue(id="1", value="red", archived=False),
               AttributeValue(id="2", value="blue", archived=False)]
    values = rules.build_values(["Red", msgspec.convert({"id": "2", "value": "navy"}, rules.AttributeValueSpec),
                                 "green"], current, "$")
    assert [(v.id, v.value, v.archived) for v in values[:2]] == [("1", "Red", False), ("2", "navy", False)]
    assert values[2].value == "green" and values[2].id not in ("1", "2")
    assert [(v.value, v.archived) for v in rules.build_values(["navy"], current, "$")] == \
        [("navy", False), ("red", True), ("blue", True)]  # "navy" is new: "blue" (id 2) was not named
    assert error(rules.build_values, ["a", "A"], [], "$.x").details["path"] == "$.x.values[1]"


@pytest.mark.parametrize(("spec", "path"), [
    ({"name": "a", "type": "SELECTION"}, "$.values"),
    ({"name": "a", "type": "INT", "min": 1, "max": 0}, "$.min"),
    ({"name": "a", "type": "INT", "max": 2.5}, "$.max"),
    ({"name": "a", "type": "INT", "default": 1.5}, "$.default"),
    ({"name": "a", "type": "FLOAT", "max": 1, "default": 2}, "$.default"),
    ({"name": "a", "type": "BOOL", "default": 1}, "$.default"),
    ({"name": "a", "type": "TEXT", "default": True}, "$.default"),
    ({"name": "a", "type": "MULTIPLE_SELECTION", "values": ["x"], "default": ["x", "x"]}, "$.default"),
    ({"name": "a", "type": "BOOL", "min": 0}, "$.min"),
])
def test_attribute_rules(spec: dict, path: str) -> None:
    edit = empty()
    problem = error(edit.put, "attribute", msgspec.convert(spec, AttributeSpec), None, "$")
    assert problem.code == "invalid" and problem.details["path"] == path


def test_defaults_are_normalised_to_the_type() -> None:
    edit = empty()
    number = edit.put("attribute", AttributeSpec(name="n", type="FLOAT", min=0, default=1), None, "$")
    assert (number.min, number.default) == (0.0, 1.0) and isinstance(number.default, float)
    whole = edit.put("attribute", AttributeSpec(name="w", type="INT", max=10.0, default=3.0), None, "$")
    assert (whole.max, whole.default) == (10, 3) and isinstance(whole.default, int)
    multi = edit.put("attribute", AttributeSpec(name="m", type="MULTIPLE_SELECTION", values=["a"], default="a"),
                     None, "$")
    assert multi.default == ["a"]


def test_skeleton_rules() -> None:
    edit = empty()
    for skeleton, path in (([(0, 3)], "$.skeleton[0][1]"), ([(-1, 0)], "$.skeleton[0][0]"),
                           ([(2, 2)], "$.skeleton[0]"), ([(0, 1), (1, 0)], "$.skeleton[1]")):
        spec = KeypointSchemaSpec(name="k", keypoints=["a", "b", "c"], skeleton=skeleton)
        assert error(edit.put, "keypoint_schema", spec, None, "$").details["path"] == path
    schema = edit.put("keypoint_schema", KeypointSchemaSpec(name="k", keypoints=["a", "b"]), None, "$")
    shorter = KeypointSchemaSpec(name="k", keypoints=["a"])
    assert error(edit.put, "keypoint_schema", shorter, schema, "$").details["path"] == "$.keypoints"


def test_a_clash_inside_one_request_is_reported_at_the_later_item() -> None:
    edit = empty()
    schema_replace.replace_schema(edit, SchemaDocument(
        label_classes=[LabelClassSpec(name="a"), LabelClassSpec(name="b"), LabelClassSpec(name="A")]))
    problem = error(edit.finish)
    assert problem.details["path"] == "$.label_classes[2].name"
    assert "$.label_classes[0]" in problem.message


def test_put_matches_by_id_then_by_name_and_archives_the_rest() -> None:
    edit = empty()
    schema_replace.replace_schema(edit, SchemaDocument(
        label_classes=[LabelClassSpec(name="car"), LabelClassSpec(name="bike"), LabelClassSpec(name="bus")],
        tag_groups=[TagGroupSpec(name="light", tags=[TagClassSpec(name="day"), TagClassSpec(name="night")])]))
    edit = committed(edit)
    car, bike, bus = sorted(edit.items["label_class"].values(), key=rules.sort_key)
    schema_replace.replace_schema(edit, SchemaDocument(
        label_classes=[LabelClassSpec(id=car.id, name="bike"), LabelClassSpec(id=bike.id, name="car"),
                       LabelClassSpec(name="BUS", color="#000000"), LabelClassSpec(name="truck")],
        tag_groups=[TagGroupSpec(name="Light", tags=[TagClassSpec(name="DAY")])]))
    changes = {(c.kind, c.new.name): c for c in edit.finish()}
    assert changes["label_class", "bike"].new.id == car.id and changes["label_class", "car"].new.id == bike.id
    assert changes["label_class", "BUS"].new.id == bus.id and changes["label_class", "BUS"].new.version == 2
    assert changes["label_class", "truck"].old is None and changes["label_class", "truck"].new.order == 3
    assert changes["tag_class", "night"].new.archived and changes["tag_class", "DAY"].new.version == 2
    assert changes["tag_group", "Light"].old is not None


def test_attribute_type_and_subject_changes_are_limited() -> None:
    edit = empty()
    current = edit.put("attribute", AttributeSpec(name="a", type="SELECTION", values=["x"]), None, "$")
    for changes, path in (({"type": "TEXT", "values": []}, "$.type"), ({"subject": "IMAGE"}, "$.subject")):
        spec = rules.spec_of("attribute", current, msgspec.convert(changes, UpdateAttribute))
        assert error(edit.put, "attribute", spec, current, "$").details["path"] == path
    spec = rules.spec_of("attribute", current, UpdateAttribute(type="MULTIPLE_SELECTION"))
    assert edit.put("attribute", spec, current, "$").type == "MULTIPLE_SELECTION"


def test_default_colors_follow_order() -> None:
    edit = empty()
    first = edit.put("label_class", LabelClassSpec(name="a"), None, "$")
    second = edit.put("label_class", LabelClassSpec(name="b"), None, "$")
    assert (first.color, second.color) == rules.PALETTE[:2]
