"""The schemas an annotation process holds in memory between writes (services/annotation/schema_facts.py)."""

import uuid

from proto.schema import LabelSchema
from services.annotation.schema_facts import Held, Known
from services.annotation.validation import SchemaIndex

EMPTY = SchemaIndex.from_schema(LabelSchema(version=0, label_classes=[], attributes=[], tag_groups=[],
                                            keypoint_schemas=[]))


def known(version: int) -> Known:
    return Known(org_id="org", version=version, schema=EMPTY)


def test_a_schema_is_handed_out_for_its_own_version_and_older_ones_only() -> None:
    held, project = Held(), uuid.uuid4()
    assert held.get(project, 0) is None
    held.put(project, known(3))
    assert held.get(project, 2) == held.get(project, 3) == known(3)
    assert held.get(project, 4) is None
    assert held.get(uuid.uuid4(), 0) is None


def test_an_older_version_never_replaces_a_newer_one() -> None:
    held, project = Held(), uuid.uuid4()
    held.put(project, known(5))
    held.put(project, known(4))
    assert held.get(project, 5) == known(5)
    held.put(project, known(6))
    assert held.get(project, 6) == known(6)


def test_the_project_used_least_recently_goes_first() -> None:
    held = Held(capacity=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    held.put(first, known(1))
    held.put(second, known(1))
    held.put(first, known(1))  # used again: now `second` is the oldest
    held.put(third, known(1))
    assert held.get(second, 0) is None
    assert held.get(first, 1) == held.get(third, 1) == known(1)
