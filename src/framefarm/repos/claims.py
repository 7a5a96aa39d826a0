"""Which queued task a node gets: the claim's two queries.

Claim order: higher priority first; between tenants, the one with the fewest running tasks
(so one tenant's 10,000 chunks do not starve another's single render), then the oldest
job; within a job, chunk order. A task this node just failed is taken only when its
tenant has nothing else for it, jobs that blocked the node are skipped, and a task of an
engine the node does not have (``engines``: what it reported) is never offered to it.

The queue is never sorted as a whole: :func:`tenant_heads` ranks the tenants by the head
of each one's queue (a few index probes per tenant, through ``ix_tasks_tenant_claim``),
and :func:`next_task` walks one tenant's queue in index order to the first task it can
lock. So a claim costs the same with 100 queued tasks or 100,000.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.queue.states import TaskState
from framefarm.records import Task, load

# Runs a candidate query and locks its row for the transaction (Database.lock_candidate).
Lock = Callable[[Connection, sa.Select[Any]], Any]
# What a node that reports no engines runs (nodes from before engines were reported).
DEFAULT_ENGINES = ("framefarm",)


def node_engines(capabilities: Any) -> tuple[str, ...]:
    """The engines a node reported in its capabilities (``engines``: a list of names)."""
    found = capabilities.get("engines") if isinstance(capabilities, dict) else None
    if not isinstance(found, list) or not found:
        return DEFAULT_ENGINES
    return tuple(str(name) for name in found)


@dataclasses.dataclass(frozen=True, slots=True)
class Head:
    """A tenant with claimable work, and what ranks it."""

    tenant_id: str
    priority: int
    running: int
    oldest: dt.datetime


def _claimable(tasks: Any, node_id: str, now: dt.datetime,
               engines: Sequence[str]) -> list[Any]:
    """Queued, due, of an engine the node has, and not in a job that blocked it."""
    blocked = sa.select(t.node_blocks.c.job_id).where(
        t.node_blocks.c.job_id == tasks.c.job_id, t.node_blocks.c.node_id == node_id,
        t.node_blocks.c.blocked.is_(True)).exists()
    return [tasks.c.state == TaskState.QUEUED, tasks.c.not_before <= now,
            tasks.c.engine.in_(list(engines)), ~blocked]


def tenant_heads(conn: Connection, node_id: str, now: dt.datetime,
                 engines: Sequence[str] = DEFAULT_ENGINES) -> list[Head]:
    """The tenants with a task this node may claim, best first."""
    head = t.tasks.alias("head")
    first = (sa.select(head.c.priority, head.c.job_created_at)
             .where(head.c.tenant_id == t.tenants.c.id,
                    *_claimable(head, node_id, now, engines))
             .order_by(head.c.priority.desc(), head.c.job_created_at, head.c.idx)
             .limit(1))
    priority = first.with_only_columns(head.c.priority).scalar_subquery()
    oldest = first.with_only_columns(head.c.job_created_at).scalar_subquery()
    heads = sa.select(t.tenants.c.id, priority.label("priority"),
                      oldest.label("oldest")).subquery("heads")
    running = (sa.select(t.tasks.c.tenant_id, sa.func.count().label("n"))
               .where(t.tasks.c.state == TaskState.RUNNING)
               .group_by(t.tasks.c.tenant_id).subquery("running"))
    n = sa.func.coalesce(running.c.n, 0)
    query = (sa.select(heads.c.id, heads.c.priority, n.label("running"), heads.c.oldest)
             .select_from(heads.outerjoin(running, running.c.tenant_id == heads.c.id))
             .where(heads.c.priority.is_not(None))
             .order_by(heads.c.priority.desc(), n, heads.c.oldest, heads.c.id))
    return [Head(r.id, r.priority, r.running, r.oldest) for r in conn.execute(query)]


def next_task(tenant_id: str, node_id: str, now: dt.datetime, *, failed_here: bool,
              engines: Sequence[str] = DEFAULT_ENGINES) -> sa.Select[Any]:
    """The tenant's next claimable task (all its columns), in index order; the caller
    locks it (PostgreSQL: SKIP LOCKED, so concurrent claimers pass each other). With
    ``failed_here`` False, tasks this node last failed are passed over."""
    conditions = [t.tasks.c.tenant_id == tenant_id,
                  *_claimable(t.tasks, node_id, now, engines)]
    if not failed_here:
        conditions.append(sa.or_(t.tasks.c.last_failed_node.is_(None),
                                 t.tasks.c.last_failed_node != node_id))
    return (sa.select(t.tasks).where(*conditions)
            .order_by(t.tasks.c.priority.desc(), t.tasks.c.job_created_at, t.tasks.c.idx)
            .limit(1))


def lock_next(conn: Connection, node_id: str, now: dt.datetime, *, lock: Lock,
              engines: Sequence[str] = DEFAULT_ENGINES) -> Task | None:
    """The next task for this node, locked for this transaction; None if there is none."""
    for head in tenant_heads(conn, node_id, now, engines):
        for failed_here in (False, True):
            row = lock(conn, next_task(head.tenant_id, node_id, now, failed_here=failed_here,
                                       engines=engines))
            if row is not None:
                return load(Task, row._mapping)
    return None
