"""Geti Tune: sources and sinks, the organisation's saved pipeline sources and sinks (proto/saved_io.py).

A Geti source or sink is one flat JSON object: `name`, `source_type` (`sink_type`) naming the native kind
(`folder`, `video`, `nats`, `http`; `folder`, `nats`, `webhook`, `mqtt`) and that kind's native fields
(docs/pipelines.md), e.g. `{"name": "gate", "source_type": "folder", "path": "/srv/cams/gate"}`. The same
object, without its id, is its YAML export, and what an import reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import yaml
from aiohttp import BodyPartReader, web

from proto import saved_io, subjects
from proto.pipelines import Sink, Source
from services.gateway.dialects.geti.common import Route, answer, naming_missing_field, no_content
from services.gateway.dialects.native import ask
from services.gateway.dialects.requests import uuid_param
from shared.bus import decode
from shared.errors import LoupeError, invalid

MAX_YAML = 100_000


@dataclass(frozen=True)
class Part:
    """What differs between Geti's sources and sinks, and the native commands each maps onto."""

    name: str  # source or sink
    type_field: str  # source_type or sink_type
    kind: Any  # Source or Sink
    create: subjects.Command
    list: subjects.Command
    get: subjects.Command
    update: subjects.Command
    delete: subjects.Command

    def native(self, config: dict[str, Any]) -> Any:
        """A Geti config (no `name`, no `id`) as the native Source or Sink; a bad field is named as Geti's."""
        kind = config.get(self.type_field)
        if not isinstance(kind, str):
            raise invalid(f"say which kind of {self.name} this is in `{self.type_field}`", path=f"$.{self.type_field}")
        fields = {key: value for key, value in config.items() if key != self.type_field}
        try:
            return decode(self.kind, msgspec.json.encode({"kind": kind, **fields}))
        except LoupeError as error:
            raise self.renamed(error) from None

    def renamed(self, error: LoupeError) -> LoupeError:
        """A native error's field path as the flat Geti object's: `$.source.path` and `$.kind` become `$.path`
        and `$.source_type`; a missing field is named."""
        path = naming_missing_field(error).details.get("path")
        if isinstance(path, str):
            for native in (f"$.{self.name}.", "$."):
                if path.startswith(native):
                    rest = path[len(native) :]
                    path = f"$.{self.type_field if rest == 'kind' else rest}"
                    break
            error.details["path"] = path
        return error

    def geti(self, saved: Any) -> dict[str, Any]:
        config = msgspec.to_builtins(getattr(saved, self.name))
        kind = config.pop("kind")
        return {"id": saved.id, "name": saved.name, self.type_field: kind, **config, "pipelines": saved.pipelines}

    def exported(self, saved: Any) -> dict[str, Any]:
        config = self.geti(saved)
        del config["id"], config["pipelines"]
        return config


SOURCE = Part(
    "source",
    "source_type",
    Source,
    subjects.CREATE_SAVED_SOURCE,
    subjects.LIST_SAVED_SOURCES,
    subjects.GET_SAVED_SOURCE,
    subjects.UPDATE_SAVED_SOURCE,
    subjects.DELETE_SAVED_SOURCE,
)
SINK = Part(
    "sink",
    "sink_type",
    Sink,
    subjects.CREATE_SAVED_SINK,
    subjects.LIST_SAVED_SINKS,
    subjects.GET_SAVED_SINK,
    subjects.UPDATE_SAVED_SINK,
    subjects.DELETE_SAVED_SINK,
)


def named(config: Any) -> tuple[str, dict[str, Any]]:
    """A Geti config's name and the rest of it; both are checked."""
    if not isinstance(config, dict):
        raise invalid("send a JSON object: `name`, the kind and its fields", path="$")
    rest = {key: value for key, value in config.items() if key not in ("name", "id", "pipelines")}
    name = config.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("give it a `name`", path="$.name")
    return name, rest


async def json_object(request: web.Request) -> Any:
    data = await request.read()
    if not data:
        raise invalid("send a JSON body", path="$")
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as error:
        raise LoupeError("malformed", f"the body is not valid JSON: {error}") from None


