"""REST operations for review work: the label and review queues with their locks, and issues on
samples with their comments."""

from __future__ import annotations

from typing import get_args

from proto import common, review, subjects
from services.gateway.operations import Operation, PathParams, fixed
from shared.errors import LoupeError

ISSUES = "/v1/projects/{project_id}/issues"
ISSUE = ISSUES + "/{issue_id}"


def queue_of(params: PathParams) -> review.QueueKind:
    queue = params["queue"]
    if queue not in get_args(review.QueueKind):
        raise LoupeError("not_found", f"no queue named {queue!r}; the queues are "
                         f"{', '.join(get_args(review.QueueKind))}", path="queue")
    return queue


def issue_ref(params, query, body) -> review.IssueRef:
    return review.IssueRef(project_id=params["project_id"], issue_id=params["issue_id"])


OPERATIONS: tuple[Operation, ...] = (
    # -- work queues (the review queue also needs the reviewer role: annotation checks it)
    Operation(method="POST", path="/v1/projects/{project_id}/queues/{queue}/next", operation_id="nextSample",
              tag="review", role="labeler", summary=subjects.NEXT_SAMPLE.summary, command=fixed(subjects.NEXT_SAMPLE),
              reply=review.NextSampleReply, body=review.NextSample,
              to_request=lambda params, query, body: review.NextSampleRequest(
                  project_id=params["project_id"], queue=queue_of(params), body=body)),
    Operation(method="DELETE", path="/v1/projects/{project_id}/samples/{sample_id}/locks/{labelset}",
              operation_id="deleteLock", tag="review", role="labeler", summary=subjects.RELEASE_LOCK.summary,
              command=fixed(subjects.RELEASE_LOCK), reply=common.Empty, status=204,
              to_request=lambda params, query, body: review.LockRef(
                  project_id=params["project_id"], sample_id=params["sample_id"], labelset=params["labelset"])),
    # -- issues and comments
    Operation(method="POST", path="/v1/projects/{project_id}/samples/{sample_id}/issues", operation_id="createIssue",
              tag="review", role="labeler", summary=subjects.CREATE_ISSUE.summary,
              command=fixed(subjects.CREATE_ISSUE), reply=review.Issue, body=review.CreateIssue, status=201,
              to_request=lambda params, query, body: review.CreateIssueRequest(
                  project_id=params["project_id"], sample_id=params["sample_id"], issue=body)),
    Operation(method="GET", path=ISSUES, operation_id="listIssues", tag="review", role="viewer",
              summary=subjects.LIST_ISSUES.summary, command=fixed(subjects.LIST_ISSUES), reply=review.IssuePage,
              query=review.ListIssues,
              to_request=lambda params, query, body: review.ListIssuesRequest(project_id=params["project_id"],
                                                                              query=query)),
    Operation(method="GET", path=ISSUE, operation_id="getIssue", tag="review", role="viewer",
              summary=subjects.GET_ISSUE.summary, command=fixed(subjects.GET_ISSUE), reply=review.Issue,
              to_request=issue_ref),
    Operation(method="PATCH", path=ISSUE, operation_id="updateIssue", tag="review", role="labeler",
              summary=subjects.UPDATE_ISSUE.summary, command=fixed(subjects.UPDATE_ISSUE), reply=review.Issue,
              body=review.UpdateIssue,
              to_request=lambda params, query, body: review.UpdateIssueRequest(
                  project_id=params["project_id"], issue_id=params["issue_id"], changes=body)),
    Operation(method="DELETE", path=ISSUE, operation_id="deleteIssue", tag="review", role="manager",
              summary=subjects.DELETE_ISSUE.summary, command=fixed(subjects.DELETE_ISSUE), reply=common.Empty,
              status=204, to_request=issue_ref),
    Operation(method="POST", path=ISSUE + "/comments", operation_id="createComment", tag="review", role="labeler",
              summary=subjects.CREATE_COMMENT.summary, command=fixed(subjects.CREATE_COMMENT), reply=review.Issue,
              body=review.CreateComment, status=201,
              to_request=lambda params, query, body: review.CreateCommentRequest(
                  project_id=params["project_id"], issue_id=params["issue_id"], comment=body)),
)
