"""Multipart upload for simple clients. The gateway has the bytes in memory, so it hands them to ingest in
one bus request when they fit one message (16 MiB in Loupe's configurations, base64 included): ingest
validates and hashes them in memory and stores each at its final key, with no staging round trip
(services/ingest/direct.py), and answers with the finished run.

Larger forms go the presigned way: the gateway plays the presigned-upload client on the caller's behalf
(asks ingest for slots, declaring each image by its SHA-256 so that it goes straight to its final key,
PUTs each file, completes the upload) and waits briefly for the outcome: for the event that announces the
run finished, not by asking for the run over and over."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from nats.aio.msg import Msg

from proto import subjects
from proto.common import Caller
from proto.ingest import (
    CompleteUpload,
    CompleteUploadRequest,
    CreateUpload,
    CreateUploadRequest,
    InlineFile,
    ListRunItems,
    ListRunItemsRequest,
    Run,
    RunProgressed,
    RunRef,
    UploadedFiles,
    UploadFile,
    UploadFilesRequest,
    UploadSlot,
)
from services.gateway.auth import CALLER, ROLE_CACHE
from services.gateway.problems import within
from shared.bus import Bus, decoder, encoder, text_fault
from shared.errors import LoupeError, invalid
from shared.image_formats import MIME, sniff_format
from shared.service import RUNTIME, RawEnvelope

PATH = "/v1/projects/{project_id}/datasets/{dataset_id}/files"
OPERATION_ID = "uploadFiles"
MAX_FILES = 100
BUS_MARGIN = 64 * 1024

HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
T = TypeVar("T")


async def http_client(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[HTTP_CLIENT] = session
        yield


async def read_files(
    request: web.Request, max_file_bytes: int, max_bytes: int, stall_s: float
) -> list[tuple[str, bytes]]:
    """The form's files, read part by part: each read must make progress within `stall_s` (408), and
    the whole form stays within `max_bytes` (413), even when no Content-Length says how long it is."""
    if not request.content_type.startswith("multipart/form-data"):
        raise invalid("send the images as multipart/form-data, one `file` part each", path="body")
    if (request.content_length or 0) > max_bytes:
        raise upload_too_large(max_bytes)
    files: list[tuple[str, bytes]] = []
    total = 0
    reader = await form_step(stall_s, request.multipart())
    while (part := await form_step(stall_s, reader.next())) is not None:
        if not isinstance(part, aiohttp.BodyPartReader) or not part.filename:
            continue
        if len(files) == MAX_FILES:
            raise LoupeError(
                "too_large",
                f"at most {MAX_FILES} files per request; use a presigned upload (POST .../uploads) for more",
            )
        if fault := text_fault(part.filename):
            raise invalid(f"the name of file {len(files) + 1} holds {fault}", path=f"files[{len(files)}]")
        data = bytearray()
        while chunk := await form_step(stall_s, part.read_chunk(1 << 16)):
            data += chunk
            total += len(chunk)
            if len(data) > max_file_bytes:
                raise LoupeError(
                    "too_large",
                    f"{part.filename} is over {max_file_bytes} bytes, the largest image Loupe takes",
                    path=f"files.{part.filename}",
                )
            if total > max_bytes:
                raise upload_too_large(max_bytes)
        files.append((part.filename, bytes(data)))
    if not files:
        raise invalid("the form has no file parts; add each image as a part with a filename", path="body")
    return files


async def form_step(stall_s: float, step: Awaitable[T]) -> T:
    """One read of the form: a client that sends nothing for `stall_s` gets 408, a form that does not
    parse is the client's mistake (400)."""
    try:
        return await within(stall_s, step)
    except (ValueError, RuntimeError, HttpProcessingError) as exc:
        raise LoupeError("malformed", f"the multipart form does not parse: {exc}", path="body") from None


def upload_too_large(limit: int) -> LoupeError:
    return LoupeError(
        "too_large",
        f"the form is larger than the limit of {limit} bytes (LOUPE_MAX_UPLOAD_BYTES); "
        "send fewer files per request, or use a presigned upload (POST .../uploads)",
        limit=limit,
        path="body",
    )


