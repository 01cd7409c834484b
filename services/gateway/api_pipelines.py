"""REST operations for live pipelines: managers change them, viewers read them and their metrics."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

PIPELINES = "/v1/projects/{project_id}/pipelines"
PIPELINE = PIPELINES + "/{pipeline_id}"

# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("POST", PIPELINES, "createPipeline", subjects.CREATE_PIPELINE, tag="pipelines", role="manager", status=201,
          body="pipeline"),
    route("GET", PIPELINES, "listPipelines", subjects.LIST_PIPELINES, tag="pipelines", role="viewer"),
    route("GET", PIPELINE, "getPipeline", subjects.GET_PIPELINE, tag="pipelines", role="viewer"),
    route("PATCH", PIPELINE, "updatePipeline", subjects.UPDATE_PIPELINE, tag="pipelines", role="manager",
          body="changes"),
    route("DELETE", PIPELINE, "deletePipeline", subjects.DELETE_PIPELINE, tag="pipelines", role="manager"),
    route("POST", PIPELINE + "/enable", "enablePipeline", subjects.ENABLE_PIPELINE, tag="pipelines", role="manager"),
    route("POST", PIPELINE + "/disable", "disablePipeline", subjects.DISABLE_PIPELINE, tag="pipelines",
          role="manager"),
    route("POST", PIPELINE + "/frames", "createPipelineFrame", subjects.PUSH_PIPELINE_FRAME, tag="pipelines",
          role="manager", status=202, body="frame"),
    route("POST", PIPELINE + "/capture", "createPipelineCapture", subjects.CAPTURE_PIPELINE_FRAME, tag="pipelines",
          role="manager", body="capture"),
    route("GET", PIPELINE + "/metrics", "getPipelineMetrics", subjects.PIPELINE_METRICS, tag="pipelines",
          role="viewer"),
    route("GET", PIPELINE + "/config", "getPipelineConfig", subjects.EXPORT_PIPELINE_CONFIG, tag="pipelines",
          role="viewer"),
    route("PUT", PIPELINE + "/config", "importPipelineConfig", subjects.IMPORT_PIPELINE_CONFIG, tag="pipelines",
          role="manager", body="config"),
)
# fmt: on
