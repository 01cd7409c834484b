"""REST operations for sample search and saved views."""

from __future__ import annotations

from proto import common, search, subjects
from services.gateway.operations import Operation, PathParams, fixed


def list_to_search(params: PathParams, query: search.ListSamples) -> search.SearchSamples:
    """The simple listing is a search whose filter comes from single-valued query parameters."""
    def one(value: str | None) -> list[str] | None:
        return None if value is None else [value]

    return search.SearchSamples(project_id=params["project_id"], query=search.SearchQuery(
        dataset_ids=one(query.dataset_id), statuses=one(query.status), name_contains=query.name_contains,
        external_ids=one(query.external_id), tags_any=one(query.tag), sort=query.sort, limit=query.limit,
        cursor=query.cursor, offset=query.offset, total=query.total))


def view_ref(params: PathParams) -> search.ViewRef:
    return search.ViewRef(project_id=params["project_id"], view_id=params["view_id"])


def view_items(params: PathParams, body: search.ViewItems) -> search.ViewItemsRequest:
    return search.ViewItemsRequest(project_id=params["project_id"], view_id=params["view_id"], items=body)


SAMPLES = "/v1/projects/{project_id}/samples"
VIEWS = "/v1/projects/{project_id}/views"
VIEW = VIEWS + "/{view_id}"

OPERATIONS: tuple[Operation, ...] = (
    Operation(method="POST", path=SAMPLES + "/search", operation_id="searchSamples", tag="search", role="viewer",
              summary=subjects.SEARCH_SAMPLES.summary, command=fixed(subjects.SEARCH_SAMPLES),
              reply=search.SamplePage, body=search.SearchQuery,
              to_request=lambda params, query, body: search.SearchSamples(project_id=params["project_id"],
                                                                          query=body)),
    Operation(method="GET", path=SAMPLES, operation_id="listSamples", tag="search", role="viewer",
              summary="List a project's samples with simple filters, sorted, a page at a time "
                      "(POST .../samples/search takes every filter)",
              command=fixed(subjects.SEARCH_SAMPLES), reply=search.SamplePage, query=search.ListSamples,
              to_request=lambda params, query, body: list_to_search(params, query)),
    Operation(method="POST", path=VIEWS, operation_id="createView", tag="views", role="labeler",
              summary=subjects.CREATE_VIEW.summary, command=fixed(subjects.CREATE_VIEW), reply=search.View,
              body=search.CreateView, status=201,
              to_request=lambda params, query, body: search.CreateViewRequest(project_id=params["project_id"],
                                                                              view=body)),
    Operation(method="GET", path=VIEWS, operation_id="listViews", tag="views", role="viewer",
              summary=subjects.LIST_VIEWS.summary, command=fixed(subjects.LIST_VIEWS), reply=search.ViewPage,
              query=search.ListViews,
              to_request=lambda params, query, body: search.ListViewsRequest(project_id=params["project_id"],
                                                                             page=query)),
    Operation(method="GET", path=VIEW, operation_id="getView", tag="views", role="viewer",
              summary=subjects.GET_VIEW.summary, command=fixed(subjects.GET_VIEW), reply=search.View,
              to_request=lambda params, query, body: view_ref(params)),
    Operation(method="PATCH", path=VIEW, operation_id="updateView", tag="views", role="labeler",
              summary=subjects.UPDATE_VIEW.summary, command=fixed(subjects.UPDATE_VIEW), reply=search.View,
              body=search.UpdateView,
              to_request=lambda params, query, body: search.UpdateViewRequest(
                  project_id=params["project_id"], view_id=params["view_id"], changes=body)),
    Operation(method="DELETE", path=VIEW, operation_id="deleteView", tag="views", role="labeler",
              summary=subjects.DELETE_VIEW.summary, command=fixed(subjects.DELETE_VIEW), reply=common.Empty,
              status=204, to_request=lambda params, query, body: view_ref(params)),
    Operation(method="POST", path=VIEW + "/items", operation_id="addViewItems", tag="views", role="labeler",
              summary=subjects.ADD_VIEW_ITEMS.summary, command=fixed(subjects.ADD_VIEW_ITEMS), reply=search.View,
              body=search.ViewItems, to_request=lambda params, query, body: view_items(params, body)),
    Operation(method="DELETE", path=VIEW + "/items", operation_id="removeViewItems", tag="views", role="labeler",
              summary=subjects.REMOVE_VIEW_ITEMS.summary + " (the ids in the body; ids not in it are ignored)",
              command=fixed(subjects.REMOVE_VIEW_ITEMS), reply=search.View, body=search.ViewItems,
              to_request=lambda params, query, body: view_items(params, body)),
    Operation(method="GET", path=VIEW + "/samples", operation_id="listViewSamples", tag="views", role="viewer",
              summary=subjects.RUN_VIEW.summary, command=fixed(subjects.RUN_VIEW), reply=search.SamplePage,
              query=search.RunView,
              to_request=lambda params, query, body: search.RunViewRequest(
                  project_id=params["project_id"], view_id=params["view_id"], page=query)),
)