async def upload_files(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    project_id, dataset_id = request.match_info["project_id"], request.match_info["dataset_id"]
    caller = await request.app[ROLE_CACHE].authorize(rt.nats, request[CALLER], project_id, "manager")
    files = await read_files(
        request, rt.settings.ingest_max_file_bytes, rt.settings.max_upload_bytes, rt.settings.request_timeout_s
    )
    if fits_one_message(rt.nats, files):
        run = await rt.nats.request(
            subjects.UPLOAD_FILES,
            UploadFilesRequest(
                project_id=project_id,
                dataset_id=dataset_id,
                files=[InlineFile(name=name, data=data) for name, data in files],
            ),
            caller=caller,
        )
    else:
        run = await staged_upload(request, caller, project_id, dataset_id, files)
    items = await rt.nats.request(
        subjects.LIST_RUN_ITEMS,
        ListRunItemsRequest(project_id=project_id, id=run.id, query=ListRunItems(limit=MAX_FILES)),
        caller=caller,
    )
    body = encoder.encode(UploadedFiles(run=run, items=items.items))
    return web.Response(body=body, status=201 if run.finished_at else 202, content_type="application/json")


def fits_one_message(bus: Bus, files: list[tuple[str, bytes]]) -> bool:
    """Whether the files fit one bus message to ingest: JSON carries bytes as base64 (4 bytes per 3), and the
    names and the envelope take the rest of a margin."""
    return sum(len(data) * 4 // 3 + len(name) + 64 for name, data in files) + BUS_MARGIN <= bus.nc.max_payload


async def staged_upload(
    request: web.Request, caller: Caller, project_id: str, dataset_id: str, files: list[tuple[str, bytes]]
) -> Run:
    """Files too large for one bus message go the presigned way: slots from ingest, a PUT each, then complete;
    waits up to `request_timeout_s` for the run to finish, and returns it as it is then."""
    rt = request.app[RUNTIME]
    upload = await rt.nats.request(
        subjects.CREATE_UPLOAD,
        CreateUploadRequest(
            project_id=project_id,
            dataset_id=dataset_id,
            upload=CreateUpload(files=await asyncio.to_thread(lambda: [declared(name, data) for name, data in files])),
        ),
        caller=caller,
    )
    client = request.app[HTTP_CLIENT]
    await asyncio.gather(*(put_slot(client, slot, data) for slot, (_, data) in zip(upload.slots, files, strict=True)))
    async with run_finished(rt.nats, upload.run_id) as finished:
        run = await rt.nats.request(
            subjects.COMPLETE_UPLOAD,
            CompleteUploadRequest(project_id=project_id, run_id=upload.run_id, complete=CompleteUpload()),
            caller=caller,
        )
        try:
            run = await asyncio.wait_for(finished, rt.settings.request_timeout_s)
        except TimeoutError:  # still running: 202 with its counts as they are now; the client polls the run
            run = await rt.nats.request(subjects.GET_RUN, RunRef(project_id=project_id, id=run.id), caller=caller)
    return run


def declared(name: str, data: bytes) -> UploadFile:
    """A file the gateway uploads for its caller, declared by its SHA-256 and type where its first bytes name an
    image type, so that it goes straight to its final key; any other goes through staging, whose validation
    says what is wrong with it."""
    found = sniff_format(data[:12])
    if found is None:
        return UploadFile(name=name)
    return UploadFile(name=name, sha256=hashlib.sha256(data).hexdigest(), content_type=MIME[found])


async def put_slot(client: aiohttp.ClientSession, slot: UploadSlot, data: bytes) -> None:
    """PUT `data` to an upload slot as its client would; a slot whose file is stored already needs none."""
    if slot.url is None:
        return
    async with client.put(slot.url, data=data, headers=slot.headers) as response:
        if response.status >= 300:
            raise LoupeError("unavailable", f"object storage refused an upload ({response.status}); retry")


@contextlib.asynccontextmanager
async def run_finished(bus: Bus, run_id: str) -> AsyncIterator[asyncio.Future[Run]]:
    """A future that ingest's event announcing that run `run_id` finished resolves with the run. It is
    subscribed before the block runs, so a run completed inside it cannot finish unseen, and unsubscribed
    after, so each request holds one subscription only while it waits."""
    finished: asyncio.Future[Run] = asyncio.get_running_loop().create_future()
    wanted = run_id.encode()

    async def receive(msg: Msg) -> None:
        # Every run's progress comes here: only events that mention this run are decoded.
        if finished.done() or wanted not in msg.data:
            return
        run = decoder(RunProgressed).decode(decoder(RawEnvelope).decode(msg.data).data).run
        if run.id == run_id and run.finished_at is not None:
            finished.set_result(run)

    # The subscription goes out on the connection before any request the block sends: the server has it
    # before the run can start.
    subscription = await bus.nc.subscribe(subjects.RUN_PROGRESSED.subject, cb=receive)
    try:
        yield finished
    finally:
        await subscription.unsubscribe()


OPENAPI = {
    "operationId": OPERATION_ID,
    "summary": "Upload images as multipart/form-data (one part with a filename per image, at most 100); "
    "answers 201 with each file's outcome, or 202 while the import still runs",
    "tags": ["ingest"],
    "parameters": [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("project_id", "dataset_id")
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            }
        },
    },
    "responses": {
        status: {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UploadedFiles"}}},
        }
        for status, text in (("201", "every file processed"), ("202", "still processing; poll the run"))
    },
}
