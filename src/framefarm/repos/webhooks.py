"""Webhook subscriptions and the delivery outbox: one row per (job, target, event),
written in the transaction that finishes the job, sent later by the upkeep loop."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.db.database import new_id
from framefarm.queue.errors import NotFound
from framefarm.records import Delivery, Webhook
from framefarm.repos import rows


def subscribe(conn: Connection, tenant_id: str, url: str, events: list[str], *,
              now: dt.datetime) -> Webhook:
    hook_id = new_id("whk")
    conn.execute(t.webhooks.insert().values(
        id=hook_id, tenant_id=tenant_id, url=url, secret="whsec_" + secrets.token_hex(24),
        events=events, created_at=now))
    return rows.one(conn, sa.select(t.webhooks).where(t.webhooks.c.id == hook_id), Webhook,
                    f"no webhook {hook_id}")


def subscriptions(conn: Connection, tenant_id: str) -> list[Webhook]:
    return rows.every(conn, sa.select(t.webhooks).where(t.webhooks.c.tenant_id == tenant_id)
                      .order_by(t.webhooks.c.created_at), Webhook)


def unsubscribe(conn: Connection, tenant_id: str, hook_id: str) -> None:
    gone = conn.execute(t.webhooks.delete().where(
        t.webhooks.c.id == hook_id, t.webhooks.c.tenant_id == tenant_id)).rowcount
    if not gone:
        raise NotFound(f"no webhook {hook_id}")


def hook_secret(conn: Connection, hook_id: str) -> str | None:
    return conn.execute(sa.select(t.webhooks.c.secret).where(t.webhooks.c.id == hook_id)).scalar()


def add_delivery(conn: Connection, *, tenant_id: str, job_id: str, webhook_id: str | None,
                 url: str, event: str, now: dt.datetime) -> bool:
    """Queue one call (once per job, target and event); False if it was queued before."""
    exists = conn.execute(sa.select(t.webhook_deliveries.c.id).where(
        t.webhook_deliveries.c.job_id == job_id, t.webhook_deliveries.c.url == url,
        t.webhook_deliveries.c.event == event)).first()
    if exists:
        return False
    conn.execute(t.webhook_deliveries.insert().values(
        id=new_id("dlv"), tenant_id=tenant_id, job_id=job_id, webhook_id=webhook_id, url=url,
        event=event, state="pending", attempts=0, next_attempt_at=now, created_at=now))
    return True


def deliveries(conn: Connection, job_id: str) -> list[Delivery]:
    return rows.every(conn, sa.select(t.webhook_deliveries).where(
        t.webhook_deliveries.c.job_id == job_id).order_by(t.webhook_deliveries.c.created_at),
        Delivery)


def due(conn: Connection, now: dt.datetime, limit: int, *,
        exclude_ids: Sequence[str] = (), exclude_tenants: Sequence[str] = ()) -> list[Delivery]:
    """Pending deliveries whose time has come, oldest first, but those being sent
    (``exclude_ids``) and those of tenants at their bound of calls in flight."""
    query = sa.select(t.webhook_deliveries).where(
        t.webhook_deliveries.c.state == "pending", t.webhook_deliveries.c.next_attempt_at <= now)
    if exclude_ids:
        query = query.where(t.webhook_deliveries.c.id.not_in(list(exclude_ids)))
    if exclude_tenants:
        query = query.where(t.webhook_deliveries.c.tenant_id.not_in(list(exclude_tenants)))
    return rows.every(conn, query.order_by(t.webhook_deliveries.c.next_attempt_at)
                      .limit(limit), Delivery)


def claim(conn: Connection, delivery: Delivery, *, until: dt.datetime) -> bool:
    """Take a due delivery for one attempt: it is not due again before ``until`` (so a
    second sender, or this one after a crash mid-call, sends it only then). False if
    someone else took or changed it since it was read."""
    return bool(conn.execute(t.webhook_deliveries.update().where(
        t.webhook_deliveries.c.id == delivery.id, t.webhook_deliveries.c.state == "pending",
        t.webhook_deliveries.c.attempts == delivery.attempts,
        t.webhook_deliveries.c.next_attempt_at == delivery.next_attempt_at,
    ).values(next_attempt_at=until)).rowcount)


def record_attempt(conn: Connection, delivery_id: str, **values: Any) -> None:
    conn.execute(t.webhook_deliveries.update().where(
        t.webhook_deliveries.c.id == delivery_id).values(**values))
