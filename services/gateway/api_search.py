"""REST operations for sample search and saved views."""

from __future__ import annotations

from typing import TypeVar

from proto import search, subjects
from services.gateway.operations import ByHand, Operation, PathParams, route

T = TypeVar("T")


def list_to_search(params: PathParams, query: search.ListSamples, body: None) -> search.SearchSamples:
    """The simple listing is a search whose filter comes from single-valued query parameters."""

    def one(value: T | None) -> list[T] | None:
        return None if value is None else [value]

    return search.SearchSamples(
        project_id=params["project_id"],
        query=search.SearchQuery(
            dataset_ids=one(query.dataset_id),
            statuses=one(query.status),
            name_contains=query.name_contains,
            external_ids=one(query.external_id),
            tags_any=one(query.tag),
            sort=query.sort,
            **{field: getattr(query, field) for field in search.SamplePaging.__struct_fields__},
        ),
    )


SAMPLES = "/v1/projects/{project_id}/samples"
VIEWS = "/v1/projects/{project_id}/views"
VIEW = VIEWS + "/{view_id}"

OPERATIONS: tuple[Operation, ...] = (
    route(
        "POST", SAMPLES + "/search", "searchSamples", subjects.SEARCH_SAMPLES, tag="search", role="viewer", body="query"
    ),
    route(
        "GET",
        SAMPLES,
        "listSamples",
        subjects.SEARCH_SAMPLES,
        tag="search",
        role="viewer",
        summary="List a project's samples with simple filters, sorted, a page at a time "
        "(POST .../samples/search takes every filter)",
        to_request=ByHand(list_to_search, query=search.ListSamples),
    ),
    route(
        "POST", SAMPLES + "/count", "countSamples", subjects.COUNT_SAMPLES, tag="search", role="viewer", body="filter"
    ),
    route("POST", VIEWS, "createView", subjects.CREATE_VIEW, tag="views", role="labeler", status=201, body="view"),
    route("GET", VIEWS, "listViews", subjects.LIST_VIEWS, tag="views", role="viewer", query="page"),
    route("GET", VIEW, "getView", subjects.GET_VIEW, tag="views", role="viewer"),
    route("PATCH", VIEW, "updateView", subjects.UPDATE_VIEW, tag="views", role="labeler", body="changes"),
    route("DELETE", VIEW, "deleteView", subjects.DELETE_VIEW, tag="views", role="labeler"),
    route("POST", VIEW + "/items", "addViewItems", subjects.ADD_VIEW_ITEMS, tag="views", role="labeler", body="items"),
    route(
        "DELETE",
        VIEW + "/items",
        "removeViewItems",
        subjects.REMOVE_VIEW_ITEMS,
        tag="views",
        role="labeler",
        summary=subjects.REMOVE_VIEW_ITEMS.summary + " (the ids in the body; ids not in it are ignored)",
        body="items",
    ),
    route("GET", VIEW + "/samples", "listViewSamples", subjects.RUN_VIEW, tag="views", role="viewer", query="page"),
)
