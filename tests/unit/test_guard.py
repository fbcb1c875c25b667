"""Which host names and web pages the API serves, and what a front server's limits look like in the
manifest: pure and table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.errors import ManifestError
from lambdad.http.guard import Guard, host_name
from lambdad.http.server import is_loopback
from lambdad.manifest import load_manifest
from lambdad.manifest.model import HttpLimits
from tests.helpers import write_manifest


@pytest.mark.parametrize(("value", "name"), [
    ("localhost", "localhost"), ("LOCALHOST:9001", "localhost"), ("localhost.:1", "localhost"),
    ("[::1]:9001", "::1"), ("[::1]", "::1"), ("127.0.0.1:", "127.0.0.1"), ("Api.Example.COM", "api.example.com"),
    ("", None), (":9001", None), ("a:b", None), ("a:1:2", None), ("[::1", None), ("[::1]x", None), ("h:٣", None),
])
def test_host_names(value: str, name: str | None):
    assert host_name(value) == name


@pytest.mark.parametrize(("guard", "host", "allowed"), [
    (Guard.of("127.0.0.1"), "127.0.0.1:9001", True),
    (Guard.of("127.0.0.1"), "127.9.9.9", True),  # all of 127/8 is loopback
    (Guard.of("127.0.0.1"), "[::1]:9001", True),
    (Guard.of("127.0.0.1"), "LocalHost:9001", True),
    (Guard.of("127.0.0.1"), "bucket.localhost:9001", True),  # RFC 6761 (and virtual-host buckets to come)
    (Guard.of("127.0.0.1"), "localhost.evil.example", False),
    (Guard.of("127.0.0.1"), "evil.example", False),
    (Guard.of("127.0.0.1"), "10.0.0.5:9001", False),  # not an address it listens on
    (Guard.of("127.0.0.1"), None, True),  # HTTP/1.0 without Host: no browser sends that
    (Guard.of("10.0.0.5"), "10.0.0.5:9001", True),  # --expose on an address: that address
    (Guard.of("0.0.0.0"), "192.168.1.20:9001", True),  # on every address: any address (a rebinding needs a name)
    (Guard.of("0.0.0.0"), "devbox.lan:9001", False),
    (Guard.of("0.0.0.0", ["devbox.lan"]), "DEVBOX.lan:9001", True),  # --allow-host
    (Guard.of("0.0.0.0", ["*.devbox.lan"]), "api.devbox.lan", True),
    (Guard.of("0.0.0.0", ["*.devbox.lan"]), "devbox.lan", False),
    (Guard.of("devbox.lan"), "devbox.lan:9001", True),  # the name it is bound to
])
def test_hosts(guard: Guard, host: str | None, allowed: bool):
    assert guard.host_allowed(host) is allowed


@pytest.mark.parametrize(("origin", "site", "allowed"), [
    (None, None, True),  # SDKs, the aws CLI, curl
    (None, "none", True),  # the user's own navigation
    (None, "same-origin", True),
    (None, "cross-site", False),
    (None, "same-site", False),  # another port of localhost is the same site
    ("http://evil.example", None, False),
    ("null", None, False),
    ("http://localhost:3000", "same-site", True),  # listed
    ("HTTP://LOCALHOST:3000/", None, True),
    ("http://localhost:3001", None, False),
])
def test_origins(origin: str | None, site: str | None, allowed: bool):
    assert Guard.of("127.0.0.1", allow_origins=["http://localhost:3000"]).origin_allowed(origin, site) is allowed


@pytest.mark.parametrize(("host", "loopback"), [("localhost", True), ("LOCALHOST", True), ("localhost.", True),
                                                ("127.0.0.1", True), ("::1", True), ("[::1]", True),
                                                ("0.0.0.0", False), ("foo.localhost", False), ("example.com", False)])
def test_loopback_binds(host: str, loopback: bool):
    assert is_loopback(host) is loopback


def test_api_settings_in_the_manifest(tmp_path: Path):
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = write_manifest(tmp_path, """
        version: 1
        api:
          port: 0
          allow_origins: ["http://localhost:3000", "https://App.Example/"]
          limits: {header_bytes: 16384, header_timeout: 10s, keep_alive: 500ms}
        functions:
          f: {handler: app.handler, code: .}
    """)
    api = load_manifest(path).api
    assert api.allow_origins == ("http://localhost:3000", "https://app.example")
    assert api.limits == HttpLimits(header_bytes=16384, header_timeout_s=10.0, keep_alive_s=0.5)
    path = write_manifest(tmp_path, "version: 1\nfunctions:\n  f: {handler: app.handler, code: .}\n")
    assert load_manifest(path).api.limits == HttpLimits() and load_manifest(path).api.allow_origins == ()


@pytest.mark.parametrize("api", [
    "{allow_origins: ['http://x/path']}", "{allow_origins: ['*']}", "{limits: {header_bytes: 10}}",
    "{limits: {keep_alive: 0s}}", "{limits: {header_timeout: soon}}", "{limits: {nope: 1}}",
])
def test_bad_api_settings_are_manifest_problems(tmp_path: Path, api: str):
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = write_manifest(tmp_path, f"version: 1\napi: {api}\nfunctions:\n  f: {{handler: app.handler, code: .}}\n")
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    assert all(p.split(": ")[1].startswith("api") for p in e.value.problems)
