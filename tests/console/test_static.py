"""The console's lists that mirror the API's, kept the same without a browser."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

from proto.inference import FINISHED_STATES, JobKind
from proto.releases import EXPORT_FORMATS
from proto.samples import SampleStatus
from proto.schema import AttributeType
from proto.training import Family

STATIC = Path(__file__).parents[2] / "services/gateway/console/static"


def js_list(file: str, name: str) -> list[str]:
    found = re.search(rf"const {name} = (\[[^\]]*\]);", (STATIC / file).read_text())
    assert found, f"{name} in {file}"
    return json.loads(found.group(1))


def test_export_formats_are_the_apis() -> None:
    assert sorted(js_list("releases.js", "FORMATS")) == sorted(EXPORT_FORMATS)


def test_sample_statuses_are_the_apis() -> None:
    assert js_list("filters.js", "SAMPLE_STATUSES") == list(typing.get_args(SampleStatus))


def test_attribute_types_are_the_apis() -> None:
    assert js_list("schema.js", "ATTRIBUTE_TYPES") == list(typing.get_args(AttributeType))


def test_inference_lists_are_the_apis() -> None:
    assert js_list("inference.js", "KINDS") == list(typing.get_args(JobKind))
    assert sorted(js_list("jobs.js", "FAMILIES")) == sorted(typing.get_args(Family))
    assert sorted(js_list("inference.js", "FINISHED_STATES")) == sorted(FINISHED_STATES)
