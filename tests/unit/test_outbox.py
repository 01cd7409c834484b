"""What the outbox refuses before it writes anything: a message of another type than its subject carries."""

from __future__ import annotations

import pytest

from proto import subjects
from proto.releases import BuildExport, LabelImportJob
from shared import outbox


async def test_a_job_of_the_wrong_type_is_refused_naming_the_types_its_subject_carries() -> None:
    # RELEASE_JOB carries a union of tagged structs, which has no __name__ of its own.
    wrong = LabelImportJob(import_id="00000000-0000-0000-0000-000000000001", step="images")
    with pytest.raises(TypeError, match=r"carries BuildRelease \| BuildExport, not LabelImportJob"):
        await outbox.submit_job(None, subjects.RELEASE_JOB, wrong, "job-1")  # refused before the connection is used


async def test_an_event_of_the_wrong_type_is_refused_naming_the_type_its_subject_carries() -> None:
    wrong = BuildExport(export_id="00000000-0000-0000-0000-000000000001")
    with pytest.raises(TypeError, match="carries Project, not BuildExport"):
        await outbox.emit(None, subjects.PROJECT_CREATED, wrong, None)
