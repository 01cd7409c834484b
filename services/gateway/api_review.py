"""REST operations for review work: the label and review queues with their locks, and issues on
samples with their comments."""

from __future__ import annotations

from typing import cast, get_args

from proto import review, subjects
from services.gateway.operations import ByHand, Operation, PathParams, route
from shared.errors import LoupeError

ISSUES = "/v1/projects/{project_id}/issues"
ISSUE = ISSUES + "/{issue_id}"


def queue_of(params: PathParams) -> review.QueueKind:
    queue = params["queue"]
    if queue not in get_args(review.QueueKind):
        raise LoupeError(
            "not_found",
            f"no queue named {queue!r}; the queues are {', '.join(get_args(review.QueueKind))}",
            path="queue",
        )
    return cast(review.QueueKind, queue)


def next_sample(params: PathParams, query: None, body: review.NextSample) -> review.NextSampleRequest:
    return review.NextSampleRequest(project_id=params["project_id"], queue=queue_of(params), body=body)


# A table reads best one entry to a line.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    # -- work queues (the review queue also needs the reviewer role: annotation checks it)
    route("POST", "/v1/projects/{project_id}/queues/{queue}/next", "nextSample", subjects.NEXT_SAMPLE, tag="review",
          role="labeler", to_request=ByHand(next_sample, body=review.NextSample)),
    route("DELETE", "/v1/projects/{project_id}/samples/{sample_id}/locks/{labelset}", "deleteLock",
          subjects.RELEASE_LOCK, tag="review", role="labeler"),
    # -- issues and comments
    route("POST", "/v1/projects/{project_id}/samples/{sample_id}/issues", "createIssue", subjects.CREATE_ISSUE,
          tag="review", role="labeler", status=201, body="issue"),
    route("GET", ISSUES, "listIssues", subjects.LIST_ISSUES, tag="review", role="viewer", query="query"),
    route("GET", ISSUE, "getIssue", subjects.GET_ISSUE, tag="review", role="viewer"),
    route("PATCH", ISSUE, "updateIssue", subjects.UPDATE_ISSUE, tag="review", role="labeler", body="changes"),
    route("DELETE", ISSUE, "deleteIssue", subjects.DELETE_ISSUE, tag="review", role="manager"),
    route("POST", ISSUE + "/comments", "createComment", subjects.CREATE_COMMENT, tag="review", role="labeler",
          status=201, body="comment"),
)
# fmt: on
