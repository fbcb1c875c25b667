"""Everything the daemon runs, made once from the manifest into one immutable bundle.

One function per part, each taking what it needs: a part that gets a new collaborator changes its
own function only. Nothing is started here (`Daemon.start` does that, in `Parts.ordered`); what
was made before a failure is closed again, so a daemon that cannot start leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lambdad.api.kinesis import KinesisApi
from lambdad.api.lambda_api import LambdaApi
from lambdad.api.sqs_json import SqsApi
from lambdad.clock import Clock
from lambdad.console import Console
from lambdad.daemon.components import (
    BucketsPart,
    Component,
    ConsolePart,
    DispatcherPart,
    FunctionsPart,
    PollerPart,
    ReloadWatchPart,
    SchedulesPart,
    ServicesPart,
    StorePart,
)
from lambdad.daemon.serving import API, LISTENER, Exposure, HttpPart, bind_endpoints, listener_maker
from lambdad.daemon.watch import ReloadWatch
from lambdad.dispatcher import Dispatcher
from lambdad.health import Health
from lambdad.http.guard import Guard
from lambdad.http.server import HttpServers
from lambdad.logs import LogBook
from lambdad.manifest.model import Manifest, ScheduleTrigger, TargetKind
from lambdad.runtime.functions import Functions
from lambdad.services.queues import Queues
from lambdad.services.streams import Streams
from lambdad.statedir import StateDir
from lambdad.store import Durability, Store, invocations
from lambdad.store.db import STORE_FILE
from lambdad.store.salvage import set_aside_damage
from lambdad.triggers.buckets.sync import BucketSync, bucket_root
from lambdad.triggers.buckets.watch import BucketWatcher
from lambdad.triggers.mappings.sqs import SqsPoller
from lambdad.triggers.mappings.streams import StreamPoller

if TYPE_CHECKING:
    from lambdad.triggers.schedules.service import Schedules

MakeFunctions = Callable[[Manifest, LogBook, Clock], Functions]


@dataclass(frozen=True)
class Context:
    """What every part may be built with: the daemon's own services and its callbacks."""

    state: StateDir
    clock: Clock
    console: Console
    health: Health
    wake: Callable[[], None]  #: ends the daemon loop's wait (a reload or code change to look at)
    health_changed: Callable[[], None]  #: daemon.json should be rewritten
    exposure: Exposure
    allow_hosts: tuple[str, ...]
    make_functions: MakeFunctions


@dataclass(frozen=True)
class Parts:
    """The built daemon. `ordered` is the start order (each part after what it uses; the servers
    last, once the daemon said "ready"); stops go in reverse."""

    store: StorePart
    console: ConsolePart
    functions: FunctionsPart
    services: ServicesPart
    dispatcher: DispatcherPart
    sqs: PollerPart
    streams: PollerPart
    buckets: BucketsPart
    schedules: SchedulesPart
    reload_watch: ReloadWatchPart
    http: HttpPart
    #: What the start-up found: damaged store files set aside, and async events left to resume.
    damage: tuple[str, ...]
    waiting: int

    @property
    def working(self) -> tuple[Component, ...]:
        return (self.store, self.console, self.functions, self.services, self.dispatcher, self.sqs, self.streams,
                self.buckets, self.schedules, self.reload_watch)

    @property
    def ordered(self) -> tuple[Component, ...]:
        return (*self.working, self.http)


def build(manifest: Manifest, ctx: Context) -> Parts:
    with contextlib.ExitStack() as undo:
        sockets = bind_endpoints(manifest, ctx.exposure)  # first: a port in use is a start-up error
        undo.callback(lambda: [s.close() for s in sockets.values()])
        damage = set_aside_damage(ctx.state.path / STORE_FILE, ctx.clock.time(), used_before=ctx.state.was_used)
        functions = make_functions(manifest, ctx)
        undo.callback(functions.close, force=True)
        store = Store.in_state_folder(ctx.state.path, Durability(manifest.durability))
        undo.callback(store.close)
        with store.reading() as tx:
            waiting = sum(c.queued + c.retrying + c.in_flight for c in invocations.counts(tx).values())
        dispatcher = make_dispatcher(store, functions, ctx)
        queues = Queues(store, ctx.clock, manifest, on_sent=lambda: sqs.wake())
        sqs, streams = make_sqs_poller(manifest, queues, functions, ctx), make_stream_poller(
            manifest, store, functions, dispatcher, ctx)
        parts = Parts(
            store=StorePart(store),
            console=ConsolePart(ctx.console, manifest),
            functions=FunctionsPart(functions, ctx.console.warn),
            services=ServicesPart(queues),
            dispatcher=DispatcherPart(dispatcher),
            sqs=PollerPart(sqs),
            streams=PollerPart(streams),
            buckets=BucketsPart(make_bucket_watcher(manifest, store, functions, dispatcher, ctx)),
            schedules=SchedulesPart(lambda m: make_schedules(m, store, dispatcher, ctx), manifest),
            reload_watch=ReloadWatchPart(make_reload_watch(manifest, ctx), manifest,
                                         lambda m: code_folders(m, ctx.state.path)),
            http=make_http(manifest, sockets, functions, dispatcher, queues, streams, store, ctx),
            damage=tuple(damage),
            waiting=waiting,
        )
        undo.pop_all()
    return parts


