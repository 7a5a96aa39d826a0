"""Telling people: webhooks when a render succeeds, fails or is cancelled.

Each finished job gets one delivery per target: its ``notify_url`` and every tenant webhook
subscribed to the event, written as outbox rows in the transaction that finishes the job
(``application/queue.py``), so a restart loses none; the API's upkeep loop hands the due
ones to the sender (``application/webhooks.py``), which retries failures with exponential
backoff for 24 hours. This module is what both ends share: the events, URL safety and
signatures.

Every call is signed: ``Framefarm-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the secret>``. Receivers recompute it and reject old timestamps.

URL safety, the rules (:func:`parse_url`, :func:`check_address`, :func:`pin`):

- A target is an absolute ``http://`` or ``https://`` URL of at most 2000 ASCII
  characters (an international host name goes as its punycode), with no whitespace or
  control characters anywhere, a host of at most 253 characters (labels of letters, digits,
  ``-`` and ``_``, at most 63 each) or an IP literal, and a port from 1 to 65535.
- No user info (``user:password@``): credentials would be shown back in every listing of
  deliveries and subscriptions, and ``http://public@private`` is a classic confusion.
  Receivers authenticate the signature instead.
- Host names that are numbers in disguise (``2130706433``, ``0x7f.1``, ``127.1``) are
  refused: only canonical IP literals are read as addresses.
- Every address a host resolves to must be public (``is_global``, not multicast), and so
  must any IPv4 address embedded in an IPv6 one: IPv4-mapped (``::ffff:a.b.c.d``),
  IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::/96``) and 6to4 (``2002::/16``).
- DNS rebinding: a delivery resolves the host once (:func:`pin`), checks every address, and
  connects to a checked address, with the original host in the ``Host`` header and as the
  TLS server name (SNI and certificate check). The resolver is injectable (``Resolver``).

Targets on loopback, private, link-local or reserved addresses are allowed only with
``FRAMEFARM_WEBHOOK_ALLOW_PRIVATE`` (tests, LANs); the syntax rules hold even then.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import re
import socket
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import SplitResult, urlsplit

Event = Literal["render.succeeded", "render.failed", "render.cancelled"]
EVENTS: tuple[Event, ...] = ("render.succeeded", "render.failed", "render.cancelled")

MAX_URL = 2000  # the column's width
MAX_HOST = 253
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""``resolve(host, port)``: the host's addresses, as strings; raises OSError when it has
none."""


class UnsafeTarget(ValueError):
    """The webhook URL is malformed, or not an http(s) URL on a public address."""


@dataclasses.dataclass(frozen=True)
class Target:
    """A parsed, well-formed webhook URL."""

    url: str
    scheme: str
    host: str  # lower case; an IPv6 literal without brackets
    port: int
    explicit_port: bool
    target: str  # path and query, what goes after the host on the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port else host

    def url_for(self, address: str) -> str:
        """This URL with the host replaced by one of its addresses."""
        host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{self.target}"


@dataclasses.dataclass(frozen=True)
class Pinned:
    """A target and the checked addresses to connect to (in the resolver's order)."""

    target: Target
    addresses: list[str]


def system_resolve(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), addresses in its order, once each."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    found: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_url(url: str) -> Target:
    """The URL's parts, or UnsafeTarget for anything malformed (never another error)."""
    if not isinstance(url, str) or not url:
        raise UnsafeTarget("webhooks go to http:// or https:// URLs")
    if len(url) > MAX_URL:
        raise UnsafeTarget(f"a webhook URL has at most {MAX_URL} characters")
    if not url.isascii():
        raise UnsafeTarget("a webhook URL is ASCII (give an international host as punycode)")
    if any(ch <= " " or ch == "\x7f" for ch in url) or "\\" in url:
        raise UnsafeTarget("a webhook URL has no whitespace, control characters or "
                           "backslashes")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise UnsafeTarget("not a well-formed URL (check the host and port)") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("webhooks go to http:// or https:// URLs")
    if "@" in parts.netloc:
        raise UnsafeTarget("a webhook URL has no user name or password")
    if not host:
        raise UnsafeTarget("a webhook URL needs a host")
    if port is not None and not 1 <= port <= 65535:
        raise UnsafeTarget("the port must be from 1 to 65535")
    bracketed = parts.netloc.rpartition("@")[2].startswith("[")
    address = _literal(host)
    if bracketed:
        if not isinstance(address, ipaddress.IPv6Address) or "%" in host:
            raise UnsafeTarget("not a well-formed IPv6 address")
    elif address is None or not isinstance(address, ipaddress.IPv4Address):
        name = host[:-1] if host.endswith(".") else host  # a fully qualified name
        labels = name.split(".")
        if len(name) > MAX_HOST or not all(_LABEL.match(label) for label in labels):
            raise UnsafeTarget("not a well-formed host name")
        if _NUMERIC_LABEL.match(labels[-1]):
            raise UnsafeTarget("a host that is a number must be a dotted IPv4 address")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Target(url=url, scheme=parts.scheme, host=host,
                  port=port or (443 if parts.scheme == "https" else 80),
                  explicit_port=port is not None, target=target)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Globally reachable, not multicast, and so is any IPv4 address it embeds."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return True


def check_address(address: str, *, allow_private: bool) -> None:
    try:
        parsed = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        raise UnsafeTarget("the host resolves to something that is not an address") from None
    if not allow_private and not is_public(parsed):
        raise UnsafeTarget("the host is (or resolves to) a loopback, private or reserved "
                           "address (set FRAMEFARM_WEBHOOK_ALLOW_PRIVATE to allow)")


def pin(url: str, *, allow_private: bool, resolve: Resolver = system_resolve) -> Pinned:
    """Resolve the URL's host once and check every address it has: the addresses a
    delivery may connect to. UnsafeTarget if any of them is refused."""
    target = parse_url(url)
    literal = _literal(target.host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = list(resolve(target.host, target.port))
        except (OSError, UnicodeError, ValueError):
            raise UnsafeTarget(f"{target.host}: cannot be resolved") from None
        if not addresses:
            raise UnsafeTarget(f"{target.host}: cannot be resolved")
    for address in addresses:
        check_address(address, allow_private=allow_private)
    return Pinned(target, addresses)


def check_url(url: str, *, allow_private: bool, resolve: bool = True,
              resolver: Resolver = system_resolve) -> Target:
    """Refuse malformed and non-http(s) URLs, and (after DNS, unless ``resolve`` is False)
    hosts with any address inside the network. Returns the parsed target."""
    target = parse_url(url)
    if allow_private:
        return target  # resolved when it is delivered to
    if resolve:
        pin(url, allow_private=False, resolve=resolver)
    elif (literal := _literal(target.host)) is not None:
        check_address(str(literal), allow_private=False)
    return target


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, tolerance: float = 300,
           now: float | None = None) -> bool:
    """What a receiver does (README has this as an example)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)
