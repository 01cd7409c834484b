"""Typed request/reply over core NATS, and the JetStream streams every service relies on.

One JSON encoder for everything and one decoder per message type, built once. A command's reply is
either its result or, with the `Loupe-Error` header set, an `ErrorReply`; `request` turns the latter
back into a `LoupeError`, so callers never parse error bodies themselves.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict, Unpack

import msgspec
import nats
import nats.errors
import nats.js.api
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from proto import subjects
from proto.common import Caller, ErrorReply
from proto.subjects import Command
from shared import metrics
from shared.errors import LoupeError
from shared.logs import new_request_id, request_id_var
from shared.settings import Settings

log = logging.getLogger(__name__)

encoder = msgspec.json.Encoder()


@functools.cache
def decoder(kind: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(kind)


def decode(kind: type, data: bytes) -> Any:
    """Decode `data` as `kind`; a mismatch is the caller's fault, reported with the field's path.

    Strings must be text Postgres can store: a NUL character or a lone UTF-16 surrogate is refused
    here, once for every service, rather than failing a query deep inside one."""
    try:
        value = decoder(kind).decode(data)
        if _NUL_ESCAPE.search(data):  # cheap: only JSON that spells out \u0000 is walked
            _refuse_unstorable(msgspec.json.decode(data))
        return value
    except msgspec.ValidationError as exc:
        raise LoupeError("invalid", _validation_message(str(exc)), path=_error_path(str(exc))) from None
    except msgspec.DecodeError as exc:
        if _SURROGATE_ESCAPE.search(data):
            _refuse_unstorable(_lenient_json(data))
        raise LoupeError("malformed", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise nests_too_deeply() from None


def nests_too_deeply() -> LoupeError:
    """JSON deeper than the recursion limit lets msgspec go (about a thousand levels) is refused."""
    return LoupeError(
        "malformed", "the body nests too deeply; keep JSON within a few hundred levels of arrays and objects"
    )


# An escaped backslash followed by "u0000" matches too; walking the decoded value tells them apart.
_NUL_ESCAPE = re.compile(rb"\\u0000")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lenient_json(data: bytes) -> Any:
    """`data` decoded by the standard library, which (unlike msgspec) keeps lone surrogates so that they
    can be located; None when it is not JSON at all."""
    try:
        return json.loads(bytes(data))
    except (ValueError, RecursionError):
        return None


def _refuse_unstorable(document: Any) -> None:
    found = _first_unstorable(document)
    if found is not None:
        path, fault = found
        raise LoupeError("invalid", f"`{path}` holds {fault}; send text without it", path=path)


def _first_unstorable(document: Any) -> tuple[str, str] | None:
    """The path and fault of the first string or key of `document` that is not storable text. A loop
    rather than recursion: a document msgspec could decode must not hit the recursion limit here."""
    pending: list[tuple[str, Any]] = [("$", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if fault := text_fault(value):
                return path, fault
        elif isinstance(value, dict):
            for key in value:
                if fault := text_fault(key):
                    return f"{path}[...]", fault  # msgspec's way of pointing at a key
            pending.extend((f"{path}.{key}", item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(value))))
    return None


def text_fault(text: str) -> str | None:
    """What keeps `text` out of a Postgres text column, if anything."""
    if "\x00" in text:
        return "a NUL character (U+0000), which text cannot hold"
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return "a lone UTF-16 surrogate, which is not Unicode text"
    return None


def _error_path(message: str) -> str:
    # msgspec ends its messages with "- at `$.field[0]`"; the part after "at" is the path.
    marker = " - at `"
    return message.rsplit(marker, 1)[1].rstrip("`") if marker in message else "$"


def _validation_message(message: str) -> str:
    return message.replace(" - at `", " at `")


@functools.lru_cache(maxsize=4096)
def caller_header(caller: Caller) -> str:
    """The `Loupe-Caller` header; a gateway sends the same few callers over and over."""
    return encoder.encode(caller).decode()


class RequestContext(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    caller: Caller | None

    def require_caller(self) -> Caller:
        if self.caller is None:
            raise LoupeError("unauthenticated", "this command needs a caller; send it through the gateway")
        return self.caller


Handler = Callable[[Any, RequestContext], Awaitable[Any]]


class RequestOptions(TypedDict, total=False):
    """Who asks (`caller`), under which request id, and how long to wait (seconds)."""

    caller: Caller | None
    request_id: str | None
    timeout: float | None


class Bus:
    """A service's NATS connection: commands it serves, requests it sends, its JetStream context."""

    def __init__(self, nc: NatsClient, settings: Settings, service: str) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.settings = settings
        self.service = service
        self._subscriptions: list[Subscription] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(cls, settings: Settings, service: str) -> Bus:
        async def on_error(exc: Exception) -> None:
            log.warning("nats connection error: %s", exc)

        nc = await nats.connect(
            servers=[url.strip() for url in settings.nats_url.split(",")],
            name=f"loupe-{service}",
            error_cb=on_error,
            max_reconnect_attempts=-1,
            connect_timeout=5,
        )
        return cls(nc, settings, service)

    async def ensure_streams(self) -> None:
        """Create (or bring up to date) the events and jobs streams; safe to run from every service."""
        configs = (
            nats.js.api.StreamConfig(
                name=subjects.EVENTS_STREAM,
                subjects=[subjects.EVENTS_SUBJECTS],
                retention=nats.js.api.RetentionPolicy.LIMITS,
                max_age=self.settings.events_max_age_s,
                duplicate_window=120.0,
                storage=nats.js.api.StorageType.FILE,
                num_replicas=self.settings.stream_replicas,
            ),
            nats.js.api.StreamConfig(
                name=subjects.JOBS_STREAM,
                subjects=[subjects.JOBS_SUBJECTS],
                retention=nats.js.api.RetentionPolicy.WORK_QUEUE,
                duplicate_window=120.0,
                storage=nats.js.api.StorageType.FILE,
                num_replicas=self.settings.stream_replicas,
            ),
        )
        for config in configs:
            try:
                await self.js.add_stream(config)
            except nats.js.errors.BadRequestError:
                await self.js.update_stream(config)
        # Read from the stream's leader (no direct gets): a version written is seen by every later read.
        await self.js.create_key_value(
            nats.js.api.KeyValueConfig(
                bucket=subjects.SCHEMA_VERSIONS,
                history=1,
                direct=False,
                storage=nats.js.api.StorageType.FILE,
                replicas=self.settings.stream_replicas,
            )
        )

    # -- requests -------------------------------------------------------------------------------

    async def request(self, command: Command, payload: msgspec.Struct, **options: Unpack[RequestOptions]) -> Any:
        return decoder(command.reply).decode(await self.request_raw(command, payload, **options))

    async def request_raw(
        self,
        command: Command,
        payload: msgspec.Struct,
        *,
        caller: Caller | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """The reply's JSON as it came, for callers (the gateway) that pass it on unchanged."""
        headers = {subjects.HEADER_REQUEST_ID: request_id or request_id_var.get() or new_request_id()}
        if caller is not None:
            headers[subjects.HEADER_CALLER] = caller_header(caller)
        service = command.subject.split(".")[1]
        try:
            reply = await self.nc.request(
                command.subject,
                encoder.encode(payload),
                timeout=timeout or self.settings.request_timeout_s,
                headers=headers,
            )
        except nats.errors.NoRespondersError:
            raise LoupeError(
                "unavailable", f"the {service} service is not running; start it and retry", subject=command.subject
            ) from None
        except nats.errors.TimeoutError:
            raise LoupeError(
                "unavailable", f"the {service} service did not answer in time; retry later", subject=command.subject
            ) from None
        except nats.errors.MaxPayloadError:
            raise LoupeError(
                "too_large",
                f"the request is over the bus's message limit "
                f"({self.nc.max_payload:,} bytes); split it into smaller calls",
                subject=command.subject,
            ) from None
        if reply.headers and subjects.HEADER_ERROR in reply.headers:
            raise LoupeError.from_reply(decoder(ErrorReply).decode(reply.data))
        return reply.data

    # -- serving --------------------------------------------------------------------------------

    async def serve(self, command: Command, handler: Handler) -> None:
        """Answer `command` in this service's queue group; each request runs in its own task."""

        async def receive(msg: Msg) -> None:
            task = asyncio.create_task(self._answer(command, handler, msg))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

        sub = await self.nc.subscribe(command.subject, queue=self.service, cb=receive)
        self._subscriptions.append(sub)
        # A round trip to the server, so the subscription is live before anyone is told we are ready.
        await self.nc.flush()

    async def _answer(self, command: Command, handler: Handler, msg: Msg) -> None:
        headers = msg.headers or {}
        request_id = headers.get(subjects.HEADER_REQUEST_ID) or new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        outcome = "ok"
        try:
            caller_header = headers.get(subjects.HEADER_CALLER)
            caller = decoder(Caller).decode(caller_header) if caller_header else None
            request = decode(command.request, msg.data)
            result = await handler(request, RequestContext(request_id=request_id, caller=caller))
            await msg.respond(encoder.encode(result))
        except LoupeError as exc:
            outcome = exc.code
            await self._respond_error(msg, exc)
        except Exception:
            outcome = "internal"
            log.exception("command %s failed", command.subject)
            await self._respond_error(
                msg,
                LoupeError(
                    "internal",
                    f"{self.service} failed on this request; quote request id {request_id} when reporting it",
                ),
            )
        finally:
            metrics.BUS_HANDLED.labels(command.subject, outcome).inc()
            metrics.BUS_HANDLE_SECONDS.labels(command.subject).observe(time.perf_counter() - started)
            request_id_var.reset(token)

    async def _respond_error(self, msg: Msg, exc: LoupeError) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, encoder.encode(exc.to_reply()), headers={subjects.HEADER_ERROR: exc.code})

    async def stop_serving(self, grace_s: float) -> None:
        """Stop taking new commands, then let those already taken finish within `grace_s`."""
        for sub in self._subscriptions:
            await sub.unsubscribe()
        self._subscriptions.clear()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=grace_s)

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.drain()
