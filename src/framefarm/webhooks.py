"""Telling people: webhooks when a render succeeds, fails or is cancelled.

Each finished job gets one delivery per target: its ``notify_url`` and every tenant webhook
subscribed to the event. Deliveries are rows, so a restart loses none; the API's upkeep
loop sends the due ones and retries failures with exponential backoff for 24 hours.

Every call is signed: ``Framefarm-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the secret>``. Receivers recompute it and reject old timestamps.
Targets on loopback, private, link-local or reserved addresses are refused unless
``FRAMEFARM_WEBHOOK_ALLOW_PRIVATE`` is set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from framefarm.db import schema as t
from framefarm.queue import store as queue

Event = Literal["render.succeeded", "render.failed", "render.cancelled"]
EVENTS: tuple[Event, ...] = ("render.succeeded", "render.failed", "render.cancelled")
GIVE_UP_AFTER = dt.timedelta(hours=24)
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0


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


# -- subscriptions --------------------------------------------------------------------------


def tenant_secret(store: queue.Store, tenant_id: str) -> str:
    """The secret that signs calls to this tenant's notify_urls (made on first use)."""
    with store.tx() as conn:
        secret = conn.execute(sa.select(t.tenants.c.webhook_secret).where(
            t.tenants.c.id == tenant_id)).scalar()
        if not secret:
            secret = "whsec_" + secrets.token_hex(24)
            conn.execute(t.tenants.update().where(t.tenants.c.id == tenant_id).values(
                webhook_secret=secret))
    return str(secret)


def subscribe(store: queue.Store, tenant_id: str, url: str, events: list[str]) -> RowMapping:
    hook_id = queue.new_id("whk")
    with store.tx() as conn:
        conn.execute(t.webhooks.insert().values(
            id=hook_id, tenant_id=tenant_id, url=url, secret="whsec_" + secrets.token_hex(24),
            events=events, created_at=store.now()))
        return conn.execute(sa.select(t.webhooks).where(t.webhooks.c.id == hook_id)
                            ).mappings().one()


def subscriptions(store: queue.Store, tenant_id: str) -> list[RowMapping]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(t.webhooks).where(
            t.webhooks.c.tenant_id == tenant_id).order_by(t.webhooks.c.created_at)).mappings())


def unsubscribe(store: queue.Store, tenant_id: str, hook_id: str) -> None:
    with store.tx() as conn:
        gone = conn.execute(t.webhooks.delete().where(
            t.webhooks.c.id == hook_id, t.webhooks.c.tenant_id == tenant_id)).rowcount
    if not gone:
        raise queue.NotFound(f"no webhook {hook_id}")


# -- deliveries -----------------------------------------------------------------------------


def enqueue(store: queue.Store, job: RowMapping | Mapping[str, Any]) -> int:
    """Record the deliveries for a job that just finished (idempotent)."""
    state = job["state"]
    event = f"render.{state}"
    if event not in EVENTS or job["kind"] != "render":
        return 0
    targets: list[tuple[str | None, str]] = []
    if job["notify_url"]:
        targets.append((None, job["notify_url"]))
    targets += [(hook["id"], hook["url"]) for hook in subscriptions(store, job["tenant_id"])
                if event in hook["events"]]
    now = store.now()
    added = 0
    with store.tx() as conn:
        for hook_id, url in targets:
            exists = conn.execute(sa.select(t.webhook_deliveries.c.id).where(
                t.webhook_deliveries.c.job_id == job["id"], t.webhook_deliveries.c.url == url,
                t.webhook_deliveries.c.event == event)).first()
            if exists:
                continue
            conn.execute(t.webhook_deliveries.insert().values(
                id=queue.new_id("dlv"), tenant_id=job["tenant_id"], job_id=job["id"],
                webhook_id=hook_id, url=url, event=event, state="pending", attempts=0,
                next_attempt_at=now, created_at=now))
            added += 1
    return added


def deliveries(store: queue.Store, tenant_id: str, job_id: str) -> list[RowMapping]:
    store.get_job(tenant_id, job_id)
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(t.webhook_deliveries).where(
            t.webhook_deliveries.c.job_id == job_id).order_by(t.webhook_deliveries.c.created_at))
            .mappings())


def _secret(store: queue.Store, delivery: RowMapping) -> str:
    if delivery["webhook_id"] is None:
        return tenant_secret(store, delivery["tenant_id"])
    with store.engine.connect() as conn:
        secret = conn.execute(sa.select(t.webhooks.c.secret).where(
            t.webhooks.c.id == delivery["webhook_id"])).scalar()
    return str(secret or tenant_secret(store, delivery["tenant_id"]))


def deliver_due(store: queue.Store, payload_for: Any, client: httpx.Client, *,
                allow_private: bool, limit: int = 20) -> int:
    """Send the deliveries that are due; returns how many were attempted.

    ``payload_for(job_id)`` builds the body at send time, so its download link is fresh.
    """
    now = store.now()
    with store.engine.connect() as conn:
        due = list(conn.execute(sa.select(t.webhook_deliveries).where(
            t.webhook_deliveries.c.state == "pending",
            t.webhook_deliveries.c.next_attempt_at <= now,
        ).order_by(t.webhook_deliveries.c.next_attempt_at).limit(limit)).mappings())
    for delivery in due:
        status, error = None, None
        try:
            check_url(delivery["url"], allow_private=allow_private)
            body = json.dumps({"event": delivery["event"], "delivery_id": delivery["id"],
                               **payload_for(delivery["job_id"])}).encode()
            stamp = int(time.time())
            response = client.post(delivery["url"], content=body, headers={
                "Content-Type": "application/json", "User-Agent": "framefarm-webhooks",
                "Framefarm-Event": delivery["event"], "Framefarm-Delivery": delivery["id"],
                "Framefarm-Signature": sign(_secret(store, delivery), body, stamp)})
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except (httpx.HTTPError, UnsafeTarget) as exc:
            error = f"{type(exc).__name__}: {exc}"
        _record(store, delivery, status, error)
    return len(due)


def _record(store: queue.Store, delivery: RowMapping, status: int | None,
            error: str | None) -> None:
    now = store.now()
    attempts = delivery["attempts"] + 1
    values: dict[str, Any] = {"attempts": attempts, "last_status": status,
                              "last_error": error}
    if error is None:
        values.update(state="delivered", delivered_at=now)
    else:
        wait = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
        retry_at = now + dt.timedelta(seconds=wait)
        if retry_at - delivery["created_at"] > GIVE_UP_AFTER:
            values["state"] = "failed"
        values["next_attempt_at"] = retry_at
    with store.tx() as conn:
        conn.execute(t.webhook_deliveries.update().where(
            t.webhook_deliveries.c.id == delivery["id"]).values(**values))