async def create_saved(request: web.Request, part: Part, config: Any) -> web.Response:
    name, rest = named(config)
    native = part.native(rest)
    new = (
        saved_io.CreateSavedSourceRequest(source=saved_io.NewSavedSource(name=name, source=native))
        if part is SOURCE
        else saved_io.CreateSavedSinkRequest(sink=saved_io.NewSavedSink(name=name, sink=native))
    )
    try:
        saved = await ask(request, part.create, new)
    except LoupeError as error:
        raise part.renamed(error) from None
    return answer(part.geti(saved), 201)


async def fetch(request: web.Request, part: Part) -> Any:
    return await ask(request, part.get, saved_io.SavedRef(id=uuid_param(request, "saved_id")))


async def patch_saved(request: web.Request, part: Part) -> web.Response:
    """Fields sent replace the current ones; a new kind starts from its own fields only."""
    sent = await json_object(request)
    if not isinstance(sent, dict):
        raise invalid("send a JSON object of the fields to change", path="$")
    current = part.exported(await fetch(request, part))
    kind_changed = part.type_field in sent and sent[part.type_field] != current[part.type_field]
    merged = {"name": current["name"], **sent} if kind_changed else {**current, **sent}
    name, rest = named(merged)
    native = part.native(rest)
    saved_id = uuid_param(request, "saved_id")
    change = (
        saved_io.UpdateSavedSourceRequest(id=saved_id, changes=saved_io.SavedSourceChanges(name=name, source=native))
        if part is SOURCE
        else saved_io.UpdateSavedSinkRequest(id=saved_id, changes=saved_io.SavedSinkChanges(name=name, sink=native))
    )
    try:
        saved = await ask(request, part.update, change)
    except LoupeError as error:
        raise part.renamed(error) from None
    return answer(part.geti(saved))


async def yaml_text(request: web.Request) -> str:
    """The YAML file: the body as it is, or the first file of a multipart form."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for field in reader:
            if isinstance(field, BodyPartReader):
                return (await field.read(decode=True)).decode("utf-8", errors="replace")
        raise invalid("the form holds no file: send the YAML file", path="$")
    data = await request.read()
    if not data:
        raise invalid("send the YAML file as the body", path="$")
    if len(data) > MAX_YAML:
        raise invalid(f"a YAML config is at most {MAX_YAML} bytes", path="$")
    return data.decode("utf-8", errors="replace")


async def import_saved(request: web.Request, part: Part) -> web.Response:
    try:
        loaded = yaml.safe_load(await yaml_text(request))
    except yaml.YAMLError as error:
        raise invalid(f"not YAML: {error}", path="$") from None
    return await create_saved(request, part, loaded)


async def export_saved(request: web.Request, part: Part) -> web.Response:
    text = yaml.safe_dump(part.exported(await fetch(request, part)), sort_keys=False)
    saved_id = request.match_info["saved_id"]
    return web.Response(
        text=text,
        content_type="application/x-yaml",
        headers={"Content-Disposition": f'attachment; filename="{part.name}-{saved_id}.yaml"'},
    )


def routes(part: Part, collection: str) -> list[Route]:
    one = collection + "/{saved_id:[^/:]+}"

    async def create(request: web.Request) -> web.Response:
        return await create_saved(request, part, await json_object(request))

    async def listing(request: web.Request) -> web.Response:
        found = await ask(request, part.list, saved_io.OrgScope())
        return answer([part.geti(saved) for saved in found.items])

    async def get(request: web.Request) -> web.Response:
        return answer(part.geti(await fetch(request, part)))

    async def patch(request: web.Request) -> web.Response:
        return await patch_saved(request, part)

    async def delete(request: web.Request) -> web.Response:
        await ask(request, part.delete, saved_io.SavedRef(id=uuid_param(request, "saved_id")))
        return no_content()

    async def export(request: web.Request) -> web.Response:
        return await export_saved(request, part)

    async def import_(request: web.Request) -> web.Response:
        return await import_saved(request, part)

    handlers = {
        "create": ("POST", collection, create),
        "list": ("GET", collection, listing),
        "get": ("GET", one, get),
        "update": ("PATCH", one, patch),
        "delete": ("DELETE", one, delete),
        "export": ("POST", one + ":export", export),
        "import": ("POST", collection + ":import", import_),
    }
    for verb, (_, _, handler) in handlers.items():
        # Route names are made of handler names: one per part and verb.
        handler.__name__ = f"{verb}_{part.name}"
    return list(handlers.values())


ROUTES: list[Route] = [*routes(SOURCE, "/sources"), *routes(SINK, "/sinks")]
