"""The daemon's HTTP side as one component: the API and every listener, bound before anything else.

Binding comes first at start-up, so that a port in use is a start-up error and not a half-started
daemon. Beyond loopback an address needs `--expose` (anyone who can reach it could run the
functions). A reload serves a listener whose address changed anew; the others get the new rules.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lambdad.api.lambda_api import LambdaApi
from lambdad.clock import Clock
from lambdad.daemon.components import Change, Part
from lambdad.errors import LambdadError
from lambdad.http.listener import ListenerApp
from lambdad.http.server import HttpServers, bind, is_loopback
from lambdad.manifest.model import Endpoint, Manifest
from lambdad.runtime.functions import Functions

API = "api"
LISTENER = "listener:"


@dataclass(frozen=True)
class Exposure:
    """May the API and listeners bind beyond loopback (`--expose`); `warn` says so when they do."""

    allowed: bool
    warn: Callable[[str], None]

    def check(self, what: str, endpoint: Endpoint) -> None:
        if is_loopback(endpoint.host):
            return
        if not self.allowed:
            raise LambdadError(f"{what} would listen on {endpoint.host}, which is not a loopback address: anyone "
                               "who can reach it could run your functions; pass --expose to allow it")
        self.warn(f"{what} listens on {endpoint.host}: anyone who can reach it can run your functions")

    def bind(self, what: str, endpoint: Endpoint) -> socket.socket:
        self.check(what, endpoint)
        return bind(endpoint, what)


def bind_endpoints(manifest: Manifest, exposure: Exposure) -> dict[str, socket.socket]:
    """Every socket the manifest asks for (`api`, `listener:NAME`); none left open if one fails."""
    endpoints = {API: ("the API", manifest.api)}
    endpoints |= {f"{LISTENER}{n}": (f"listener {n!r}", li.endpoint) for n, li in manifest.listeners.items()}
    sockets: dict[str, socket.socket] = {}
    try:
        for key, (what, endpoint) in endpoints.items():
            sockets[key] = exposure.bind(what, endpoint)
    except LambdadError:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


class HttpPart(Part):
    """The servers start after the daemon said "ready": the sockets already accept, and uvicorn's
    import (100 ms) need not delay it."""

    def __init__(self, servers: HttpServers, api: LambdaApi, pool: ThreadPoolExecutor,
                 make_listener: Callable[[str, Manifest], ListenerApp], exposure: Exposure,
                 say: Callable[[str], None]) -> None:
        self.servers = servers
        self.api = api
        self._pool = pool
        self._make_listener = make_listener
        self._exposure = exposure
        self._say = say
        self.listeners: dict[str, ListenerApp] = {}

    def serve_listener(self, name: str, sock: socket.socket, manifest: Manifest) -> None:
        app = self._make_listener(name, manifest)
        app.port = sock.getsockname()[1]
        self.listeners[name] = app
        self.servers.add(f"{LISTENER}{name}", sock, app)

    def start(self) -> None:
        self.servers.start()

    def apply(self, change: Change) -> None:
        new, diff = change.manifest, change.diff
        self.api.manifest = new
        if self.api.kinesis is not None:
            self.api.kinesis.manifest = new
        for name in diff.listeners_removed + diff.listeners_changed:
            self.servers.remove(f"{LISTENER}{name}")
            self.listeners.pop(name, None)
        for name in diff.listeners_added + diff.listeners_changed:
            try:
                self.serve_listener(name, self._exposure.bind(f"listener {name!r}", new.listeners[name].endpoint), new)
            except LambdadError as e:
                self._exposure.warn(f"{e} (not served until fixed)")
                continue
            url_of, address = new.listeners[name].url_of, self.servers.addresses.get(f"{LISTENER}{name}")
            self._say(f"function URL of {url_of}: {address}/" if url_of else f"listener {name}: {address}")
        for app in self.listeners.values():
            app.update(new)

    def stop(self, force: bool) -> None:
        self.servers.stop()  # no new requests; those still in progress get a few seconds
        self._pool.shutdown(wait=False)


def listener_maker(functions: Functions, pool: ThreadPoolExecutor,
                   clock: Clock) -> Callable[[str, Manifest], ListenerApp]:
    return lambda name, manifest: ListenerApp(name, manifest, functions, pool, clock)
