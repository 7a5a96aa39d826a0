"""Render nodes: registration (the secret stored hashed), liveness, counters, and their
health history (heartbeat samples and crash reports)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.db.database import hash_secret, new_id
from framefarm.records import Crash, Node, Sample
from framefarm.repos import rows


def register(conn: Connection, name: str, capabilities: Mapping[str, Any], *,
             now: dt.datetime) -> tuple[str, str]:
    """A new node and its secret (returned once, stored hashed)."""
    node_id, secret = new_id("node"), secrets.token_urlsafe(32)
    conn.execute(t.nodes.insert().values(
        id=node_id, name=name[:200], secret_hash=hash_secret(secret),
        capabilities=dict(capabilities), draining=False, last_heartbeat=now,
        tasks_done=0, tasks_failed=0, crashes=0, created_at=now))
    return node_id, secret


def authenticate(conn: Connection, node_id: str, secret: str) -> bool:
    row = conn.execute(sa.select(t.nodes.c.secret_hash).where(t.nodes.c.id == node_id)).first()
    return row is not None and secrets.compare_digest(row.secret_hash, hash_secret(secret))


def get(conn: Connection, node_id: str) -> Node:
    return rows.one(conn, sa.select(t.nodes).where(t.nodes.c.id == node_id), Node,
                    f"no node {node_id}")


def find(conn: Connection, node_id: str) -> Node | None:
    return rows.first(conn, sa.select(t.nodes).where(t.nodes.c.id == node_id), Node)


def list_all(conn: Connection) -> list[Node]:
    return rows.every(conn, sa.select(t.nodes).order_by(t.nodes.c.created_at), Node)


def live(conn: Connection, since: dt.datetime) -> list[Node]:
    """Nodes that may take work: heard from since ``since`` and not draining."""
    return rows.every(conn, sa.select(t.nodes).where(
        t.nodes.c.last_heartbeat >= since, t.nodes.c.draining.is_(False),
    ).order_by(t.nodes.c.created_at), Node)


def update(conn: Connection, node_id: str, **values: Any) -> None:
    conn.execute(t.nodes.update().where(t.nodes.c.id == node_id).values(**values))


def count_done(conn: Connection, node_id: str, *, now: dt.datetime) -> None:
    update(conn, node_id, tasks_done=t.nodes.c.tasks_done + 1, current_task_id=None,
           last_heartbeat=now)


def count_failure(conn: Connection, node_id: str, task_id: str, job_id: str, error: str, *,
                  now: dt.datetime) -> None:
    """A failure the node reported: counted, and kept in its crash history."""
    update(conn, node_id, tasks_failed=t.nodes.c.tasks_failed + 1, current_task_id=None,
           last_error=error[-4000:])
    conn.execute(t.node_crashes.insert().values(
        node_id=node_id, at=now, kind="failure", task_id=task_id, job_id=job_id,
        error=error[-4000:]))


def count_lost_lease(conn: Connection, node_id: str | None, task_id: str, job_id: str, *,
                     now: dt.datetime) -> None:
    """The node let a lease expire (it died or lost the network)."""
    if node_id is None:
        return
    update(conn, node_id, crashes=t.nodes.c.crashes + 1, current_task_id=None)
    conn.execute(t.node_crashes.insert().values(
        node_id=node_id, at=now, kind="lease_expired", task_id=task_id, job_id=job_id,
        error="no heartbeat before the lease expired"))


def add_sample(conn: Connection, node_id: str, *, now: dt.datetime, load: float | None,
               memory_used: int | None, task_id: str | None, frames_done: int | None,
               keep: dt.timedelta) -> None:
    """One point of a node's health history; points older than ``keep`` are dropped."""
    conn.execute(t.node_samples.insert().values(
        node_id=node_id, at=now, load=load, memory_used=memory_used, task_id=task_id,
        frames_done=frames_done))
    conn.execute(t.node_samples.delete().where(t.node_samples.c.node_id == node_id,
                                               t.node_samples.c.at < now - keep))


def samples(conn: Connection, node_id: str, limit: int = 200) -> list[Sample]:
    newest = rows.every(conn, sa.select(t.node_samples).where(
        t.node_samples.c.node_id == node_id).order_by(t.node_samples.c.id.desc()).limit(limit),
        Sample)
    return newest[::-1]


def crashes(conn: Connection, node_id: str, limit: int = 50) -> list[Crash]:
    return rows.every(conn, sa.select(t.node_crashes).where(
        t.node_crashes.c.node_id == node_id).order_by(t.node_crashes.c.id.desc()).limit(limit),
        Crash)


def delete(conn: Connection, node_id: str) -> None:
    """The node and its history."""
    for table in (t.node_samples, t.node_crashes):
        conn.execute(table.delete().where(table.c.node_id == node_id))
    conn.execute(t.nodes.delete().where(t.nodes.c.id == node_id))
