"""Geti Tune: dataset views, which are native saved views that hold a set of samples. Items are added or
removed by id, or by a filter (the native search's `SampleFilter`) that picks them at the time of the call."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from aiohttp import web

from proto import search, subjects
from proto.catalog import Role
from proto.common import Uuid
from services.gateway.dialects.geti.common import (
    PROJECT,
    Route,
    answer,
    authorized,
    body,
    no_content,
    paginated,
    timestamp,
)
from services.gateway.dialects.geti.datasets import ItemIds, all_samples, items_json, page_query
from services.gateway.dialects.native import ask, ask_all
from services.gateway.dialects.requests import uuid_param
from shared.errors import invalid

VIEWS = PROJECT + "/dataset/views"
VIEW = VIEWS + "/{view_id}"
CHUNK = 1000  # sample ids per native call


class NewView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: search.ViewName
    item_ids: Annotated[list[Uuid], msgspec.Meta(max_length=CHUNK)] = []


class Selection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which items: `item_ids`, or `filter`; one of the two."""

    item_ids: ItemIds | None = None
    filter: search.SampleFilter | None = None


def view_json(view: search.View) -> dict[str, Any]:
    return {
        "id": view.id,
        "project_id": view.project_id,
        "name": view.name,
        "item_count": view.item_count,
        "created_at": timestamp(view.created_at),
    }


async def view_ref(request: web.Request, role: Role) -> search.ViewRef:
    return search.ViewRef(project_id=await authorized(request, role), view_id=uuid_param(request, "view_id"))


async def create_view(request: web.Request) -> web.Response:
    new: NewView = await body(request, NewView)
    view = await ask(
        request,
        subjects.CREATE_VIEW,
        search.CreateViewRequest(
            project_id=await authorized(request, "labeler"),
            view=search.CreateView(name=new.name, sample_ids=new.item_ids or None),
        ),
    )
    return answer(view_json(view), 201)


async def list_views(request: web.Request) -> web.Response:
    pid = await authorized(request, "viewer")
    views: list[search.View] = await ask_all(
        request,
        subjects.LIST_VIEWS,
        lambda cursor: search.ListViewsRequest(project_id=pid, page=search.ListViews(limit=500, cursor=cursor)),
    )
    return answer([view_json(view) for view in views])


async def get_view(request: web.Request) -> web.Response:
    return answer(view_json(await ask(request, subjects.GET_VIEW, await view_ref(request, "viewer"))))


async def delete_view(request: web.Request) -> web.Response:
    await ask(request, subjects.DELETE_VIEW, await view_ref(request, "labeler"))
    return no_content()


async def view_items(request: web.Request) -> web.Response:
    ref = await view_ref(request, "viewer")
    limit, offset = page_query(request)
    found: search.SamplePage = await ask(
        request,
        subjects.RUN_VIEW,
        search.RunViewRequest(
            project_id=ref.project_id,
            view_id=ref.view_id,
            page=search.RunView(limit=limit, offset=offset, total="exact"),
        ),
    )
    return paginated(await items_json(request, ref.project_id, found.items), limit, offset, found.total or 0)


async def selected_ids(request: web.Request, pid: str) -> list[str]:
    selection: Selection = await body(request, Selection)
    if (selection.item_ids is None) == (selection.filter is None):
        raise invalid("send `item_ids` or `filter`, one of the two", path="$")
    if selection.item_ids is not None:
        return [str(uuid.UUID(item_id)) for item_id in selection.item_ids]
    assert selection.filter is not None
    return [sample.id for sample in await all_samples(request, pid, selection.filter)]


async def change_items(request: web.Request, command: Any) -> web.Response:
    ref = await view_ref(request, "labeler")
    ids = await selected_ids(request, ref.project_id)
    for start in range(0, len(ids), CHUNK):
        await ask(
            request,
            command,
            search.ViewItemsRequest(
                project_id=ref.project_id,
                view_id=ref.view_id,
                items=search.ViewItems(sample_ids=ids[start : start + CHUNK]),
            ),
        )
    return no_content()


async def add_items(request: web.Request) -> web.Response:
    return await change_items(request, subjects.ADD_VIEW_ITEMS)


async def remove_items(request: web.Request) -> web.Response:
    return await change_items(request, subjects.REMOVE_VIEW_ITEMS)


ROUTES: list[Route] = [
    ("POST", VIEWS, create_view),
    ("GET", VIEWS, list_views),
    ("GET", VIEW, get_view),
    ("DELETE", VIEW, delete_view),
    ("GET", VIEW + "/items", view_items),
    ("POST", VIEW + "/items", add_items),
    ("DELETE", VIEW + "/items", remove_items),
]
