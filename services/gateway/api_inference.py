"""REST operations for inference: predictions, similar images, jobs (auto-label, embeddings, ranking) with
their results, the active-learning heuristics, and tag status."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

PROJECT = "/v1/projects/{project_id}"
INFERENCE = PROJECT + "/inference"
JOBS = INFERENCE + "/jobs"
JOB = JOBS + "/{job_id}"

# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("POST", INFERENCE + "/predict", "createPrediction", subjects.PREDICT, tag="inference", role="viewer", body="body"),
    route("POST", INFERENCE + "/similar", "searchSimilarToImage", subjects.SIMILAR_TO_IMAGE, tag="inference",
          role="viewer", body="body"),
    route("GET", "/v1/inference/heuristics", "listHeuristics", subjects.LIST_HEURISTICS, tag="inference"),
    route("GET", PROJECT + "/tagging/status", "getTagStatus", subjects.TAG_STATUS, tag="inference", role="viewer"),
    route("POST", JOBS, "createInferenceJob", subjects.CREATE_INFERENCE_JOB, tag="inference", role="manager",
          status=202, body="job"),
    route("GET", JOBS, "listInferenceJobs", subjects.LIST_INFERENCE_JOBS, tag="inference", role="viewer",
          query="query"),
    route("GET", JOB, "getInferenceJob", subjects.GET_INFERENCE_JOB, tag="inference", role="viewer"),
    route("POST", JOB + "/cancel", "cancelInferenceJob", subjects.CANCEL_INFERENCE_JOB, tag="inference",
          role="manager"),
    route("GET", JOB + "/results", "listInferenceJobResults", subjects.LIST_INFERENCE_RESULTS, tag="inference",
          role="viewer", query="query"),
)
# fmt: on
