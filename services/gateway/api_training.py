"""REST operations for training: configuration, runs, models and their versions."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

TRAINING = "/v1/projects/{project_id}/training"
RUNS = TRAINING + "/runs"
RUN = RUNS + "/{run_id}"
MODELS = "/v1/projects/{project_id}/models"
MODEL = MODELS + "/{model}"
VERSION = MODEL + "/versions/{version}"

# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("GET", TRAINING + "/config", "getTrainingConfig", subjects.GET_TRAINING_CONFIG, tag="training",
          role="viewer"),
    route("PUT", TRAINING + "/config", "replaceTrainingConfig", subjects.REPLACE_TRAINING_CONFIG, tag="training",
          role="manager", body="config"),
    route("POST", RUNS, "createTrainingRun", subjects.CREATE_TRAINING_RUN, tag="training", role="manager",
          status=202, body="run"),
    route("GET", RUNS, "listTrainingRuns", subjects.LIST_TRAINING_RUNS, tag="training", role="viewer",
          query="query"),
    route("GET", RUN, "getTrainingRun", subjects.GET_TRAINING_RUN, tag="training", role="viewer"),
    route("POST", RUN + "/cancel", "cancelTrainingRun", subjects.CANCEL_TRAINING_RUN, tag="training",
          role="manager"),
    route("GET", RUN + "/log", "getTrainingRunLog", subjects.GET_TRAINING_RUN_LOG, tag="training", role="viewer",
          query="query"),
    route("GET", MODELS, "listModels", subjects.LIST_MODELS, tag="training", role="viewer"),
    route("GET", MODEL, "getModel", subjects.GET_MODEL, tag="training", role="viewer"),
    route("DELETE", MODEL, "deleteModel", subjects.DELETE_MODEL, tag="training", role="manager"),
    route("PUT", MODEL + "/active-version", "updateActiveModelVersion", subjects.ACTIVATE_MODEL_VERSION,
          tag="training", role="manager", body="body"),
    route("GET", MODEL + "/versions", "listModelVersions", subjects.LIST_MODEL_VERSIONS, tag="training",
          role="viewer"),
    route("GET", VERSION, "getModelVersion", subjects.GET_MODEL_VERSION, tag="training", role="viewer"),
    route("DELETE", VERSION, "deleteModelVersion", subjects.DELETE_MODEL_VERSION, tag="training",
          role="manager", query="query"),
)
# fmt: on
