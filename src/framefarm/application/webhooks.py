"""Webhook subscriptions, and sending the outbox: the deliveries that are due, signed,
retried with exponential backoff for 24 hours."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from framefarm import webhooks
from framefarm.application.context import Context
from framefarm.records import Delivery, Webhook
from framefarm.repos import tenants
from framefarm.repos import webhooks as hooks

GIVE_UP_AFTER = dt.timedelta(hours=24)
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0


@dataclasses.dataclass
class Webhooks:
    ctx: Context

    def subscribe(self, tenant_id: str, url: str, events: list[str]) -> Webhook:
        webhooks.check_url(url, allow_private=self.ctx.settings.webhook_allow_private)
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

    def deliver_due(self, payload_for: Callable[[str], dict[str, Any]], client: httpx.Client,
                    *, limit: int = 20) -> int:
        """Send the deliveries that are due; returns how many were attempted.

        ``payload_for(job_id)`` builds the body at send time, so its download link is fresh.
        """
        with self.ctx.db.read() as conn:
            due = hooks.due(conn, self.ctx.now(), limit)
        for delivery in due:
            status, error = None, None
            try:
                webhooks.check_url(delivery.url,
                                   allow_private=self.ctx.settings.webhook_allow_private)
                body = json.dumps({"event": delivery.event, "delivery_id": delivery.id,
                                   **payload_for(delivery.job_id)}).encode()
                stamp = int(time.time())
                response = client.post(delivery.url, content=body, headers={
                    "Content-Type": "application/json", "User-Agent": "framefarm-webhooks",
                    "Framefarm-Event": delivery.event, "Framefarm-Delivery": delivery.id,
                    "Framefarm-Signature": webhooks.sign(self._secret(delivery), body, stamp)})
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except (httpx.HTTPError, webhooks.UnsafeTarget) as exc:
                error = f"{type(exc).__name__}: {exc}"
            self._record(delivery, status, error)
        return len(due)

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
