"""What the HTTP servers grant a client, seen from a raw socket: headers past their size get 431 and a
closed connection, headers sent too slowly are cut off at their deadline, idle connections close."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from lambdad.http.asgi import respond
from lambdad.http.server import HttpServers, bind
from lambdad.manifest.model import Endpoint, HttpLimits
from tests.helpers import wait_for

LIMITS = HttpLimits(header_bytes=8 * 1024, header_timeout_s=0.5, keep_alive_s=1.5)


async def hello(scope, receive, send) -> None:
    if scope["type"] == "http":
        await respond(send, 200, [("content-type", "text/plain")], b"hello")


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    servers = HttpServers(LIMITS)
    sock = bind(Endpoint("127.0.0.1", 0), "test")
    port = sock.getsockname()[1]
    servers.add("test", sock, hello)
    servers.start()
    assert servers.wait_started()
    yield "127.0.0.1", port
    servers.stop(1)


class Client:
    """A raw connection that notices when the server closes it."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.sock.setblocking(False)
        self.received = b""
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def poll(self) -> bool:
        """Reads what has arrived; True once the server closed the connection."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    break
                self.received += chunk
        except BlockingIOError:
            pass
        except ConnectionResetError:
            self.closed = True
        return self.closed

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(address) -> Iterator[Client]:
    c = Client(address)
    yield c
    c.close()


def test_a_request_within_the_limits_is_served_and_kept_alive(client: Client):
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"x-a: " + b"a" * 7000 + b"\r\n\r\n")
    wait_for(lambda: client.poll() or client.received.endswith(b"hello"), 5, what="the answer")
    assert client.received.startswith(b"HTTP/1.1 200") and not client.closed
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection serves the next request
    wait_for(lambda: client.poll() or client.received.count(b"hello") == 2, 5, what="the second answer")
    assert client.received.count(b"HTTP/1.1 200") == 2


@pytest.mark.parametrize("split", [False, True])
def test_oversized_headers_get_431_and_the_connection_closes(client: Client, split: bool):
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nx-big: " + b"a" * 20_000 + b"\r\n\r\n"
    for piece in ([huge[:4000], huge[4000:]] if split else [huge]):
        try:
            client.send(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
    wait_for(client.poll, 5, what="the server to close the connection")
    assert client.received.startswith(b"HTTP/1.1 431 ")


def test_many_small_headers_count_too(client: Client):
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a: b\r\n" * 3000 + b"\r\n")
    wait_for(client.poll, 5, what="the server to close the connection")
    assert client.received.startswith(b"HTTP/1.1 431 ")


def test_slow_headers_are_cut_off_at_the_deadline(client: Client):
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")

    def trickle() -> bool:  # a byte now and then: never idle, never done
        if not client.poll():
            try:
                client.send(b"x")
            except (BrokenPipeError, ConnectionResetError):
                return True
        return client.closed

    wait_for(trickle, 5, interval=0.05, what="the server to close a connection whose headers never end")
    assert client.received.startswith(b"HTTP/1.1 408 ")


def test_idle_connections_close(address):
    fresh = Client(address)  # never sends a byte
    kept = Client(address)
    try:
        kept.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: kept.poll() or kept.received.endswith(b"hello"), 5, what="the answer")
        wait_for(lambda: fresh.poll() and kept.poll(), 5, what="idle connections to be closed")
        assert fresh.received == b""
    finally:
        fresh.close()
        kept.close()
