"""Telling people: webhooks when a render succeeds, fails or is cancelled.

Each finished job gets one delivery per target: its ``notify_url`` and every tenant webhook
subscribed to the event, written as outbox rows in the transaction that finishes the job
(``queue/lifecycle.py``), so a restart loses none; the API's upkeep loop sends the due
ones (``application/webhooks.py``) and retries failures with exponential backoff for 24
hours. This module is what both ends share: the events, URL safety and signatures.

Every call is signed: ``Framefarm-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the secret>``. Receivers recompute it and reject old timestamps.
Targets on loopback, private, link-local or reserved addresses are refused unless
``FRAMEFARM_WEBHOOK_ALLOW_PRIVATE`` is set.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from typing import Literal
from urllib.parse import urlsplit

Event = Literal["render.succeeded", "render.failed", "render.cancelled"]
EVENTS: tuple[Event, ...] = ("render.succeeded", "render.failed", "render.cancelled")


class UnsafeTarget(ValueError):
    """The webhook URL is not an http(s) URL on a public address."""


def check_url(url: str, *, allow_private: bool, resolve: bool = True) -> None:
    """Refuse non-http(s) URLs and (after DNS) addresses inside the network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget(f"{url!r}: webhooks go to http:// or https:// URLs")
    if allow_private or not resolve:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnsafeTarget(f"{parts.hostname}: cannot be resolved ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise UnsafeTarget(f"{parts.hostname} resolves to {address}, a private or "
                               "reserved address (set FRAMEFARM_WEBHOOK_ALLOW_PRIVATE to allow)")


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