def make_functions(manifest: Manifest, ctx: Context) -> Functions:
    logbook = LogBook(ctx.state.logs, echo=ctx.console.function_line, health=ctx.health, clock=ctx.clock)
    return ctx.make_functions(manifest, logbook, ctx.clock)


def make_dispatcher(store: Store, functions: Functions, ctx: Context) -> Dispatcher:
    return Dispatcher(store, functions, ctx.clock, on_warning=ctx.console.warn, health=ctx.health)


def make_sqs_poller(manifest: Manifest, queues: Queues, functions: Functions, ctx: Context) -> SqsPoller:
    return SqsPoller(manifest, queues, functions, ctx.clock, health=ctx.health, on_error=ctx.health_changed)


def make_stream_poller(manifest: Manifest, store: Store, functions: Functions, dispatcher: Dispatcher,
                       ctx: Context) -> StreamPoller:
    return StreamPoller(manifest, Streams(store, ctx.clock), functions, ctx.clock, deliverer=dispatcher.deliverer,
                        health=ctx.health)


def make_bucket_sync(name: str, manifest: Manifest, store: Store, functions: Functions, ctx: Context) -> BucketSync:
    return BucketSync(manifest.buckets[name], manifest, store, ctx.clock, warn=ctx.console.warn,
                      on_created=functions.recent.file_event)


def make_bucket_watcher(manifest: Manifest, store: Store, functions: Functions, dispatcher: Dispatcher,
                        ctx: Context) -> BucketWatcher:
    syncs = [make_bucket_sync(name, manifest, store, functions, ctx)
             for name, bucket in manifest.buckets.items() if bucket_root(bucket)]
    return BucketWatcher(syncs, store, warn=ctx.console.warn, on_commit=dispatcher.wake, health=ctx.health,
                         clock=ctx.clock)


def make_schedules(manifest: Manifest, store: Store, dispatcher: Dispatcher, ctx: Context) -> Schedules | None:
    """None without a schedule in the manifest: APScheduler is imported only for one (85 ms of start-up)."""
    if not any(isinstance(t, ScheduleTrigger) for fn in manifest.functions.values() for t in fn.events):
        return None
    from lambdad.triggers.schedules.service import Schedules

    return Schedules(manifest, store, ctx.clock, on_commit=dispatcher.wake, health=ctx.health, warn=ctx.console.warn)


def make_reload_watch(manifest: Manifest, ctx: Context) -> ReloadWatch:
    return ReloadWatch(manifest.file, wake=ctx.wake, clock=ctx.clock)


def code_folders(manifest: Manifest, state: Path) -> tuple[list[Path], list[Path]]:
    """The functions' code folders, and what lambdad itself writes that may sit inside one of
    them (the state folder, buckets, folder targets): changes there are not code changes."""
    written = [state, *(b.path for b in manifest.buckets.values())]
    for fn in manifest.functions.values():
        cfg = fn.async_config
        written += [Path(t.name) for t in (cfg.dead_letter, cfg.on_success, cfg.on_failure)
                    if t is not None and t.kind is TargetKind.folder]
    return [fn.code for fn in manifest.functions.values()], written


def make_http(manifest: Manifest, sockets: dict[str, socket.socket], functions: Functions, dispatcher: Dispatcher,
              queues: Queues, streams: StreamPoller, store: Store, ctx: Context) -> HttpPart:
    pool = ThreadPoolExecutor(max_workers=manifest.concurrency + 4, thread_name_prefix="http")
    api_endpoint = manifest.api
    api = LambdaApi(manifest, functions, dispatcher.invocations, pool, python_version=functions.python_version,
                    sqs=SqsApi(queues, pool), kinesis=make_kinesis_api(manifest, store, pool, streams, ctx),
                    guard=Guard.of(api_endpoint.host, ctx.allow_hosts, getattr(api_endpoint, "allow_origins", ())),
                    clock=ctx.clock, warn=ctx.console.warn)
    servers = HttpServers(getattr(manifest.api, "limits", None))
    part = HttpPart(servers, api, pool, listener_maker(functions, pool, ctx.clock), ctx.exposure, ctx.console.say)
    servers.add(API, sockets.pop(API), api)
    for key in list(sockets):
        part.serve_listener(key.removeprefix(LISTENER), sockets.pop(key), manifest)
    return part



def make_kinesis_api(manifest: Manifest, store: Store, pool: ThreadPoolExecutor, streams: StreamPoller,
                     ctx: Context) -> KinesisApi:
    return KinesisApi(manifest, Streams(store, ctx.clock, on_put=streams.wake), pool, ctx.clock.time())
