"""REST operations for label QA: runs that compare a predictions labelset with ground truth, and
their findings."""

from __future__ import annotations

from proto import review, subjects
from services.gateway.operations import Operation, fixed

RUNS = "/v1/projects/{project_id}/qa-runs"
RUN = RUNS + "/{run_id}"


def run_ref(params, query, body) -> review.QaRunRef:
    return review.QaRunRef(project_id=params["project_id"], run_id=params["run_id"])


OPERATIONS: tuple[Operation, ...] = (
    Operation(method="POST", path=RUNS, operation_id="createQaRun", tag="qa", role="reviewer",
              summary=subjects.CREATE_QA_RUN.summary, command=fixed(subjects.CREATE_QA_RUN), reply=review.QaRun,
              body=review.CreateQaRun, status=201,
              to_request=lambda params, query, body: review.CreateQaRunRequest(project_id=params["project_id"],
                                                                               run=body)),
    Operation(method="GET", path=RUNS, operation_id="listQaRuns", tag="qa", role="viewer",
              summary=subjects.LIST_QA_RUNS.summary, command=fixed(subjects.LIST_QA_RUNS), reply=review.QaRunList,
              to_request=lambda params, query, body: review.ListQaRunsRequest(project_id=params["project_id"])),
    Operation(method="GET", path=RUN, operation_id="getQaRun", tag="qa", role="viewer",
              summary=subjects.GET_QA_RUN.summary, command=fixed(subjects.GET_QA_RUN), reply=review.QaRun,
              to_request=run_ref),
    Operation(method="GET", path=RUN + "/findings", operation_id="listFindings", tag="qa", role="viewer",
              summary=subjects.LIST_FINDINGS.summary, command=fixed(subjects.LIST_FINDINGS),
              reply=review.FindingPage, query=review.ListFindings,
              to_request=lambda params, query, body: review.ListFindingsRequest(
                  project_id=params["project_id"], run_id=params["run_id"], query=query)),
    Operation(method="PATCH", path="/v1/projects/{project_id}/findings/{finding_id}", operation_id="resolveFinding",
              tag="qa", role="reviewer", summary=subjects.RESOLVE_FINDING.summary,
              command=fixed(subjects.RESOLVE_FINDING), reply=review.Finding, body=review.ResolveFinding,
              to_request=lambda params, query, body: review.ResolveFindingRequest(
                  project_id=params["project_id"], finding_id=params["finding_id"], body=body)),
)
