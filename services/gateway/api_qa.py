"""REST operations for label QA: runs that compare a predictions labelset with ground truth, and
their findings."""

from __future__ import annotations

from proto import subjects
from services.gateway.operations import Operation, route

RUNS = "/v1/projects/{project_id}/qa-runs"
RUN = RUNS + "/{run_id}"

# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    route("POST", RUNS, "createQaRun", subjects.CREATE_QA_RUN, tag="qa", role="reviewer", status=201, body="run"),
    route("GET", RUNS, "listQaRuns", subjects.LIST_QA_RUNS, tag="qa", role="viewer"),
    route("GET", RUN, "getQaRun", subjects.GET_QA_RUN, tag="qa", role="viewer"),
    route("GET", RUN + "/findings", "listFindings", subjects.LIST_FINDINGS, tag="qa", role="viewer", query="query"),
    route("PATCH", "/v1/projects/{project_id}/findings/{finding_id}", "resolveFinding", subjects.RESOLVE_FINDING,
          tag="qa", role="reviewer", body="body"),
)
# fmt: on
