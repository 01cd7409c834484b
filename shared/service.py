"""The shape every service shares: declare commands, consumers and checks; `run` does the rest.

Start-up order: HTTP (so liveness answers during migrations) → NATS and streams → Postgres and
migrations → buckets → the service's own start-up hooks → outbox relay → commands → consumers →
ready. Shutdown runs it backwards: not ready → stop taking commands and let in-flight ones finish →
stop consumers after their current message → flush the outbox → drain NATS → close Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import asyncpg
import msgspec
import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proto import subjects
from proto.common import DeadLetter, DeadLetterList, Empty, ListDeadLetters, ReplayDeadLetter, ServiceInfo
from proto.subjects import Command, Event
from shared import consumers, db
from shared.bus import Bus, RequestContext, decode
from shared.consumers import Consumer, ConsumerSpec, Delivery, MessageHandler
from shared.logs import configure_logging
from shared.outbox import Relay
from shared.settings import Settings, SettingsError, load_settings
from shared.storage import Storage

log = logging.getLogger(__name__)

VERSION = "0.1.0"

# aiohttp's HTTP parser answers a URL or header line over its limits with a plain-text 400 that no
# middleware sees. These sit far above what the gateway takes (services/gateway/problems.py), so that
# going over the gateway's limits is answered as a problem; only absurd sizes still meet the parser.
# At most 128 headers of 64 KiB keep a request's head within 8 MiB, like a body.
HTTP_PARSER_LIMITS: dict[str, Any] = {"max_line_size": 1 << 20, "max_field_size": 1 << 16}


T = TypeVar("T")


class StateKey(Generic[T]):
    """A key of `Runtime.state` that carries the type of its value, as aiohttp's `AppKey` does for an
    application: `rt.state[KEY]` is a `T` to mypy, wherever it is read."""

    __slots__ = ("name",)

    def __init__(self, name: str, kind: type[T]) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<StateKey {self.name}>"


class State:
    """What a service opens in its own contexts and start-up hooks (a Triton client, caches), by typed key."""

    def __init__(self) -> None:
        self._values: dict[StateKey[Any], Any] = {}

    def __getitem__(self, key: StateKey[T]) -> T:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(
                f"{key.name} is not in the runtime's state yet: the context or hook that makes it has not run"
            ) from None

    def __setitem__(self, key: StateKey[T], value: T) -> None:
        self._values[key] = value


class Runtime:
    """What a running service hands its handlers: settings and the clients it opened."""

    def __init__(self, service: Service, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.bus: Bus | None = None
        self.pool: asyncpg.Pool | None = None
        self.storage = Storage(settings)
        self.ready = False
        self.state = State()

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, f"{self.service.name} runs without a database"
        return self.pool

    @property
    def nats(self) -> Bus:
        assert self.bus is not None, "the bus is not connected yet"
        return self.bus


RUNTIME = web.AppKey("runtime", Runtime)

CommandHandler = Callable[[Runtime, Any, RequestContext], Awaitable[Any]]
H = TypeVar("H", bound=CommandHandler)


class Answers(list[tuple[Command, CommandHandler]]):
    """The commands a module answers, each declared on its handler with `@ANSWERS(subjects.X)`, so a
    command and what answers it are read together; the service answers `*module.ANSWERS`."""

    def __call__(self, command: Command) -> Callable[[H], H]:
        def declare(handler: H) -> H:
            self.append((command, handler))
            return handler

        return declare


ConsumerHandler = Callable[[Runtime, Any, Delivery], Awaitable[None]]
# (runtime, project id of the envelope, typed event data, delivery)
EventHandler = Callable[[Runtime, str | None, Any, Delivery], Awaitable[None]]


class RawEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """An event envelope whose data is decoded later, with the type its subject names."""

    id: str
    type: str
    project: str | None
    data: msgspec.Raw


Hook = Callable[[Runtime], Awaitable[None]]
Context = Callable[[Runtime], AsyncIterator[None]]


@dataclass(eq=False)
class Service:
    """What a service is: its name, its schema's migrations, its buckets and HTTP app, and what it does on the
    bus (commands, consumers, event handlers), at start-up and to be ready."""

    name: str
    _: KW_ONLY
    migrations: Path | None = None
    buckets: tuple[str, ...] = ()
    uses_db: bool = True
    events_concurrency: int = 1
    make_app: Callable[[Settings], web.Application] = lambda settings: web.Application()
    commands: list[tuple[Command, CommandHandler]] = field(default_factory=list, init=False)
    consumer_specs: list[ConsumerSpec[ConsumerHandler]] = field(default_factory=list, init=False)
    event_handlers: dict[str, tuple[Event, EventHandler]] = field(default_factory=dict, init=False)
    startup_hooks: list[Hook] = field(default_factory=list, init=False)
    contexts: list[Context] = field(default_factory=list, init=False)
    ready_checks: dict[str, Hook] = field(default_factory=dict, init=False)
    # Checks of other services rather than of this process: `/readyz?scope=self` leaves them out.
    dependency_checks: set[str] = field(default_factory=set, init=False)

    def answer(self, pairs: Iterable[tuple[Command, CommandHandler]]) -> None:
        """Answer each command with its handler."""
        self.commands.extend(pairs)

    def consumer(
        self, kind: str, stream: str, filter_subject: str, payload_type: Any
    ) -> Callable[[ConsumerHandler], ConsumerHandler]:
        """Register a durable consumer named `<service>-<kind>`."""

        def register(handler: ConsumerHandler) -> ConsumerHandler:
            self.consumer_specs.append(
                ConsumerSpec(
                    durable=f"{self.name}-{kind}",
                    stream=stream,
                    filter_subjects=(filter_subject,),
                    payload_type=payload_type,
                    handler=handler,
                )
            )
            return handler

        return register

    def on_event(self, event: Event) -> Callable[[EventHandler], EventHandler]:
        """Handle another service's event. All of a service's event handlers share one durable
        consumer, `<service>-events`, so one lag figure says how far behind its read models are."""

        def register(handler: EventHandler) -> EventHandler:
            self.event_handlers[event.subject] = (event, handler)
            return handler

        return register

    def consumers(self) -> list[ConsumerSpec[ConsumerHandler]]:
        """Every durable consumer the service creates: its own, and `<service>-events` when it handles
        events. The names are what deploy/k8s/keda.yaml scales on."""
        if not self.event_handlers:
            return list(self.consumer_specs)

        async def dispatch(rt: Runtime, envelope: RawEnvelope, delivery: Delivery) -> None:
            event, handler = self.event_handlers[delivery.subject]
            await handler(rt, envelope.project, decode(event.data, envelope.data), delivery)

        return [
            *self.consumer_specs,
            ConsumerSpec(
                durable=f"{self.name}-events",
                stream=subjects.EVENTS_STREAM,
                filter_subjects=tuple(self.event_handlers),
                payload_type=RawEnvelope,
                handler=dispatch,
                concurrency=self.events_concurrency,
            ),
        ]

    def context(self, context: Context) -> Context:
        """An async generator that opens a client before `yield` and closes it after, like aiohttp's
        cleanup contexts; it runs before the start-up hooks and closes after everything else."""
        self.contexts.append(context)
        return context

    def on_startup(self, hook: Hook) -> Hook:
        self.startup_hooks.append(hook)
        return hook

    def ready_check(self, name: str, *, dependency: bool = False) -> Callable[[Hook], Hook]:
        """A check `/readyz` runs once started; a `dependency` check is about another service."""

        def register(check: Hook) -> Hook:
            self.ready_checks[name] = check
            if dependency:
                self.dependency_checks.add(name)
            return check

        return register

    def main(self) -> None:
        """Entry point of `python -m services.<name>`."""
        try:
            settings = load_settings()
        except SettingsError as exc:
            raise SystemExit(f"{self.name}: {exc}") from None
        configure_logging(self.name, settings.log_level)
        try:
            uvloop.run(Process(self, settings).run())
        except Exception:
            log.exception("%s failed", self.name)
            raise SystemExit(1) from None


class Process:
    """One running instance of a service."""

    def __init__(self, service: Service, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.rt = Runtime(service, settings)
        self.relay: Relay | None = None
        self.consumers: list[Consumer] = []
        self.stop_requested = asyncio.Event()
        self.exit_stack = contextlib.AsyncExitStack()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_requested.set)
        runner = await self._start_http()
        try:
            await self.start()
            # What start-up made lives as long as the process: the collector need not walk it again. And
            # a bulk call makes tens of thousands of objects that refcounting frees; collecting every 700
            # of them walked them all over and over (a fifth of a busy service's time, by py-spy).
            gc.freeze()
            gc.set_threshold(50_000, 20, 20)
            log.info("%s ready", self.service.name)
            await self.stop_requested.wait()
            log.info("%s stopping", self.service.name)
        finally:
            await self.stop(runner)

    async def start(self) -> None:
        service, rt, settings = self.service, self.rt, self.settings
        rt.bus = await Bus.connect(settings, service.name)
        await rt.bus.ensure_streams()
        if service.uses_db:
            rt.pool = await db.open_pool(settings.database_url, service.name, service.migrations, settings.db_pool_max)
        if service.buckets:
            await rt.storage.ensure_buckets(service.buckets)
        for context in service.contexts:
            await self.exit_stack.enter_async_context(contextlib.asynccontextmanager(context)(rt))
        for hook in service.startup_hooks:
            await hook(rt)
        if rt.pool is not None:
            self.relay = Relay(rt.pool, rt.bus.js, service.name, settings.outbox_poll_s, settings.events_max_age_s)
            await self.relay.start()
        for command, handler in self._all_commands():
            await rt.bus.serve(command, functools.partial(handler, rt))
        for spec in service.consumers():
            # The same spec with its handler bound to this runtime (`replace` cannot say the type changes).
            bound = cast(
                ConsumerSpec[MessageHandler], msgspec.structs.replace(spec, handler=functools.partial(spec.handler, rt))
            )
            consumer = Consumer(bound, rt.bus, rt.db, settings)
            await consumer.start()
            self.consumers.append(consumer)
        rt.ready = True

    def _all_commands(self) -> list[tuple[Command, CommandHandler]]:
        """The service's own commands plus those every service answers about itself."""
        name = self.service.name
        names = [c.subject for c, _ in self.service.commands]

        async def info(rt: Runtime, _: Empty, ctx: RequestContext) -> ServiceInfo:
            return ServiceInfo(
                service=name,
                version=VERSION,
                commands=names,
                consumers=[spec.durable for spec in self.service.consumers()],
            )

        own: list[tuple[Command, CommandHandler]] = [(subjects.info_command(name), info)]
        if self.service.uses_db:
            list_command, replay_command = subjects.dead_letter_commands(name)

            async def list_letters(rt: Runtime, query: ListDeadLetters, ctx: RequestContext) -> DeadLetterList:
                return await consumers.list_dead_letters(rt.db, query)

            async def replay(rt: Runtime, query: ReplayDeadLetter, ctx: RequestContext) -> DeadLetter:
                return await consumers.replay_dead_letter(rt.db, rt.nats, query)

            own += [(list_command, list_letters), (replay_command, replay)]
        return [*self.service.commands, *own]

    async def stop(self, runner: web.AppRunner) -> None:
        rt, grace = self.rt, self.settings.shutdown_grace_s
        rt.ready = False
        # HTTP first: the gateway's in-flight requests still need the bus to finish.
        await runner.cleanup()
        if rt.bus is not None:
            await rt.bus.stop_serving(grace)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.stop() for c in self.consumers)), grace)
        if self.relay is not None:
            await self.relay.stop()
        if rt.bus is not None:
            await rt.bus.close()
        if rt.pool is not None:
            await rt.pool.close()
        await rt.storage.close()
        await self.exit_stack.aclose()

    # -- HTTP: health, readiness, metrics (and the API, on the gateway) ----------------------------

    async def _start_http(self) -> web.AppRunner:
        app = self.service.make_app(self.settings)
        app[RUNTIME] = self.rt
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/readyz", _readyz)
        app.router.add_get("/metrics", _metrics)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=self.settings.shutdown_grace_s,
            **HTTP_PARSER_LIMITS,
        )
        await runner.setup()
        await web.TCPSite(runner, self.settings.http_host, self.settings.http_port).start()
        return runner


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": request.app[RUNTIME].service.name})


