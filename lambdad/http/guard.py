"""Who may talk to the API: which host names it answers for, and which web pages may call it.

The API runs functions and shows their environment, so a web page must not be able to use it:
- DNS rebinding: a page on `evil.example` whose name is made to resolve to 127.0.0.1 calls the API
  as if it were its own origin. Its requests say `Host: evil.example`, so the API answers only for
  the names it is reached by locally (`localhost`, `*.localhost`), IP addresses (a rebinding needs a
  name), the name it is bound to, and the names given with `--allow-host`.
- Cross-site requests: a page anywhere can POST a "simple" request (`Content-Type: text/plain`) to
  the Invoke API, and the function runs even if the page never reads the answer. Browsers say where a
  request comes from (`Origin`, `Sec-Fetch-Site`); SDKs and the aws CLI send neither. A request with
  an `Origin` not on the manifest's `api.allow_origins`, or sent by another site (`Sec-Fetch-Site:
  cross-site` or `same-site`: another port of localhost is the same site), is refused.
  `Sec-Fetch-Site: none` is the user's own navigation (typed in the address bar) and is served.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from lambdad.errors import AccessDenied
from lambdad.http.asgi import Scope, header

#: Names that always mean this machine (RFC 6761: every name under .localhost is loopback).
LOCAL_NAMES = ("localhost", "*.localhost")
_WILDCARD_BINDS = ("0.0.0.0", "::", "")


def host_name(value: str) -> str | None:
    """The name in a `Host` header: lower-case, without the port, the brackets of an IPv6 address or
    a final dot. None when it is not a host (an empty name, a port that is not a number)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket:
            return None
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if rest and not ((rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit()) or rest == ":"):
        return None
    name = name.removesuffix(".")
    return name or None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _matches(name: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return name.endswith(pattern[1:]) and len(name) > len(pattern) - 1
    return name == pattern


@dataclass(frozen=True)
class Guard:
    bound: str = "127.0.0.1"  #: the address the API listens on
    allow_hosts: tuple[str, ...] = ()  #: more names (`--allow-host`), `*.example.com` for every subdomain
    allow_origins: tuple[str, ...] = ()  #: web pages that may call the API, as `scheme://host[:port]`

    @classmethod
    def of(cls, bound: str, allow_hosts: Iterable[str] = (), allow_origins: Iterable[str] = ()) -> Guard:
        hosts = tuple(h for h in (host_name(a) if not a.startswith("*.") else a.lower() for a in allow_hosts) if h)
        return cls(bound.lower().strip("[]"), hosts, tuple(o.lower().rstrip("/") for o in allow_origins))

    def host_allowed(self, value: str | None) -> bool:
        if value is None:  # HTTP/1.0 without Host: not a browser, so not a rebinding
            return True
        name = host_name(value)
        if name is None:
            return False
        ip = _ip(name)
        if ip is not None:
            return ip.is_loopback or self.bound in _WILDCARD_BINDS or ip == _ip(self.bound)
        return any(_matches(name, p) for p in (*LOCAL_NAMES, self.bound, *self.allow_hosts))

    def origin_allowed(self, origin: str | None, site: str | None) -> bool:
        if origin is not None:
            return origin.strip().lower().rstrip("/") in self.allow_origins
        return (site or "").strip().lower() not in ("cross-site", "same-site")

    def check(self, scope: Scope) -> None:
        """Raises AccessDenied for a request the API must not serve."""
        host = header(scope, b"host")
        if not self.host_allowed(host):
            raise AccessDenied(f"lambdad's API does not answer for the host {host[:100]!r}: use localhost or "
                               "127.0.0.1, or start lambdad with --allow-host NAME")
        if not self.origin_allowed(header(scope, b"origin"), header(scope, b"sec-fetch-site")):
            raise AccessDenied("lambdad's API does not serve requests from web pages: add the page's origin to "
                               "the manifest's api.allow_origins to allow it")
