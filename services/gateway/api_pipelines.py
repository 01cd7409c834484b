"""REST operations for live pipelines: managers change them, viewers read them and their metrics. Saved
sources and sinks belong to the organisation: its admins change them, any of its keys reads them."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

PIPELINES = "/v1/projects/{project_id}/pipelines"
PIPELINE = PIPELINES + "/{pipeline_id}"
SOURCES = "/v1/pipeline-sources"
SINKS = "/v1/pipeline-sinks"

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
    route("GET", PIPELINE + "/saved", "getPipelineSaved", subjects.GET_PIPELINE_SAVED_IO, tag="pipelines",
          role="viewer"),
    route("PUT", PIPELINE + "/saved", "replacePipelineSaved", subjects.USE_SAVED_IO, tag="pipelines", role="manager",
          body="use"),
    route("POST", SOURCES, "createSavedSource", subjects.CREATE_SAVED_SOURCE, tag="pipelines", admin=True,
          status=201, body="source"),
    route("GET", SOURCES, "listSavedSources", subjects.LIST_SAVED_SOURCES, tag="pipelines"),
    route("GET", SOURCES + "/{id}", "getSavedSource", subjects.GET_SAVED_SOURCE, tag="pipelines"),
    route("PATCH", SOURCES + "/{id}", "updateSavedSource", subjects.UPDATE_SAVED_SOURCE, tag="pipelines", admin=True,
          body="changes"),
    route("DELETE", SOURCES + "/{id}", "deleteSavedSource", subjects.DELETE_SAVED_SOURCE, tag="pipelines",
          admin=True),
    route("POST", SINKS, "createSavedSink", subjects.CREATE_SAVED_SINK, tag="pipelines", admin=True, status=201,
          body="sink"),
    route("GET", SINKS, "listSavedSinks", subjects.LIST_SAVED_SINKS, tag="pipelines"),
    route("GET", SINKS + "/{id}", "getSavedSink", subjects.GET_SAVED_SINK, tag="pipelines"),
    route("PATCH", SINKS + "/{id}", "updateSavedSink", subjects.UPDATE_SAVED_SINK, tag="pipelines", admin=True,
          body="changes"),
    route("DELETE", SINKS + "/{id}", "deleteSavedSink", subjects.DELETE_SAVED_SINK, tag="pipelines", admin=True),
)
# fmt: on