READY_SCOPES = ("all", "self")


async def _readyz(request: web.Request) -> web.Response:
    """200 while every check passes, else 503; `checks` names each and what fails. `?scope=self` leaves
    out the dependency checks (the gateway's backends): what an orchestrator needs to decide whether
    this process should get traffic, as opposed to whether everything behind it works."""
    rt = request.app[RUNTIME]
    scope = request.query.get("scope", "all")
    if scope not in READY_SCOPES:
        return web.json_response(
            {"code": "invalid", "detail": f"scope must be one of {', '.join(READY_SCOPES)}", "path": "query.scope"},
            status=422,
            content_type="application/problem+json",
        )
    checks: dict[str, str] = {"started": "ok" if rt.ready else "starting"}
    if rt.ready:
        checks["nats"] = "ok" if rt.nats.nc.is_connected else "disconnected"
        probes: dict[str, Hook] = {
            name: check
            for name, check in rt.service.ready_checks.items()
            if scope == "all" or name not in rt.service.dependency_checks
        }
        if rt.pool is not None:
            probes["postgres"] = _ping_postgres
        # Together, so that five slow backends cost one timeout, not five.
        results = await asyncio.gather(*(_probe(check, rt) for check in probes.values()))
        checks.update(zip(probes, results, strict=True))
    ok = all(v == "ok" for v in checks.values())
    return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)


async def _probe(check: Hook, rt: Runtime) -> str:
    try:
        await asyncio.wait_for(check(rt), 2.0)
    except Exception as exc:
        return f"failing: {type(exc).__name__}: {exc}"
    return "ok"


async def _ping_postgres(rt: Runtime) -> None:
    await rt.db.fetchval("SELECT 1")


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
