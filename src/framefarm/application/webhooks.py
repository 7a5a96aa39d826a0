"""Webhook subscriptions, and sending the outbox: the deliveries that are due, signed,
retried with exponential backoff for 24 hours.

Sending never holds up the caller (the server's upkeep loop): :meth:`Webhooks.deliver_due`
claims the due deliveries and hands each to a thread of its own, at most ``IN_FLIGHT`` at
once and ``PER_TENANT`` for any one tenant, so a tenant whose receiver accepts and never
answers delays only its own calls. Each call connects within ``CONNECT_SECONDS`` and waits
``READ_SECONDS`` between bytes of the answer, whose body is never read.

Each attempt resolves the target once and connects to an address it checked
(:func:`framefarm.webhooks.pin`), so a name that resolves to a public address for the check
and to a private one a moment later (DNS rebinding) is never called inside the network.
What an attempt records for the tenant to see is the HTTP status or a generic class of
failure ("timeout", "connect failed", ...), never the remote's words or addresses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from framefarm import webhooks
from framefarm.application.context import Context
from framefarm.records import Delivery, Webhook
from framefarm.repos import tenants
from framefarm.repos import webhooks as hooks

log = logging.getLogger("framefarm.webhooks")

GIVE_UP_AFTER = dt.timedelta(hours=24)
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0
CONNECT_SECONDS = 3.0
READ_SECONDS = 10.0
IN_FLIGHT = 16  # calls in flight at once, all tenants together
PER_TENANT = 2  # calls in flight at once for one tenant
MAX_ADDRESSES = 3  # addresses of one host tried in turn when connecting fails
CLAIM_SECONDS = 120.0  # a claimed delivery is due again after this if its sender vanished


def failure_class(exc: Exception) -> str:
    """What a tenant may see of a failed call: its class, not its details."""
    if isinstance(exc, webhooks.UnsafeTarget):
        return f"refused: {exc}"  # our own words, without any resolved address
    if isinstance(exc, httpx.TimeoutException):
        return "connect timeout" if isinstance(exc, httpx.ConnectTimeout) else "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "protocol error"
    return "request failed"


@dataclasses.dataclass
class Webhooks:
    ctx: Context
    resolve: webhooks.Resolver = webhooks.system_resolve
    """How hosts are resolved, for the subscription check and for each delivery."""
    in_flight: int = IN_FLIGHT
    per_tenant: int = PER_TENANT
    _sending: dict[str, str] = dataclasses.field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False,
                                              repr=False)
    _idle: threading.Condition = dataclasses.field(init=False, repr=False)
    _client: httpx.Client | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._idle = threading.Condition(self._lock)

    @property
    def allow_private(self) -> bool:
        return self.ctx.settings.webhook_allow_private

    def subscribe(self, tenant_id: str, url: str, events: list[str]) -> Webhook:
        webhooks.check_url(url, allow_private=self.allow_private, resolver=self.resolve)
        with self.ctx.db.tx() as conn:
            return hooks.subscribe(conn, tenant_id, url, events, now=self.ctx.now())

    def subscriptions(self, tenant_id: str) -> list[Webhook]:
        with self.ctx.db.read() as conn:
            return hooks.subscriptions(conn, tenant_id)

    def unsubscribe(self, tenant_id: str, hook_id: str) -> None:
        with self.ctx.db.tx() as conn:
            hooks.unsubscribe(conn, tenant_id, hook_id)

    def tenant_secret(self, tenant_id: str) -> str:
        """The secret that signs calls to this tenant's notify_urls (made on first use)."""
        with self.ctx.db.tx() as conn:
            return tenants.webhook_secret(conn, tenant_id)

    def _secret(self, delivery: Delivery) -> str:
        if delivery.webhook_id is not None:
            with self.ctx.db.read() as conn:
                secret = hooks.hook_secret(conn, delivery.webhook_id)
            if secret:
                return secret
        return self.tenant_secret(delivery.tenant_id)

    # -- sending ------------------------------------------------------------------------------

    def deliver_due(self, payload_for: Callable[[str], dict[str, Any]], *, limit: int = 50,
                    wait: float | None = None) -> int:
        """Start sending the deliveries that are due, each in its own thread; returns how
        many were started. ``wait``: seconds to wait for every call in flight to end (the
        server's loop never waits).

        ``payload_for(job_id)`` builds the body at send time, so its download link is fresh.
        Calls go through the sender's own client, whose lifetime is the sender's.
        """
        with self._lock:
            room = self.in_flight - len(self._sending)
            sending = list(self._sending)
            counts = self._tenant_counts()
        started = 0
        if room > 0:
            busy = [tenant for tenant, n in counts.items() if n >= self.per_tenant]
            now = self.ctx.now()
            with self.ctx.db.read() as conn:
                due = hooks.due(conn, now, limit, exclude_ids=sending, exclude_tenants=busy)
            for delivery in due:
                if started >= room or counts.get(delivery.tenant_id, 0) >= self.per_tenant:
                    continue
                with self.ctx.db.tx() as conn:
                    if not hooks.claim(conn, delivery,
                                       until=now + dt.timedelta(seconds=CLAIM_SECONDS)):
                        continue
                counts[delivery.tenant_id] = counts.get(delivery.tenant_id, 0) + 1
                with self._lock:
                    self._sending[delivery.id] = delivery.tenant_id
                threading.Thread(target=self._send, args=(delivery, payload_for),
                                 name=f"webhook-{delivery.id}", daemon=True).start()
                started += 1
        if wait is not None:
            self.wait_idle(wait)
        return started

    def _tenant_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for tenant in self._sending.values():
            counts[tenant] = counts.get(tenant, 0) + 1
        return counts

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight; False if some still are after ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._sending, timeout)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                # No proxies from the environment: the call goes to the address we checked.
                # No kept-alive connections: one is pooled by IP and port, and must not
                # carry a call for another host name than the one its TLS was checked for.
                self._client = httpx.Client(
                    timeout=httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS),
                    limits=httpx.Limits(max_connections=self.in_flight,
                                        max_keepalive_connections=0),
                    follow_redirects=False, trust_env=False)
            return self._client

    def _send(self, delivery: Delivery, payload_for: Callable[[str], dict[str, Any]]) -> None:
        try:
            try:
                status, error = self._attempt(delivery, payload_for)
            except Exception:  # building the payload failed: an attempt, retried later
                log.exception("webhook delivery %s failed", delivery.id)
                status, error = None, "internal error"
            self._record(delivery, status, error)
        except Exception:  # the database went away, say: due again after the claim
            log.exception("webhook delivery %s could not be recorded", delivery.id)
        finally:
            with self._idle:
                self._sending.pop(delivery.id, None)
                self._idle.notify_all()

    def _attempt(self, delivery: Delivery, payload_for: Callable[[str], dict[str, Any]],
                 ) -> tuple[int | None, str | None]:
        try:
            pinned = webhooks.pin(delivery.url, allow_private=self.allow_private,
                                  resolve=self.resolve)
        except webhooks.UnsafeTarget as exc:
            return None, failure_class(exc)
        body = json.dumps({"event": delivery.event, "delivery_id": delivery.id,
                           **payload_for(delivery.job_id)}).encode()
        target = pinned.target
        headers = {
            "Host": target.host_header, "Content-Type": "application/json",
            "User-Agent": "framefarm-webhooks", "Framefarm-Event": delivery.event,
            "Framefarm-Delivery": delivery.id,
            "Framefarm-Signature": webhooks.sign(self._secret(delivery), body, int(time.time()))}
        # TLS: the server name (SNI) and the certificate check are the host's, not the IP's.
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        client = self._http()
        error = "connect failed"
        for address in pinned.addresses[:MAX_ADDRESSES]:
            try:
                with client.stream("POST", target.url_for(address), content=body,
                                   headers=headers, extensions=extensions) as response:
                    status = response.status_code  # the body is never read
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = failure_class(exc)
                continue  # the host's next address
            except httpx.HTTPError as exc:
                return None, failure_class(exc)
            return status, None if 200 <= status < 300 else f"HTTP {status}"
        return None, error

    def _record(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        now = self.ctx.now()
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status": status,
                                  "last_error": error}
        if error is None:
            values.update(state="delivered", delivered_at=now)
        else:
            wait = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
            retry_at = now + dt.timedelta(seconds=wait)
            if retry_at - delivery.created_at > GIVE_UP_AFTER:
                values["state"] = "failed"
            values["next_attempt_at"] = retry_at
        with self.ctx.db.tx() as conn:
            hooks.record_attempt(conn, delivery.id, **values)

    def close(self) -> None:
        """Close the sender's client (calls still in flight end with an error)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
