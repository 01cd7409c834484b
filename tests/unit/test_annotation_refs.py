import uuid

from services.annotation.refs import new_ids


def test_new_ids_are_distinct_version_4_uuids_in_canonical_form() -> None:
    ids = new_ids(2000)
    assert len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    assert new_ids(0) == []
