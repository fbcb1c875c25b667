"""Driving an ASGI app in-process, with the scope uvicorn (httptools) would build, and worlds for the
API and a listener over in-memory environments and an in-memory store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from lambdad.api.kinesis import KinesisApi
from lambdad.api.lambda_api import LambdaApi
from lambdad.api.sqs_json import SqsApi
from lambdad.dispatcher import Dispatcher
from lambdad.http.listener import ListenerApp
from lambdad.logs import LogBook
from lambdad.manifest.model import Manifest
from lambdad.runtime.functions import Functions
from lambdad.services.queues import Queues
from lambdad.services.streams import Streams
from lambdad.store import Store, invocations
from tests.component.twins import FakeSpawner, InlineExecutor, Script, echo
from tests.helpers import FakeClock


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    sent: bool = True  #: False when the app never answered

    def header(self, name: str) -> str | None:
        return next((v for k, v in reversed(self.headers) if k.lower() == name.lower()), None)

    def json(self):
        return json.loads(self.body)


def scope_of(method: str, target: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> dict:
    """What uvicorn hands the app for a request line `METHOD target`: path decoded, query raw."""
    raw_path, _, query = target.partition(b"?")
    path = raw_path.decode("ascii")
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": method, "scheme": "http", "root_path": "", "server": ("127.0.0.1", 9001),
        "client": ("127.0.0.1", 50000), "path": unquote(path) if "%" in path else path, "raw_path": raw_path,
        "query_string": query, "headers": [(k.lower(), v) for k, v in headers],
    }


async def call(app, method: str = "GET", target: bytes | str = b"/", headers: Sequence[tuple[str | bytes, str | bytes]]
               = (), body: bytes = b"", chunks: Sequence[bytes] | None = None, disconnect: bool = False) -> Reply:
    """One request. `chunks` sends the body in pieces; `disconnect` closes the connection after them."""
    raw = [(k if isinstance(k, bytes) else k.encode("latin-1"), v if isinstance(v, bytes) else v.encode("latin-1"))
           for k, v in headers]
    if not any(k.lower() == b"host" for k, _ in raw):
        raw.insert(0, (b"host", b"127.0.0.1:9001"))
    scope = scope_of(method, target if isinstance(target, bytes) else target.encode(), raw)
    pieces = list(chunks) if chunks is not None else [body]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1 or disconnect}
                for i, p in enumerate(pieces)]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    reply = Reply(0, [], b"", sent=False)

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # (a real server would wait for the client)

    async def send(message):
        if message["type"] == "http.response.start":
            reply.status, reply.sent = message["status"], True
            reply.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]]
        else:
            reply.body += message.get("body", b"")

    await asyncio.wait_for(app(scope, receive, send), 10)
    return reply


def run(app, *args, **kwargs) -> Reply:
    return asyncio.run(call(app, *args, **kwargs))


@dataclass
class ApiWorld:
    """The API (with SQS and Kinesis on its port) over in-memory environments and store."""

    tmp_path: Path
    manifest: Manifest
    script: Script = echo
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        self.spawner = FakeSpawner(self.script)
        self.functions = Functions(self.manifest, LogBook(self.tmp_path / "logs"), self.clock, {},
                                   spawn_override=self.spawner)
        self.store = Store(":memory:")
        executor = InlineExecutor()
        self.dispatcher = Dispatcher(self.store, self.functions, self.clock, lambda _: None, executor)
        self.api = LambdaApi(self.manifest, self.functions, self.dispatcher.invocations, executor,
                             sqs=SqsApi(Queues(self.store, self.clock, self.manifest), executor),
                             kinesis=KinesisApi(self.manifest, Streams(self.store, self.clock), executor,
                                                self.clock.time()),
                             clock=self.clock)

    def queued(self) -> int:
        """Accepted async invocations."""
        with self.store.reading() as tx:
            return sum(c.queued for c in invocations.counts(tx).values())

    def invocations(self) -> int:
        return sum(len(env.invocations) for env in self.spawner.spawned)

    def close(self) -> None:
        self.functions.close()
        self.store.close()


def listener_world(tmp_path: Path, manifest: Manifest, name: str, script: Script = echo,
                   clock: FakeClock | None = None) -> tuple[ListenerApp, FakeSpawner]:
    spawner, clock = FakeSpawner(script), clock or FakeClock()
    functions = Functions(manifest, LogBook(tmp_path / "logs"), clock, {}, spawn_override=spawner)
    return ListenerApp(name, manifest, functions, InlineExecutor(), clock), spawner
