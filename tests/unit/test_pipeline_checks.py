"""What a pipeline may name on this server, checked before it is stored: folders only under the server's
pipeline folders, and MQTT only where the server has a broker."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from proto.pipelines import FolderSink, FolderSource, MqttSink, NatsSink
from services.inference.pipelines import check_sinks, check_source
from shared.errors import LoupeError
from shared.settings import Settings


def runtime(**settings: Any) -> Any:
    return SimpleNamespace(settings=Settings(**settings))


def test_an_mqtt_sink_needs_the_servers_broker() -> None:
    sinks = [NatsSink(subject="a"), MqttSink(topic="cams/gate")]
    with pytest.raises(LoupeError) as refused:
        check_sinks(runtime(), sinks)
    assert refused.value.details["path"] == "$.sinks[1]" and "LOUPE_PIPELINE_MQTT_URL" in refused.value.message
    check_sinks(runtime(pipeline_mqtt_url="mqtt://127.0.0.1:1883"), sinks)


def test_folders_must_lie_under_a_pipeline_folder(tmp_path: Path) -> None:
    rt = runtime(pipeline_folders=f"/nonexistent-root,{tmp_path}")
    (tmp_path / "in").mkdir()
    check_source(rt, FolderSource(path=str(tmp_path / "in")))
    check_sinks(rt, [FolderSink(path=str(tmp_path / "out" / "new"))])  # made when the first frame comes
    for path in ("/etc", str(tmp_path / ".." / "elsewhere"), "relative/path", "nul\x00byte"):
        with pytest.raises(LoupeError) as refused:
            check_sinks(rt, [FolderSink(path=path)])
        assert refused.value.details["path"] == "$.sinks[0].path"
    with pytest.raises(LoupeError) as missing:
        check_source(rt, FolderSource(path=str(tmp_path / "absent")))
    assert "create it first" in missing.value.message
    with pytest.raises(LoupeError) as nowhere:
        check_source(runtime(), FolderSource(path=str(tmp_path / "in")))
    assert "LOUPE_PIPELINE_FOLDERS" in nowhere.value.message
